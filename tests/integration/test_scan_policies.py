"""Operator settings that refuse content at commit time: unsafe files, and secrets.

``MODELYARD_SCAN_REFUSE_UNSAFE`` scans the files of a commit before it lands (regular files
from the commit body, large ones from the repo's LFS storage; a git push's LFS files too) and
refuses the commit with 422 if one is unsafe; ``MODELYARD_SECRETS_REFUSE`` refuses commits
whose text holds a token or key. A refused commit changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.support.git import Git, remote
from tests.support.scan_corpus import build
from tests.support.server import SEED, TOKENS, LiveServer


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("strict"), None, "sqlite", extra_env={
        "MODELYARD_SCAN_REFUSE_UNSAFE": "true",
        "MODELYARD_SECRETS_REFUSE": "true",
    })
    live.cli("db", "upgrade")
    live.seed(SEED)
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    build(folder)
    return folder


def test_unsafe_files_are_refused_before_they_land(strict: LiveServer, corpus: Path) -> None:
    api = HfApi(endpoint=strict.url, token=TOKENS["alice"])
    api.create_repo("alice/strict")
    head = api.model_info("alice/strict").sha
    # A regular file in the commit body, and LFS uploads (.bin and .pt are LFS in .gitattributes).
    for path in ("pickles/os_system.pkl", "torch/subprocess_model.bin", "torch/exec_legacy.pt"):
        with pytest.raises(HfHubHTTPError) as refused:
            api.upload_file(path_or_fileobj=corpus / path, path_in_repo=path, repo_id="alice/strict")
        assert refused.value.response.status_code == 422
        assert refused.value.response.headers["X-Error-Code"] == "UnprocessableEntity"
        assert "refuses files that run code" in str(refused.value) and path in str(refused.value)
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_folder(folder_path=corpus / "keras", repo_id="alice/strict")
    assert "lambda.keras" in str(refused.value) and "Lambda layer" in str(refused.value)
    assert api.model_info("alice/strict").sha == head  # nothing landed
    # Benign files go through, and their results are there at once (scanned before the commit).
    api.upload_file(path_or_fileobj=corpus / "torch/state_dict.bin", path_in_repo="model.bin", repo_id="alice/strict")
    [info] = api.get_paths_info("alice/strict", ["model.bin"], expand=True)
    assert info.security is not None and info.security.status == "safe"  # type: ignore[union-attr]


def test_secrets_are_refused(strict: LiveServer) -> None:
    api = HfApi(endpoint=strict.url, token=TOKENS["alice"])
    api.create_repo("alice/secretive")
    head = api.model_info("alice/secretive").sha
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"GITHUB=ghp_" + b"x" * 36 + b"\n", path_in_repo="ci.env",
                        repo_id="alice/secretive")
    assert refused.value.response.status_code == 422
    assert "ci.env line 1: a GitHub token" in str(refused.value) and "ghp_" not in str(refused.value)
    assert api.model_info("alice/secretive").sha == head


def test_a_git_push_of_an_unsafe_lfs_file_is_refused(strict: LiveServer, corpus: Path, tmp_path: Path) -> None:
    api = HfApi(endpoint=strict.url, token=TOKENS["alice"])
    api.create_repo("alice/pushed")
    head = api.model_info("alice/pushed").sha
    git = Git(tmp_path / "home")
    work = tmp_path / "work"
    git.run("clone", remote(strict, "alice/pushed"), str(work))
    (work / "weights.bin").write_bytes((corpus / "torch/subprocess_model.bin").read_bytes())
    git.run("add", "weights.bin", cwd=work)  # .bin is tracked by LFS in .gitattributes
    git.run("commit", "-m", "add weights", cwd=work)
    pushed = git.run("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "refuses files that run code" in pushed.stderr and "weights.bin" in pushed.stderr
    assert api.model_info("alice/pushed").sha == head
