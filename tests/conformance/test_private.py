"""Done-when 6: private repos are invisible (404) outside the org and visible to members."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import LiveServer


def assert_hidden(exc: RepositoryNotFoundError) -> None:
    """The server's own 404 (the client also raises this class for some 401s)."""
    assert exc.response.status_code == 404
    assert exc.response.headers["X-Error-Code"] == "RepoNotFound"


def test_private_repo_visibility(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id)
    server.settle()  # indexed: the listing checks below would pass for the wrong reason otherwise
    missing = f"acme/{repo_name}-does-not-exist"

    for outsider in (api_as(None), api_as("bob")):
        assert not outsider.repo_exists(repo_id)
        with pytest.raises(RepositoryNotFoundError) as info:
            outsider.model_info(repo_id)
        assert_hidden(info.value)
        with pytest.raises(RepositoryNotFoundError) as info:
            hf_hub_download(repo_id, "s.txt", endpoint=server.url, token=outsider.token,
                            cache_dir=tmp_path / "outsider")
        assert_hidden(info.value)
        assert repo_id not in {m.id for m in outsider.list_models(search=repo_name)}
        with pytest.raises(RepositoryNotFoundError) as info:
            outsider.list_repo_files(repo_id)
        assert_hidden(info.value)

    # indistinguishable from a repo that does not exist: same status, code and message shape
    for url in (f"/api/models/{repo_id}", f"/{repo_id}/resolve/main/s.txt"):
        hidden = httpx.get(server.url + url)
        absent = httpx.get(server.url + url.replace(repo_id, missing))
        assert hidden.status_code == absent.status_code == 404
        assert hidden.headers["X-Error-Code"] == absent.headers["X-Error-Code"] == "RepoNotFound"
        assert hidden.json().keys() == absent.json().keys()

    carol = api_as("carol")  # read member of acme
    assert carol.model_info(repo_id).private is True
    assert Path(hf_hub_download(repo_id, "s.txt", endpoint=server.url, token=carol.token,
                                cache_dir=tmp_path / "carol")).read_bytes() == b"secret"
    assert repo_id in {m.id for m in carol.list_models(search=repo_name)}
    with pytest.raises(HfHubHTTPError) as info:  # a read member cannot write
        carol.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert info.value.response.status_code == 403
    assert info.value.response.headers["X-Error-Code"] == "Forbidden"
    assert "x.txt" not in api.list_repo_files(repo_id)

    api.update_repo_settings(repo_id, private=False)
    assert api_as(None).model_info(repo_id).private is False
    api.update_repo_settings(repo_id, private=True)
    assert not api_as(None).repo_exists(repo_id)


def test_org_default_private(api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str) -> None:
    api.create_repo(f"vault/{repo_name}")
    assert api.model_info(f"vault/{repo_name}").private is True
    assert not api_as("bob").repo_exists(f"vault/{repo_name}")
    api.create_repo(f"vault/{repo_name}-open", private=False)
    assert api_as(None).repo_exists(f"vault/{repo_name}-open")


def test_cannot_write_to_other_namespaces(api_as: Callable[[str | None], HfApi], repo_name: str) -> None:
    bob = api_as("bob")
    with pytest.raises(HfHubHTTPError) as info:
        bob.create_repo(f"acme/{repo_name}")
    assert info.value.response.status_code == 403
    assert info.value.response.headers["X-Error-Code"] == "Forbidden"
    assert not api_as("alice").repo_exists(f"acme/{repo_name}")
    bob.create_repo(f"bob/{repo_name}")
    assert bob.repo_exists(f"bob/{repo_name}")
