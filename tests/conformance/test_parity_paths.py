"""Hub parity for paths in commits: unsafe paths are refused with 422 and nothing is committed;
folder deletes are recursive (a folder named as a file too); deleting what is not there is the
Hub's 404.

Each bad path goes through the real ``huggingface_hub`` client and through the raw HTTP
endpoints. The client strips a leading '/' and './' and refuses '.', '..' and '.git' itself
(ValueError); to show the *server* refuses those too, the client test sets the operation's path
after construction, as a client without those checks would send it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub._commit_api import _validate_path_in_repo
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

from tests.support.server import TOKENS, LiveServer

ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}
LFS_CONTENT = b"\x00weights\x00" * 100

#: Every path the Hub refuses as unsafe, by what is wrong with it.
UNSAFE: dict[str, str] = {
    "dotdot": "../escape.txt",
    "dotdot-inside": "a/../../etc/passwd",
    "dotdot-last": "dir/..",
    "dot": ".",
    "dot-segment": "a/./b.txt",
    "dot-first": "./a.txt",
    "empty-segment": "a//b.txt",
    "trailing-slash": "dir/",
    "leading-slash": "/etc/passwd",
    "only-slash": "/",
    "backslash": "a\\b.txt",
    "backslash-dotdot": "..\\..\\evil.txt",
    "git-dir": ".git/config",
    "nested-git-dir": "sub/.git/hooks/pre-commit",
    "git-itself": ".git",
    "git-upper": ".GIT/config",
    "git-trailing-dot": ".git./HEAD",
    "nul": "a\x00b.txt",
    "newline": "a\nb.txt",
    "tab": "a\tb.txt",
    "escape": "a\x1b[31m.txt",
    "unit-separator": "a\x1fb.txt",
    "del": "a\x7fb.txt",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


HEADER = {"key": "header", "value": {"summary": "parity", "description": ""}}
OK_FILE = {"key": "file", "value": {"path": "ok.txt", "content": b64(b"fine"), "encoding": "base64"}}


def post_commit(server: LiveServer, repo_id: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", content=body,
                      headers={**ALICE, "Content-Type": "application/x-ndjson"}, timeout=60)


def snapshot(api: HfApi, repo_id: str) -> tuple[str | None, list[str]]:
    """The head commit and the files: what a refused request must leave as it was."""
    info = api.model_info(repo_id, files_metadata=False)
    return info.sha, sorted(s.rfilename for s in info.siblings or [])


@pytest.fixture
def repo(api: HfApi, repo_name: str) -> str:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    api.create_commit(repo_id, operations=[
        CommitOperationAdd("keep.txt", b"keep"),
        CommitOperationAdd("dir/inner.txt", b"inner"),
        CommitOperationAdd("dir/sub/deep.txt", b"deep"),
        CommitOperationAdd("dir/sub/w.bin", LFS_CONTENT),
        CommitOperationAdd("other/x.txt", b"x"),
    ], commit_message="seed")
    return repo_id


def client_sends_unchanged(path: str) -> bool:
    try:
        return _validate_path_in_repo(path) == path
    except ValueError:
        return False


def as_sent(op: CommitOperationAdd | CommitOperationDelete, path: str) -> Any:
    op.path_in_repo = path  # after the client's own checks in __post_init__
    return op


def test_unsafe_paths_through_the_client_are_refused_with_422(api: HfApi, repo: str) -> None:
    before = snapshot(api, repo)
    for label, path in UNSAFE.items():
        # an addition (refused at preupload), a deletedFile and a deletedFolder (refused at commit)
        ops: list[Any] = [CommitOperationAdd("placeholder.txt", b"x"), CommitOperationDelete("p", is_folder=False)]
        if path != "dir/":  # "dir/" is how a folder is named in a folder delete
            ops.append(CommitOperationDelete("p", is_folder=True))
        if client_sends_unchanged(path):
            ops[0] = CommitOperationAdd(path, b"x")
        for op in ops:
            as_sent(op, path)
            with pytest.raises(HfHubHTTPError, match="Invalid path") as info:
                api.create_commit(repo, operations=[CommitOperationAdd("ok.txt", b"fine"), op],
                                  commit_message="bad path")
            # 422 is no status the client maps to a subclass: it raises HfHubHTTPError itself
            assert type(info.value) is HfHubHTTPError, (label, type(info.value))
            assert info.value.response.status_code == 422, label
            assert info.value.response.headers["X-Error-Code"] == "UnprocessableEntity", label
    assert snapshot(api, repo) == before


def test_the_client_refuses_some_paths_itself(api: HfApi, repo: str) -> None:
    """What never reaches the server through this client (the server test above covers it)."""
    for path in ["../escape.txt", "a/../b", ".", ".git/config", "sub/.git/x"]:
        with pytest.raises(ValueError, match="Invalid `path_in_repo`"):
            CommitOperationAdd(path, b"x")
    assert CommitOperationAdd("/etc/passwd", b"x").path_in_repo == "etc/passwd"


@pytest.mark.parametrize("kind", ["file", "lfsFile", "deletedFile", "deletedFolder"])
def test_unsafe_paths_over_http_are_refused_with_422(api: HfApi, server: LiveServer, repo: str, kind: str) -> None:
    (lfs,) = api.get_paths_info(repo, ["dir/sub/w.bin"])
    before = snapshot(api, repo)
    for label, path in UNSAFE.items():
        if kind == "deletedFolder" and path == "dir/":
            path = "dir//"  # one trailing '/' is how a folder is named: "dir/" is a valid folder
        value: dict[str, Any] = {"path": path}
        if kind == "file":
            value.update(content=b64(b"x"), encoding="base64")
        elif kind == "lfsFile":
            value.update(algo="sha256", oid=lfs.lfs.sha256, size=lfs.lfs.size)  # type: ignore[attr-defined]
        r = post_commit(server, repo, ndjson(HEADER, OK_FILE, {"key": kind, "value": value}))
        assert r.status_code == 422, (label, r.status_code, r.text)
        assert r.headers["X-Error-Code"] == "UnprocessableEntity", label
        assert "Invalid path" in r.json()["error"], label
    assert snapshot(api, repo) == before


def test_unsafe_paths_in_preupload_are_refused_with_422(api: HfApi, server: LiveServer, repo: str) -> None:
    before = snapshot(api, repo)
    for label, path in UNSAFE.items():
        r = httpx.post(f"{server.url}/api/models/{repo}/preupload/main", headers=ALICE,
                       json={"files": [{"path": "fine.txt", "sample": "", "size": 1},
                                       {"path": path, "sample": "", "size": 1}]})
        assert r.status_code == 422 and r.headers["X-Error-Code"] == "UnprocessableEntity", (label, r.text)
    assert snapshot(api, repo) == before


def test_paths_that_are_only_too_long_stay_400(api: HfApi, server: LiveServer, repo: str) -> None:
    before = snapshot(api, repo)
    for path in ["x" * 256, "/".join(["d"] * 70) + "/f", ""]:
        line = {"key": "file", "value": {"path": path, "content": b64(b"x")}}
        r = post_commit(server, repo, ndjson(HEADER, OK_FILE, line))
        assert r.status_code == 400 and r.headers["X-Error-Code"] == "BadRequest", (path[:20], r.text)
    assert snapshot(api, repo) == before


# -- deletes -------------------------------------------------------------------------------------


def test_folder_delete_through_the_client_is_recursive(api: HfApi, repo: str) -> None:
    head, _ = snapshot(api, repo)
    info = api.create_commit(repo, operations=[CommitOperationDelete("dir/")], commit_message="rm dir")
    assert snapshot(api, repo) == (info.oid, [".gitattributes", "keep.txt", "other/x.txt"]) and info.oid != head
    # is_folder=True without the trailing '/', and HfApi.delete_folder, send the same deletedFolder
    api.create_commit(repo, operations=[CommitOperationDelete("other", is_folder=True)], commit_message="rm other")
    assert snapshot(api, repo)[1] == [".gitattributes", "keep.txt"]
    api.upload_file(path_or_fileobj=b"n", path_in_repo="n/a/b.txt", repo_id=repo)
    api.delete_folder("n", repo_id=repo)
    assert snapshot(api, repo)[1] == [".gitattributes", "keep.txt"]


def test_a_folder_named_as_a_file_is_deleted_with_everything_in_it(api: HfApi, server: LiveServer, repo: str) -> None:
    """``CommitOperationDelete("dir")`` (no trailing '/') sends ``deletedFile``: the folder goes,
    with the other operations of the commit (the public Hub answers 404 there: see
    docs/compatibility.md)."""
    head, _ = snapshot(api, repo)
    info = api.create_commit(repo, operations=[CommitOperationAdd("ok.txt", b"fine"), CommitOperationDelete("dir")],
                             commit_message="rm dir as a file")
    assert info.oid != head
    assert snapshot(api, repo) == (info.oid, [".gitattributes", "keep.txt", "ok.txt", "other/x.txt"])
    r = post_commit(server, repo, ndjson(HEADER, {"key": "deletedFile", "value": {"path": "other"}}))
    assert r.status_code == 200, r.text
    assert snapshot(api, repo) == (r.json()["commitOid"], [".gitattributes", "keep.txt", "ok.txt"])


def test_deleting_a_missing_path_is_refused_and_commits_nothing(api: HfApi, server: LiveServer, repo: str) -> None:
    before = snapshot(api, repo)
    with pytest.raises(RemoteEntryNotFoundError, match="A file with this name doesn't exist"):
        api.delete_file("no-such-file.txt", repo_id=repo)
    with pytest.raises(RemoteEntryNotFoundError, match="A folder with this name doesn't exist"):
        api.delete_folder("no-such-folder", repo_id=repo)
    with pytest.raises(RemoteEntryNotFoundError):  # the good operations of the commit are not kept
        api.create_commit(repo, operations=[
            CommitOperationAdd("ok.txt", b"fine"), CommitOperationDelete("keep.txt"),
            CommitOperationDelete("dir/missing.txt"),
        ], commit_message="partly missing")
    with pytest.raises(RemoteEntryNotFoundError, match="A folder with this name doesn't exist"):
        api.create_commit(repo, operations=[CommitOperationDelete("keep.txt/")], commit_message="file as folder")
    for kind, path in [("deletedFile", "nope.txt"), ("deletedFile", "dir/sub/nope"),
                       ("deletedFolder", "nope/"), ("deletedFolder", "keep.txt"), ("deletedFile", "keep.txt/x")]:
        r = post_commit(server, repo, ndjson(HEADER, OK_FILE, {"key": kind, "value": {"path": path}}))
        assert r.status_code == 404 and r.headers["X-Error-Code"] == "EntryNotFound", (kind, path, r.text)
        assert "with this name doesn't exist" in r.headers["X-Error-Message"], (kind, path)
    assert snapshot(api, repo) == before


def test_folder_delete_over_http(api: HfApi, server: LiveServer, repo: str) -> None:
    r = post_commit(server, repo, ndjson(HEADER, {"key": "deletedFolder", "value": {"path": "dir/sub/"}}))
    assert r.status_code == 200, r.text
    left = [".gitattributes", "dir/inner.txt", "keep.txt", "other/x.txt"]
    assert snapshot(api, repo) == (r.json()["commitOid"], left)
