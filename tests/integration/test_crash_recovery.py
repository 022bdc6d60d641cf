"""kill -9 in the middle of an LFS upload or of a commit, then restart on the same state.

The acceptance criterion: after the restart nothing partial is visible (no half-written LFS
object, no branch pointing at half a commit), ``modelyard fsck`` is clean, and the client's
retry succeeds and reads back byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from modelyard.http.routes.lfs import WRITE_BATCH
from modelyard.storage.local import STAGING
from tests.support.server import TOKENS, LiveServer

MiB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKENS['alice']}"}
LFS_JSON = "application/vnd.git-lfs+json"


# -- helpers -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


class GatedRequest:
    """An HTTP request in a thread whose body a generator streams: ``before``, a gate, ``after``.

    The generator blocks at the gate until ``release()``, so the test knows exactly how much of
    the body has left the client when it kills the server.
    """

    def __init__(
        self, method: str, url: str, before: list[bytes], after: list[bytes], headers: dict[str, str]
    ) -> None:
        self.at_gate = threading.Event()
        self.body_sent = threading.Event()
        self._release = threading.Event()
        self._before, self._after = before, after
        self.outcome: httpx.Response | httpx.HTTPError | None = None
        self._thread = threading.Thread(target=self._run, args=(method, url, headers), daemon=True)
        self._thread.start()

    def _body(self) -> Iterator[bytes]:
        yield from self._before
        self.at_gate.set()  # runs once every chunk before the gate has been written
        self._release.wait(60)
        yield from self._after
        self.body_sent.set()  # runs once the last chunk has been written to the socket

    def _run(self, method: str, url: str, headers: dict[str, str]) -> None:
        try:
            self.outcome = httpx.request(method, url, content=self._body(), headers=headers, timeout=60)
        except httpx.HTTPError as exc:
            self.outcome = exc

    def release(self) -> None:
        self._release.set()

    def finish(self) -> httpx.Response | httpx.HTTPError | None:
        self.release()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the client request never ended"
        return self.outcome


def chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False).hexdigest()


def lfs_batch(server: LiveServer, repo_id: str, oid: str, size: int) -> dict[str, object]:
    response = httpx.post(
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
        headers={**AUTH, "Accept": LFS_JSON, "Content-Type": LFS_JSON},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    [obj] = response.json()["objects"]
    assert obj["oid"] == oid
    return obj  # type: ignore[no-any-return]


def lfs_files_named(server: LiveServer, oid: str) -> list[Path]:
    return list((server.data_dir / "blobs" / "lfs").rglob(oid))


def assert_fsck_clean(server: LiveServer) -> None:
    result = server.cli("fsck", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout


def restart(server: LiveServer) -> None:
    assert server.proc is None, "kill9() must have ended the process"
    server.start()


# -- (a) kill -9 during an LFS upload ----------------------------------------------------------


def test_kill9_mid_lfs_upload_leaves_no_partial_object(running_server: LiveServer, tmp_path: Path) -> None:
    server = running_server
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    repo_id = f"alice/crash-lfs-{server.backend}"
    api.create_repo(repo_id)
    # More than one server-side write batch (and more than the local store's staging buffer)
    # before the gate, so bytes reach the disk mid-body.
    before_gate = max(WRITE_BATCH, STAGING) + MiB
    data = b"\x00" + random.Random(7).randbytes(before_gate + 2 * MiB)
    oid = hashlib.sha256(data).hexdigest()

    obj = lfs_batch(server, repo_id, oid, len(data))
    href = obj["actions"]["upload"]["href"]  # type: ignore[index]
    tmp_dir = server.data_dir / "blobs" / "tmp"
    tmp_before = set(tmp_dir.iterdir()) if tmp_dir.exists() else set()

    def partial_on_disk() -> bool:
        for path in (set(tmp_dir.iterdir()) if tmp_dir.exists() else set()) - tmp_before:
            with suppress(FileNotFoundError):
                if path.stat().st_size >= MiB:
                    return True
        return False

    upload = GatedRequest(
        "PUT", href, chunks(data[:before_gate]), chunks(data[before_gate:]),
        {"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"},
    )
    assert upload.at_gate.wait(30)
    # The server has streamed part of the body into its temporary file: it is mid-body.
    wait_for(partial_on_disk, "the server to write part of the body")
    server.kill9()
    outcome = upload.finish()
    assert isinstance(outcome, httpx.HTTPError), f"the upload should have failed, got {outcome!r}"
    assert lfs_files_named(server, oid) == []

    restart(server)
    assert_fsck_clean(server)
    assert lfs_files_named(server, oid) == []
    again = lfs_batch(server, repo_id, oid, len(data))
    assert "upload" in again.get("actions", {}), f"the batch API must still ask for {oid}: {again}"  # type: ignore[operator]

    api.upload_file(path_or_fileobj=data, path_in_repo="weights.bin", repo_id=repo_id)
    [sibling] = [s for s in api.model_info(repo_id, files_metadata=True).siblings or [] if s.rfilename == "weights.bin"]
    assert sibling.lfs is not None and sibling.lfs.sha256 == oid and sibling.lfs.size == len(data)
    path = hf_hub_download(repo_id, "weights.bin", endpoint=server.url, token=TOKENS["alice"],
                           cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == data
    assert len(lfs_files_named(server, oid)) == 1
    assert_fsck_clean(server)


# -- (b) kill -9 during a commit ---------------------------------------------------------------


def many_files(tag: str, count: int, size: int) -> dict[str, bytes]:
    """``count`` text files of ``size`` bytes each, the same for the same arguments."""
    rnd = random.Random(tag)
    return {f"shards/{tag}/part-{i:05d}.txt": rnd.randbytes(size // 2).hex().encode() for i in range(count)}


def ndjson_commit(summary: str, files: dict[str, bytes]) -> bytes:
    lines = [json.dumps({"key": "header", "value": {"summary": summary}})]
    for path, content in files.items():
        value = {"path": path, "encoding": "base64", "content": base64.b64encode(content).decode()}
        lines.append(json.dumps({"key": "file", "value": value}))
    return ("\n".join(lines) + "\n").encode()


def commit_request(server: LiveServer, repo_id: str, body: bytes, split: int) -> GatedRequest:
    return GatedRequest(
        "POST", f"{server.url}/api/models/{repo_id}/commit/main", chunks(body[:split]), chunks(body[split:]),
        {**AUTH, "Content-Type": "application/x-ndjson", "Content-Length": str(len(body))},
    )


@contextmanager
def server_is_writing(server: LiveServer) -> Iterator[Callable[[], bool]]:
    """A probe that is true while the server holds an open write transaction."""
    if server.database_url is None:
        db_path = server.data_dir / "modelyard.db"

        def sqlite_writing() -> bool:
            probe = sqlite3.connect(db_path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                return True
            finally:
                if probe.in_transaction:
                    probe.execute("ROLLBACK")
                probe.close()
            return False

        yield sqlite_writing
        return
    probe_conn = psycopg.connect(server.database_url.replace("postgresql+psycopg://", "postgresql://"),
                                 autocommit=True)

    def postgres_writing() -> bool:
        # A transaction gets an xid at its first write: the commit is inserting objects.
        row = probe_conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        ).fetchone()
        return row is not None and row[0] > 0

    with probe_conn:
        yield postgres_writing


def assert_old_or_complete(api: HfApi, repo_id: str, old_head: str, files: dict[str, bytes]) -> bool:
    """The branch is at the old commit or at the whole new one; True when the commit landed."""
    info = api.model_info(repo_id, files_metadata=True)
    blob_ids = {s.rfilename: s.blob_id for s in info.siblings or []}
    if info.sha == old_head:
        assert not set(files) & set(blob_ids), "the old head shows files of the interrupted commit"
        return False
    commits = api.list_repo_commits(repo_id)
    assert commits[1].commit_id == old_head, "the new head must sit directly on the old one"
    missing = [p for p in files if p not in blob_ids]
    wrong = [p for p, content in files.items() if p in blob_ids and blob_ids[p] != git_blob_id(content)]
    assert not missing and not wrong, f"partial commit: {len(missing)} missing, {len(wrong)} wrong"
    return True


def retry_with_client(api: HfApi, repo_id: str, files: dict[str, bytes], tmp_path: Path, url: str) -> str:
    """The client's retry commits (or finds already committed) every file, byte-identical."""
    acknowledged = api.create_commit(
        repo_id, [CommitOperationAdd(path, content) for path, content in files.items()],
        commit_message="retry after the crash",
    )
    info = api.model_info(repo_id, files_metadata=True)
    blob_ids = {s.rfilename: s.blob_id for s in info.siblings or []}
    assert {p: blob_ids.get(p) for p in files} == {p: git_blob_id(c) for p, c in files.items()}
    for path in list(files)[:: len(files) // 3]:  # a few through /resolve too
        local = hf_hub_download(repo_id, path, endpoint=url, token=TOKENS["alice"], cache_dir=tmp_path / "cache")
        assert Path(local).read_bytes() == files[path]
    return acknowledged.oid


def _prepare_repo(server: LiveServer, name: str) -> tuple[HfApi, str, str]:
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    repo_id = f"alice/{name}-{server.backend}"
    api.create_repo(repo_id)
    old_head = api.upload_file(path_or_fileobj=b"before the crash\n", path_in_repo="README.md",
                               repo_id=repo_id).oid
    return api, repo_id, old_head


def test_kill9_mid_commit_body_keeps_old_head(running_server: LiveServer, tmp_path: Path) -> None:
    server = running_server
    api, repo_id, old_head = _prepare_repo(server, "crash-body")
    files = many_files("body", 300, 4000)  # a 1.6 MB body
    body = ndjson_commit("many files", files)
    split = len(body) // 2
    read_before = server.bytes_read()
    request = commit_request(server, repo_id, body, split)
    assert request.at_gate.wait(30)
    # The commit body is parsed in memory, so nothing reaches the disk mid-body: the server's own
    # read counter proves that it has taken in the first half when it is killed.
    wait_for(lambda: server.bytes_read() - read_before >= split, "the server to read the first half of the body")
    assert request.outcome is None, "the server answered before the whole body was sent"
    server.kill9()
    outcome = request.finish()
    assert isinstance(outcome, httpx.HTTPError), f"the commit should have failed, got {outcome!r}"

    restart(server)
    # Half a body can never become a commit: the branch is exactly where it was.
    assert api.model_info(repo_id).sha == old_head
    assert assert_old_or_complete(api, repo_id, old_head, files) is False
    assert_fsck_clean(server)
    retry_with_client(api, repo_id, files, tmp_path, server.url)
    assert api.list_repo_commits(repo_id)[1].commit_id == old_head
    assert_fsck_clean(server)


def test_kill9_while_commit_is_processed(running_server: LiveServer, tmp_path: Path) -> None:
    server = running_server
    api, repo_id, old_head = _prepare_repo(server, "crash-txn")
    files = many_files("txn", 1000, 2000)  # a commit transaction of ~0.2 s
    body = ndjson_commit("many files", files)
    with server_is_writing(server) as writing:
        request = commit_request(server, repo_id, body, 0)
        request.release()
        assert request.body_sent.wait(30)
        # The whole body is out; kill as soon as the server is inside the commit's transaction.
        wait_for(lambda: writing() or request.outcome is not None, "the commit transaction")
        assert request.outcome is None, "the server answered before the probe saw its transaction"
        server.kill9()
    outcome = request.finish()
    assert isinstance(outcome, httpx.HTTPError), f"the commit should have been cut off, got {outcome!r}"

    restart(server)
    assert_old_or_complete(api, repo_id, old_head, files)
    assert_fsck_clean(server)
    acknowledged = retry_with_client(api, repo_id, files, tmp_path, server.url)

    # A commit the client was told about survives a kill -9 right after the answer.
    server.kill9()
    restart(server)
    assert api.model_info(repo_id).sha == acknowledged
    assert_old_or_complete(api, repo_id, old_head, files)
    assert_fsck_clean(server)

