"""gc against writers that re-reference collectable files by oid, in the window between gc's
reachability walk and its release (forced: the walk of the repo is made to wait until the
writers are done), on SQLite and PostgreSQL.

The collectable files: an LFS object and a Xet file whose only commits a super-squash made
unreachable (the repo still holds them), and an LFS object only reachable from the commit of a
deleted branch (which still resolves by id). While gc waits between walking and releasing, a
commit names the first two again by oid (``lfsFile``, as a revert or a copy does) and a new branch
is created at the deleted branch's commit. Nothing may be lost: every file downloads, ``fsck`` is
clean. Then, with no writer in the window, gc does collect what is unreachable.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from modelyard.config import Settings
from modelyard.services import gc as gc_module
from modelyard.services.hub import Hub
from tests.integration.conftest import BACKENDS
from tests.support.server import TOKENS, LiveServer, seeded_hub
from tests.support.xet import Cas, cas_token, payload

ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}


@pytest.fixture(params=BACKENDS)
def hub_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"gc-race-{request.param}")) as hub, hub.running() as live:
        yield live


def commit(server: LiveServer, repo_id: str, *lines: dict[str, Any], rev: str = "main") -> str:
    body = json.dumps({"key": "header", "value": {"summary": "race"}}) + "\n"
    body += "".join(json.dumps(line) + "\n" for line in lines)
    r = httpx.post(f"{server.url}/api/models/{repo_id}/commit/{rev}", content=body.encode(),
                   headers={**ALICE, "Content-Type": "application/x-ndjson"}, timeout=60)
    assert r.status_code == 200, r.text
    return str(r.json()["commitOid"])


def lfs_line(path: str, sha256: str, size: int) -> dict[str, Any]:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": sha256, "size": size}}


def download(server: LiveServer, repo_id: str, path: str, rev: str = "main") -> httpx.Response:
    return httpx.get(f"{server.url}/{repo_id}/resolve/{rev}/{path}", headers=ALICE, timeout=60)


class PausedGc:
    """``gc.collect`` in a thread, held after its reachability walk of one repo until released."""

    def __init__(self, server: LiveServer, repo_pk: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walked = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        walk = gc_module.reachable_pointers

        def walk_then_wait(*args: Any, **kwargs: Any) -> Any:
            result = walk(*args, **kwargs)
            if args[1] == repo_pk:
                self.walked.set()
                assert self.release.wait(120), "never released"
            return result

        monkeypatch.setattr(gc_module, "reachable_pointers", walk_then_wait)
        settings = Settings(data_dir=server.data_dir, database_url=server.database_url)
        self.hub = Hub(settings)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            gc_module.collect(self.hub, grace=0)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def __enter__(self) -> PausedGc:
        self.thread.start()
        assert self.walked.wait(120), "gc never reached the repo"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(120)
        self.hub.close()
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def repo_pk(server: LiveServer, repo_id: str) -> int:
    r = httpx.get(f"{server.url}/api/models/{repo_id}", headers=ALICE)
    return int(r.json()["_id"], 16)


def test_gc_never_releases_what_a_concurrent_writer_references_again(
    hub_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = hub_server
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])  # Git LFS in this process
    repo_id = api.create_repo("acme/raced").repo_id
    lfs_data, branch_data = os.urandom(3000), os.urandom(4000)
    api.upload_file(path_or_fileobj=lfs_data, path_in_repo="a.bin", repo_id=repo_id)
    xet = payload(os.urandom(200_000))
    cas = Cas(server, cas_token(server, repo_id, "write", TOKENS["alice"]))
    cas.upload(xet)
    commit(server, repo_id, lfs_line("x.bin", xet.sha256, len(xet.data)))
    [a_info] = api.get_paths_info(repo_id, ["a.bin"])
    assert a_info.lfs is not None
    a_sha = a_info.lfs.sha256
    api.delete_files(repo_id, delete_patterns=["a.bin", "x.bin"])
    api.super_squash_history(repo_id)  # the commits that held a.bin and x.bin no longer resolve
    api.create_branch(repo_id, branch="side")
    side = api.upload_file(path_or_fileobj=branch_data, path_in_repo="b.bin", repo_id=repo_id, revision="side")
    side_commit = side.oid
    api.delete_branch(repo_id, branch="side")  # side's commit still resolves by id
    assert download(server, repo_id, "b.bin", side_commit).content == branch_data

    with PausedGc(server, repo_pk(server, repo_id), monkeypatch):
        # In the window: a revert names a.bin and x.bin again by oid; a branch revives side's commit.
        commit(server, repo_id, lfs_line("a.bin", a_sha, len(lfs_data)), lfs_line("x.bin", xet.sha256, len(xet.data)))
        api.create_branch(repo_id, branch="revived", revision=side_commit)

    assert download(server, repo_id, "a.bin").content == lfs_data
    assert download(server, repo_id, "x.bin").content == xet.data
    assert download(server, repo_id, "b.bin", "revived").content == branch_data
    fsck = server.cli("fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    # No writer in the window: gc lets go of what is unreachable, and what it let go of stays gone.
    api.delete_files(repo_id, delete_patterns=["a.bin", "x.bin"])
    api.delete_branch(repo_id, branch="revived")
    api.super_squash_history(repo_id)
    report = json.loads(server.cli("gc", "--grace", "0").stdout)
    assert report["lfs_objects"] >= 2 and report["xet_files"] >= 1, report
    r = httpx.get(f"{server.url}/api/models/{repo_id}/revision/{side_commit}", headers=ALICE)
    assert r.status_code == 404 and r.headers["X-Error-Code"] == "RevisionNotFound"
    r = httpx.post(f"{server.url}/api/models/{repo_id}/branch/again", json={"startingPoint": side_commit},
                   headers=ALICE)
    assert r.status_code == 404
    refused = commit_status(server, repo_id, lfs_line("a.bin", a_sha, len(lfs_data)))
    assert refused == 400  # the repo no longer holds it: re-upload first
    assert server.cli("fsck", check=False).returncode == 0


def commit_status(server: LiveServer, repo_id: str, *lines: dict[str, Any]) -> int:
    body = json.dumps({"key": "header", "value": {"summary": "race"}}) + "\n"
    body += "".join(json.dumps(line) + "\n" for line in lines)
    r = httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", content=body.encode(),
                   headers={**ALICE, "Content-Type": "application/x-ndjson"}, timeout=60)
    return r.status_code

