"""Scanning what is committed: what loading each file would run, shown where the clients read it.

Every file a ref move adds is queued for a scan in the transaction that finishes its event
(``services/events.py``), then scanned by a job on the shared queue: its first bytes say whether
anything in it can run when it is loaded (``metadata/scanner.py: kind``); if so, the maintained
scanners read it inside a sandbox process, which asks the hub for the ranges it needs (so a
checkpoint's tensor data is never read), under a time limit, an address-space limit and a byte
budget. A result belongs to the content (and the extension class that decides how it is read),
so a file committed to many repos or branches is scanned once. Results are served as
``securityFileStatus`` (tree and paths-info with ``expand``) and ``securityRepoStatus``
(``model_info(securityStatus=True)``). Unsafe files stay downloadable, as on the Hub, unless
``MODELYARD_SCAN_REFUSE_UNSAFE`` refuses them at commit time.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import IO, Any, cast

from dulwich.objects import Blob, Commit
from sqlalchemy import Connection

from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import scans as scans_q
from modelyard.catalog.scans import Scan
from modelyard.errors import HubError, RefusedContentError
from modelyard.ids import Oid
from modelyard.metadata.reader import Read, bytes_reader
from modelyard.metadata.scanner import HEAD_BYTES, extension, kind, rules
from modelyard.metadata.secrets import find_secrets
from modelyard.services.files import FileEntry, file_entries
from modelyard.services.hub import Hub, utcnow
from modelyard.storage.base import BlobNotFoundError, lfs_key
from modelyard.versioning.objects import commit_info, make_blob
from modelyard.versioning.trees import added_files, lookup

log = logging.getLogger("modelyard.scans")
#: Keys per scan job.
JOB_BATCH = 50
ISSUE_STATUSES = ("unsafe", "caution", "error")


def content_key(entry: FileEntry) -> str:
    """What a scan result belongs to: the content (LFS object or git blob) and how it is read."""
    content = f"sha256:{entry.lfs_sha256}" if entry.lfs_sha256 is not None else f"git:{entry.oid}"
    return f"{content}|{extension(entry.path)}"


def scan_row(entry: FileEntry) -> dict[str, Any]:
    """A content's ``file_scans`` row before its scan: its key, a path it goes by, where its bytes are."""
    return {"key": content_key(entry), "path": entry.path, "size": entry.size, "sha256": entry.lfs_sha256,
            "oid": None if entry.lfs_sha256 else entry.oid, "xet_hash": entry.xet_hash}


# -- what the clients read --------------------------------------------------------------------


def file_status(scan: Scan | None) -> dict[str, Any]:
    """``securityFileStatus`` as the Hub sends it (``huggingface_hub``: ``BlobSecurityInfo``)."""
    av = {"status": "unscanned", "message": "No antivirus scanner runs on this hub"}
    if scan is None or scan.report is None:
        status = "queued" if scan is not None and scan.status == "queued" else "unscanned"
        return {"status": status, "avScan": av, "pickleImportScan": {"status": status, "pickleImports": []}}
    report = scan.report
    imports = report.get("imports", [])
    levels = {i["safety"] for i in imports}
    pickle_status = "unsafe" if "dangerous" in levels else "caution" if "suspicious" in levels else "safe"
    if scan.status == "error":
        pickle_status = "error"
    status = scan.status if scan.status != "queued" else report.get("status", "queued")
    return {
        "status": status,
        "avScan": av,
        "pickleImportScan": {"status": pickle_status, "pickleImports": imports, "version": scan.rules},
        "modelyardScan": {
            "status": status, "messages": report.get("messages", []), "codeLayers": report.get("codeLayers", []),
            "version": scan.rules, "rescanQueued": scan.status == "queued",
        },
    }


def file_statuses(hub: Hub, entries: Iterable[FileEntry]) -> dict[str, dict[str, Any]]:
    """``securityFileStatus`` of each file among ``entries``, by path (one query)."""
    files = [e for e in entries if not e.is_dir]
    with hub.db.read() as conn:
        found = scans_q.get_many(conn, [content_key(e) for e in files])
    return {e.path: file_status(found.get(content_key(e))) for e in files}


def repo_status(hub: Hub, entries: Iterable[FileEntry]) -> dict[str, Any]:
    """``securityRepoStatus``: whether every file's scan is done, and the files with issues."""
    files = [e for e in entries if not e.is_dir]
    with hub.db.read() as conn:
        found = scans_q.get_many(conn, [content_key(e) for e in files])
    done = True
    issues = []
    for e in sorted(files, key=lambda f: f.path):
        scan = found.get(content_key(e))
        if scan is None or scan.status == "queued":
            done = False  # a rescan keeps its earlier report shown meanwhile
        if scan is None or scan.report is None:
            continue
        status = file_status(scan)["status"]
        if status in ISSUE_STATUSES:
            imports = [i for i in scan.report.get("imports", []) if i["safety"] != "innocuous"]
            issues.append({"path": e.path, "level": status, "pickleImports": imports,
                           "messages": scan.report.get("messages", [])})
    return {"scansDone": done, "filesWithIssues": issues}


# -- queueing -----------------------------------------------------------------------------------


def queue_for_events(
    hub: Hub, conn: Connection, repo_pk: int, moves: Iterable[tuple[str | None, str | None]]
) -> list[str]:
    """Queue the scans of the files that ref moves ``(old, new)`` of a repo bring in, in the
    caller's transaction; the keys queued (``enqueue`` them once it has committed)."""
    if not hub.settings.scan_files:
        return []
    main = refs_q.get(conn, repo_pk, "refs/heads/main")
    items: dict[str, dict[str, Any]] = {}
    for old, new in moves:
        if new is None:
            continue
        base = old or (main if main != new else None)
        try:
            new_tree = commit_info(cast(Commit, hub.objects.get(Oid(new)))).tree
            old_tree = commit_info(cast(Commit, hub.objects.get(Oid(base)))).tree if base else None
        except KeyError:
            continue  # not a commit this hub holds (never expected): nothing to scan
        added = list(added_files(hub.objects, old_tree, new_tree))
        for entry in file_entries(hub, added, repo_pk, conn):
            item = scan_row(entry)
            items.setdefault(item["key"], item)
    large = any(v["sha256"] is not None for v in items.values())
    repo = repos_q.get_by_id(conn, repo_pk) if large else None
    if repo is not None and repo.upstream is not None:  # a mirror: its large files are scanned as they land
        items = {k: v for k, v in items.items()
                 if v["sha256"] is None or repos_q.has_lfs_object(conn, repo_pk, v["sha256"]) is not None}
    return _queue(hub, conn, items)


def _queue(hub: Hub, conn: Connection, items: dict[str, dict[str, Any]]) -> list[str]:
    if not items:
        return []
    known = scans_q.get_many(conn, items)
    fresh = [item for key, item in items.items() if key not in known]
    return scans_q.queue(conn, fresh, utcnow(), timedelta(seconds=hub.settings.job_lease))


def enqueue_landed(hub: Hub, repo_pk: int, commit: str, path: str) -> None:
    """Scan a mirror's large file that just landed (``services/mirror.py``), as an upload's."""
    if not hub.settings.scan_files:
        return
    item = lookup(hub.objects, commit_info(cast(Commit, hub.objects.get(Oid(commit)))).tree, path)
    if item is None:
        return
    with hub.db.write() as conn:
        entries = file_entries(hub, [item], repo_pk, conn)
        keys = _queue(hub, conn, {content_key(e): scan_row(e) for e in entries})
    enqueue(hub, keys)


def enqueue(hub: Hub, keys: list[str]) -> None:
    """Put queued scans on the job queue (after the transaction that queued them committed)."""
    for i in range(0, len(keys), JOB_BATCH):
        hub.jobs.enqueue_scans(keys[i : i + JOB_BATCH])


def sweep(hub: Hub) -> int:
    """Enqueue again the queued scans whose job was lost; how many."""
    with hub.db.write() as conn:
        stale = scans_q.claim_stale(conn, utcnow(), timedelta(seconds=hub.settings.job_lease))
    enqueue(hub, stale)
    return len(stale)


def rescan(hub: Hub, everything: bool = False) -> int:
    """Queue again every content scanned under other scanners or rules (or all of them)."""
    with hub.db.write() as conn:
        keys = scans_q.outdated(conn, rules(), everything)
        scans_q.requeue(conn, keys, utcnow(), timedelta(seconds=hub.settings.job_lease))
    enqueue(hub, keys)
    return len(keys)


def backfill(hub: Hub) -> int:
    """Queue the files of every ref of every repo that were never scanned (committed before
    scanning was on, say); how many contents were queued."""
    from sqlalchemy import select

    from modelyard.catalog.tables import repos

    with hub.db.read() as conn:
        pks = [row.id for row in conn.execute(select(repos.c.id).order_by(repos.c.id))]
    queued = 0
    for pk in pks:
        with hub.db.read() as conn:
            targets = sorted(set(refs_q.all_refs(conn, pk).values()))
        with hub.db.write() as conn:
            keys = queue_for_events(hub, conn, pk, [(None, target) for target in targets])
        enqueue(hub, keys)
        queued += len(keys)
    return queued


# -- scanning -------------------------------------------------------------------------------------


def run_scans(hub: Hub, keys: list[str]) -> None:
    """The job: scan each queued key (a key scanned meanwhile is skipped)."""
    for key in keys:
        with hub.db.write() as conn:
            scan = scans_q.claim(conn, key, utcnow(), timedelta(seconds=hub.settings.job_lease))
        if scan is None:
            continue
        status, report = scan_content(hub, scan)
        with hub.db.write() as conn:
            scans_q.finish(conn, key, status, report, rules(), utcnow())
        log.info("scanned %s (%s): %s", scan.path, key, status)


def reader_of(hub: Hub, sha256: str | None, oid: str | None, xet_hash: str | None) -> Read:
    if xet_hash is not None:
        from modelyard.services.xet import read_range, stored_file

        stored = stored_file(hub, xet_hash)
        return lambda offset, length: b"".join(read_range(hub, stored, offset, offset + length))
    if sha256 is not None:
        key = lfs_key(sha256)
        return lambda offset, length: b"".join(hub.blobs.read(key, offset, offset + length))
    data = cast(Blob, hub.objects.get(Oid(oid or ""))).as_raw_string()
    return lambda offset, length: data[offset : offset + length]


def scan_content(hub: Hub, scan: Scan, data: bytes | None = None) -> tuple[str, dict[str, Any]]:
    """Scan one content (``data``: its bytes, when they are not stored yet): (status, report).
    Storage failures raise (the job is retried)."""
    try:
        read = reader_of(hub, scan.sha256, scan.oid, scan.xet_hash) if data is None else bytes_reader(data)
        head = read(0, min(HEAD_BYTES, scan.size))
    except (BlobNotFoundError, HubError) as exc:  # purged, or its Xet record is gone: nothing to read
        return "error", {"status": "error", "imports": [], "messages": [f"the file's bytes are not stored: {exc}"]}
    scan_kind = kind(scan.path, head)
    if scan_kind is None:
        return "safe", {"status": "safe", "imports": [], "messages": [], "kind": None}
    scanner: Scanner = hub.scanner
    return scanner.scan(read, scan.size, scan_kind, scan.path)


# -- the sandbox ----------------------------------------------------------------------------------


class ScanFailed(Exception):
    """The sandbox ran out of time, memory or byte budget, or died: the file's result is 'error'."""


class Sandbox:
    """One scanner child process (``metadata/scan_child.py``), reused for scan after scan."""

    def __init__(self, memory: int) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "PYTHONHASHSEED": "0", "HDF5_USE_FILE_LOCKING": "FALSE"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard.metadata.scan_child", str(memory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
        )
        self._buffer = b""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def _line(self, deadline: float) -> dict[str, Any]:
        out = cast(IO[bytes], self.proc.stdout)
        fd = out.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScanFailed("timeout")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise ScanFailed("crashed")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return cast(dict[str, Any], json.loads(line))

    def scan(self, read: Read, size: int, scan_kind: str, path: str, timeout: float, budget: int) -> dict[str, Any]:
        stdin = cast(IO[bytes], self.proc.stdin)
        deadline = time.monotonic() + timeout
        spent = 0
        try:
            stdin.write(json.dumps({"kind": scan_kind, "path": path, "size": size}).encode() + b"\n")
            stdin.flush()
            while True:
                message = self._line(deadline)
                if "read" not in message:
                    return message
                offset, length = (int(v) for v in message["read"])
                length = max(0, min(length, size - offset))
                spent += length
                if spent > budget:
                    raise ScanFailed("budget")
                data = read(offset, length) if length else b""
                stdin.write(len(data).to_bytes(8, "big") + data)
                stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ScanFailed("crashed") from exc


class Scanner:
    """The sandboxes of one process: a scan takes an idle one or starts one; a sandbox that
    failed is killed, never reused."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._idle: list[Sandbox] = []

    def scan(self, read: Read, size: int, scan_kind: str, path: str) -> tuple[str, dict[str, Any]]:
        settings = self._hub.settings
        with self._lock:
            box = self._idle.pop() if self._idle else None
        if box is None:
            box = Sandbox(settings.scan_memory)
        try:
            answer = box.scan(read, size, scan_kind, path, settings.scan_timeout, settings.scan_read_budget)
        except ScanFailed as exc:
            box.kill()
            reason = {
                "timeout": f"the scan took longer than {settings.scan_timeout:g} s",
                "budget": f"the scan would read more than {settings.scan_read_budget} bytes of the file",
                "crashed": "the scanner process died (out of memory, or crashed) on this file",
            }[str(exc)]
            return "error", {"status": "error", "imports": [], "messages": [reason], "kind": scan_kind}
        except BaseException:
            box.kill()  # a read failed (the store?): the child waits for bytes that will not come
            raise
        with self._lock:
            self._idle.append(box)
        if "error" in answer:
            return "error", {"status": "error", "imports": [], "messages": [str(answer["error"])], "kind": scan_kind}
        report = dict(answer["report"], kind=scan_kind)
        return str(report["status"]), report

    def close(self) -> None:
        with self._lock:
            boxes, self._idle = self._idle, []
        for box in boxes:
            box.kill()


# -- at commit time: secrets, and refusing unsafe files (MODELYARD_SCAN_REFUSE_UNSAFE) -------------

#: Text files larger than this are not searched for secrets.
SECRETS_FILE_LIMIT = 2 * 1024 * 1024


def check_commit(
    hub: Hub, repo_pk: Callable[[], int], inline: list[tuple[str, bytes]], large: list[tuple[str, str]]
) -> list[str]:
    """Judge what a commit adds before it lands: its regular files ``(path, bytes)`` are searched
    for secrets (warnings, or a refusal with ``MODELYARD_SECRETS_REFUSE``); with
    ``MODELYARD_SCAN_REFUSE_UNSAFE`` every file, its large files ``(path, sha256)`` too, is scanned
    now and the commit refused if one is unsafe. ``repo_pk`` finds the repo (large files are read
    only from the repo's own storage). The warnings, one line per secret."""
    findings = [f for path, data in inline if len(data) <= SECRETS_FILE_LIMIT for f in find_secrets(path, data)]
    if findings and hub.settings.secrets_refuse:
        raise RefusedContentError(
            "This hub refuses commits that hold secrets; remove them (and revoke them: they were sent): "
            + "; ".join(f.describe() for f in findings)
        )
    if hub.settings.scan_refuse_unsafe and hub.settings.scan_files:
        entries: list[tuple[FileEntry, bytes | None]] = [
            (FileEntry(path, False, Oid(make_blob(data).id.decode()), len(data)), data) for path, data in inline
        ]
        if large:
            from modelyard.catalog import repos as repos_q
            from modelyard.services.xet import files_for

            pk = repo_pk()
            with hub.db.read() as conn:
                sizes = {sha: repos_q.has_lfs_object(conn, pk, sha) for _path, sha in large}
                xet = files_for(hub, pk, [sha for sha, size in sizes.items() if size is not None], conn)
            for path, sha in large:
                size = sizes[sha]
                if size is not None:  # else the commit itself is refused: never uploaded here
                    xet_hash = xet[sha][0] if sha in xet else None
                    entries.append((FileEntry(path, False, Oid("0" * 40), size, sha, size, None, xet_hash), None))
        refuse_unsafe(hub, entries)
    return [f.describe() for f in findings]


def refuse_unsafe(hub: Hub, entries: list[tuple[FileEntry, bytes | None]]) -> None:
    """Scan files now (``data``: the bytes of one not stored yet), keep the results (the job after
    the commit finds them done), and refuse the commit if one is unsafe."""
    items = {content_key(e): (e, data) for e, data in entries}
    with hub.db.read() as conn:
        known = scans_q.get_many(conn, items)
    unsafe: list[str] = []
    for key, (entry, data) in sorted(items.items()):
        scan = known.get(key)
        if scan is None or scan.report is None or scan.rules != rules():
            row = scan_row(entry)
            status, report = scan_content(hub, Scan(status="queued", report=None, rules=None, scanned_at=None, **row),
                                          data)
            now = utcnow()
            with hub.db.write() as conn:
                scans_q.queue(conn, [row], now, timedelta(0))
                scans_q.finish(conn, key, status, report, rules(), now)
        else:
            status, report = scan.status, scan.report
        if status == "unsafe":
            dangerous = [f"{i['module']}.{i['name']}" for i in report.get("imports", []) if i["safety"] == "dangerous"]
            detail = ", ".join(dangerous) or "; ".join(report.get("messages", []))
            unsafe.append(f"{entry.path} ({detail})")
    if unsafe:
        raise RefusedContentError("This hub refuses files that run code when they are loaded: " + "; ".join(unsafe))
