"""LFS file management (hub-api.md §9.4) through the real client: ``list_lfs_files`` and
``permanently_delete_lfs_files``.

A permanently deleted object is gone from every revision of its repo (410 with
``X-Error-Code: EntryNotFound``, so ``hf_hub_download`` raises ``RemoteEntryNotFoundError`` with our
message), its bytes leave the blob store unless another repo holds the same object, the repo's
used storage drops, and ``fsck`` and ``gc`` agree with all of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import LFSFileInfo
from huggingface_hub.utils._pagination import paginate

from tests.conftest import BACKENDS
from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer, seeded_hub

PURGED = r"permanently deleted from this repository"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_path(server: LiveServer, oid: str) -> Path:
    return server.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def used_storage(api: HfApi, server: LiveServer, repo_id: str) -> int:
    server.settle()  # usedStorage follows commits through the job queue
    used = api.model_info(repo_id).used_storage
    assert used is not None
    return used


def fsck_lines_about(server: LiveServer, *needles: str) -> list[str]:
    """fsck's problems that concern these repos or oids (the session's server is shared)."""
    proc = server.cli("fsck", check=False)
    return [line for line in proc.stdout.splitlines() if any(n in line for n in needles)]


def download(server: LiveServer, repo_id: str, path: str, cache: Path, revision: str | None = None) -> bytes:
    return Path(hf_hub_download(repo_id, path, revision=revision, endpoint=server.url, cache_dir=cache)).read_bytes()


@pytest.fixture
def history(api: HfApi, repo_name: str) -> dict[str, object]:
    """alice's repo with large files over two commits: a.bin changes, b stays, c arrives."""
    repo_id = api.create_repo(repo_name).repo_id
    files = {name: os.urandom(size) for name, size in
             [("a1", 150_000), ("a2", 160_000), ("b", 170_000), ("c", 180_000)]}
    first = api.create_commit(repo_id, [
        CommitOperationAdd("weights/a.bin", files["a1"]),
        CommitOperationAdd("b.safetensors", files["b"]),
        CommitOperationAdd("config.json", b'{"model_type": "bert"}'),
    ], commit_message="first").oid
    second = api.create_commit(repo_id, [
        CommitOperationAdd("weights/a.bin", files["a2"]),
        CommitOperationAdd("c.bin", files["c"]),
    ], commit_message="second").oid
    return {"repo_id": repo_id, "files": files, "first": first, "second": second}


def test_list_lfs_files_fields_and_pages(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, history: dict[str, object]
) -> None:
    repo_id, files = str(history["repo_id"]), history["files"]
    assert isinstance(files, dict)
    listed = list(api.list_lfs_files(repo_id))
    by_oid = {f.file_oid: f for f in listed}
    assert set(by_oid) == {sha(files[k]) for k in ("a1", "a2", "b", "c")} and len(listed) == 4
    names = {"a1": "weights/a.bin", "a2": "weights/a.bin", "b": "b.safetensors", "c": "c.bin"}
    for key, data in files.items():
        item = by_oid[sha(data)]
        assert item.oid == item.file_oid and item.size == len(data) and item.filename == names[key]
        assert isinstance(item.pushed_at, datetime) and item.pushed_at.tzinfo is not None
        assert item.ref == "refs/heads/main"
        assert not hasattr(item, "xetHash")  # came through Git LFS
    # The regular file is not an LFS object.
    assert all(f.filename != "config.json" for f in listed)

    # Pages: the client's own paginator follows the absolute Link header, one item per page.
    url = f"{server.url}/api/models/{repo_id}/lfs-files"
    headers = {"authorization": f"Bearer {TOKENS['alice']}"}
    paged = [LFSFileInfo(**item) for item in paginate(url, params={"limit": 1}, headers=headers)]
    assert [f.file_oid for f in paged] == sorted(by_oid)
    first = httpx.get(url, params={"limit": 3})
    assert first.status_code == 200 and len(first.json()) == 3
    assert first.links["next"]["url"].startswith(f"{server.url}/api/models/{repo_id}/lfs-files?cursor=")
    assert "next" not in httpx.get(first.links["next"]["url"]).links
    assert httpx.get(url, params={"cursor": "not-an-oid"}).status_code == 400

    # Whoever may read the repo may list; a private repo is hidden from the others like a missing one.
    assert {f.file_oid for f in api_as(None).list_lfs_files(repo_id)} == set(by_oid)
    api.update_repo_settings(repo_id, private=True)
    with pytest.raises(RepositoryNotFoundError):
        list(api_as("bob").list_lfs_files(repo_id))
    assert {f.file_oid for f in api_as("alice_read").list_lfs_files(repo_id)} == set(by_oid)


def test_permanently_delete(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, history: dict[str, object],
    repo_name: str, tmp_path: Path,
) -> None:
    repo_id, files = str(history["repo_id"]), history["files"]
    first, second = str(history["first"]), str(history["second"])
    assert isinstance(files, dict)
    a1, a2, b, c = (sha(files[k]) for k in ("a1", "a2", "b", "c"))
    # bob holds the same bytes as b.safetensors in a repo of his: stored once, shared.
    bob = api_as("bob")
    other = bob.create_repo(f"{repo_name}-bob").repo_id
    bob.upload_file(path_or_fileobj=files["b"], path_in_repo="copy.safetensors", repo_id=other)
    assert blob_path(server, a1).exists() and blob_path(server, b).exists()
    before = used_storage(api, server, repo_id)
    listed = {f.file_oid: f for f in api.list_lfs_files(repo_id)}
    doomed = [listed[a1], listed[b]]

    # Only writers may delete: bob (a reader of alice's public repo), alice's read token, anonymous.
    for who in ("bob", "alice_read", None):
        with pytest.raises(HfHubHTTPError) as refused:
            api_as(who).permanently_delete_lfs_files(repo_id, doomed)
        assert refused.value.response.status_code == (401 if who is None else 403)
    assert {f.file_oid for f in api.list_lfs_files(repo_id)} == {a1, a2, b, c}
    assert download(server, repo_id, "b.safetensors", tmp_path / "c0", first) == files["b"]

    # An oid the repo never held is ignored, as deleting twice is; a malformed one is refused.
    unknown = LFSFileInfo(fileOid=sha(b"never uploaded"), filename="x", oid=sha(b"never uploaded"),
                          pushedAt="2026-01-01T00:00:00.000Z", size=14)
    api.permanently_delete_lfs_files(repo_id, [unknown])
    bad = LFSFileInfo(fileOid="../../etc", filename="x", oid="x", pushedAt="2026-01-01T00:00:00.000Z", size=1)
    with pytest.raises(BadRequestError):
        api.permanently_delete_lfs_files(repo_id, [bad])
    assert {f.file_oid for f in api.list_lfs_files(repo_id)} == {a1, a2, b, c}

    api.permanently_delete_lfs_files(repo_id, doomed, rewrite_history=False)

    assert {f.file_oid for f in api.list_lfs_files(repo_id)} == {a2, c}
    # Gone in every revision that referenced them, with the client's own exception and our message.
    for path, revision in [("b.safetensors", None), ("b.safetensors", second), ("b.safetensors", first),
                           ("weights/a.bin", first)]:
        with pytest.raises(RemoteEntryNotFoundError, match=PURGED):
            download(server, repo_id, path, tmp_path / "c1", revision)
    with pytest.raises(RemoteEntryNotFoundError, match=PURGED):
        get_hf_file_metadata(hf_hub_url(repo_id, "b.safetensors", revision=first, endpoint=server.url))
    for method in ("HEAD", "GET"):
        r = httpx.request(method, f"{server.url}/{repo_id}/resolve/{first}/weights/a.bin")
        assert r.status_code == 410 and r.headers["X-Error-Code"] == "EntryNotFound"
        assert PURGED in r.headers["X-Error-Message"] and a1 in r.headers["X-Error-Message"]
        assert r.headers["X-Repo-Commit"] == first
    # The Git LFS batch API says "removed by the owner" (410) for the object.
    lfs = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
                     json={"operation": "download", "objects": [{"oid": b, "size": len(files["b"])}]})
    assert lfs.json()["objects"][0]["error"]["code"] == 410
    # The other files still download, at both revisions; the pointers stay in the tree.
    assert download(server, repo_id, "weights/a.bin", tmp_path / "c2") == files["a2"]
    assert download(server, repo_id, "c.bin", tmp_path / "c2", second) == files["c"]
    assert download(server, repo_id, "config.json", tmp_path / "c2", first) == b'{"model_type": "bert"}'
    tree = {e.path for e in api.list_repo_tree(repo_id, revision=first, recursive=True)}
    assert {"b.safetensors", "weights/a.bin"} <= tree

    # Storage: a1 left the disk; b stays for bob's repo, which still downloads it.
    assert not blob_path(server, a1).exists()
    assert blob_path(server, b).exists()
    assert download(server, other, "copy.safetensors", tmp_path / "c3") == files["b"]
    assert used_storage(api, server, repo_id) == before - len(files["a1"]) - len(files["b"])
    assert fsck_lines_about(server, repo_id, other, a1, b) == []

    # Uploading the same bytes again makes the old revisions whole again.
    api.upload_file(path_or_fileobj=files["a1"], path_in_repo="restored.bin", repo_id=repo_id)
    assert download(server, repo_id, "weights/a.bin", tmp_path / "c4", first) == files["a1"]
    assert fsck_lines_about(server, repo_id, a1) == []

    # The Hub's single deletion, DELETE lfs-files/{sha}: writers only, then gone again.
    url = f"{server.url}/api/models/{repo_id}/lfs-files/{a1}"
    assert httpx.delete(url, headers={"authorization": f"Bearer {TOKENS['bob']}"}).status_code == 403
    done = httpx.delete(url, params={"rewriteHistory": "false"},
                        headers={"authorization": f"Bearer {TOKENS['alice']}"})
    assert done.status_code == 200 and done.json() == {"deleted": [a1]}
    for path in ("restored.bin", "weights/a.bin"):
        with pytest.raises(RemoteEntryNotFoundError, match=PURGED):
            download(server, repo_id, path, tmp_path / "c5", first if path == "weights/a.bin" else None)


def test_rewrite_history_as_the_hub_does(
    api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    """The client's default, ``rewrite_history=True``: the files leave every tree of every ref (the
    flow of huggingface_hub's own test of the Hub), the history keeps its commits and messages, the
    rewritten commits get new ids and the old ones stop resolving."""
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"LFS content", path_in_repo="lfs_file.bin", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"TXT content", path_in_repo="txt_file.txt", repo_id=repo_id)
    api.create_branch(repo_id, branch="my-branch")
    api.upload_file(path_or_fileobj=b"LFS content branch", path_in_repo="lfs_file_branch.bin", repo_id=repo_id,
                    revision="my-branch")
    # Last on main, so that usedStorage (refreshed after commits to main) counts the branch's file too.
    api.upload_file(path_or_fileobj=b"LFS content 2", path_in_repo="d/lfs_file_2.bin", repo_id=repo_id)
    api.create_tag(repo_id, tag="v1")
    pr = api.create_commit(repo_id, [CommitOperationAdd("pr.txt", b"PR")], commit_message="a PR",
                           create_pr=True).pr_revision
    assert pr is not None
    before = api.list_repo_commits(repo_id)
    old_head = before[0].commit_id
    used_before = used_storage(api, server, repo_id)

    lfs_files = list(api.list_lfs_files(repo_id))
    assert {f.filename for f in lfs_files} == {"lfs_file.bin", "d/lfs_file_2.bin", "lfs_file_branch.bin"}
    on_main = [f for f in lfs_files if f.ref in ("main", "refs/heads/main")]
    assert len(on_main) == 2
    api.permanently_delete_lfs_files(repo_id, on_main)

    assert {f.filename for f in api.list_lfs_files(repo_id)} == {"lfs_file_branch.bin"}
    assert set(api.list_repo_files(repo_id)) == {".gitattributes", "txt_file.txt"}
    assert set(api.list_repo_files(repo_id, revision="v1")) == {".gitattributes", "txt_file.txt"}
    assert set(api.list_repo_files(repo_id, revision=pr)) == {".gitattributes", "txt_file.txt", "pr.txt"}
    assert set(api.list_repo_files(repo_id, revision="my-branch")) == {
        ".gitattributes", "txt_file.txt", "lfs_file_branch.bin"}
    with pytest.raises(EntryNotFoundError):
        api.hf_hub_download(repo_id=repo_id, filename="lfs_file.bin", cache_dir=tmp_path)
    after = api.list_repo_commits(repo_id)
    assert [c.title for c in after] == [c.title for c in before]
    assert after[-1].commit_id == before[-1].commit_id  # before the first LFS file: untouched
    assert after[0].commit_id != old_head
    with pytest.raises(RevisionNotFoundError):
        download(server, repo_id, "txt_file.txt", tmp_path / "c1", old_head)
    assert download(server, repo_id, "txt_file.txt", tmp_path / "c2") == b"TXT content"
    assert download(server, repo_id, "lfs_file_branch.bin", tmp_path / "c2", "my-branch") == b"LFS content branch"
    assert not blob_path(server, sha(b"LFS content")).exists()
    assert used_storage(api, server, repo_id) == used_before - len(b"LFS content") - len(b"LFS content 2")
    assert fsck_lines_about(server, repo_id) == []


def test_xet_files_are_listed_and_deleted(
    api: HfApi, server: LiveServer, repo_name: str, xet_env: dict[str, str], tmp_path: Path
) -> None:
    repo_id = f"alice/{repo_name}"
    data = os.urandom(300_000)
    (tmp_path / "w.bin").write_bytes(data)
    run_client("xet_client.py", ["upload", repo_id, str(tmp_path / "w.bin"), "w.safetensors"], xet_env)
    (item,) = api.list_lfs_files(repo_id)
    xet_hash = api.get_paths_info(repo_id, ["w.safetensors"])[0].xet_hash  # type: ignore[union-attr]
    assert item.file_oid == sha(data) and item.size == len(data) and item.filename == "w.safetensors"
    assert xet_hash and item.xetHash == xet_hash  # type: ignore[attr-defined]

    api.permanently_delete_lfs_files(repo_id, [item], rewrite_history=False)
    assert list(api.list_lfs_files(repo_id)) == []
    fetched = run_client("xet_client.py", ["fetch", repo_id, json.dumps([{"path": "w.safetensors"}])], xet_env)
    assert fetched["results"] == [{"error": "RemoteEntryNotFoundError", "status": 410, "code": "EntryNotFound"}]
    with pytest.raises(RemoteEntryNotFoundError, match=PURGED):
        download(server, repo_id, "w.safetensors", tmp_path / "c")
    assert fsck_lines_about(server, repo_id, sha(data)) == []
    # The catalog still follows the repo: indexing skips the purged weights (their bytes are gone
    # for good) instead of failing, and retrying, on them.
    api.upload_file(path_or_fileobj=b"---\ntags: [after-purge]\n---\n", path_in_repo="README.md", repo_id=repo_id)
    server.settle()
    assert "after-purge" in (api.model_info(repo_id).tags or [])


@pytest.fixture(params=BACKENDS)
def own_hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A hub of its own: gc with no grace period must not touch the shared server's uploads."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"purge-gc-{request.param}")) as hub, \
            hub.running() as live:
        yield live


def test_gc_after_a_purge(own_hub: LiveServer, tmp_path: Path) -> None:
    """A pointer whose repo purged its object keeps nothing alive: once the last repo holding the
    same object lets go of it, gc reclaims the bytes, and nothing is brought back."""
    alice = HfApi(endpoint=own_hub.url, token=TOKENS["alice"])
    data = os.urandom(120_000)
    oid = sha(data)
    for name in ("purging", "holding"):
        alice.create_repo(name)
        alice.upload_file(path_or_fileobj=data, path_in_repo="m.safetensors", repo_id=f"alice/{name}")
    alice.permanently_delete_lfs_files("alice/purging", list(alice.list_lfs_files("alice/purging")),
                                       rewrite_history=False)
    assert blob_path(own_hub, oid).exists()  # alice/holding still holds it

    report = json.loads(own_hub.cli("gc", "--grace", "0").stdout)
    assert report["lfs_objects"] == 0 and blob_path(own_hub, oid).exists()
    assert download(own_hub, "alice/holding", "m.safetensors", tmp_path / "c1") == data

    alice.delete_repo("alice/holding")
    report = json.loads(own_hub.cli("gc", "--grace", "0").stdout)
    assert report["lfs_objects"] == 1 and report["lfs_bytes"] == len(data)
    assert not blob_path(own_hub, oid).exists()
    with pytest.raises(RemoteEntryNotFoundError, match=PURGED):
        download(own_hub, "alice/purging", "m.safetensors", tmp_path / "c2")
    assert list(alice.list_lfs_files("alice/purging")) == []
    assert own_hub.cli("fsck").stdout.strip() == "fsck: no problems found"
