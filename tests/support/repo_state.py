"""What a refused request must leave as it was, read through the real client."""

from __future__ import annotations

from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import RepositoryNotFoundError


def add(path: str, data: bytes) -> CommitOperationAdd:
    return CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)


def repo_state(api: HfApi, rid: str, repo_type: str = "model") -> dict[str, Any]:
    """Everything a refused request could have changed: refs, history, files."""
    refs = api.list_repo_refs(rid, repo_type=repo_type)
    return {
        "branches": {b.name: b.target_commit for b in refs.branches},
        "tags": {t.name: t.target_commit for t in refs.tags},
        "history": [c.commit_id for c in api.list_repo_commits(rid, repo_type=repo_type)],
        "files": sorted(api.list_repo_files(rid, repo_type=repo_type)),
    }


def assert_repo_not_found(err: pytest.ExceptionInfo[RepositoryNotFoundError]) -> None:
    """The Hub's answer for a missing repo (404, ``RepoNotFound``, its words), not a routing error."""
    assert err.value.response.status_code == 404
    assert err.value.response.headers["X-Error-Code"] == "RepoNotFound"
    assert err.value.server_message == "Repository Not Found"
