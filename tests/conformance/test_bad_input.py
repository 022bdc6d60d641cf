"""Bad input: every malformed, unauthorised or conflicting request gets a clear 4xx and changes nothing.

Where ``HfApi`` maps a status to its own exception, the test goes through ``HfApi`` and asserts
that exception. Where the client validates an input itself (so the server never sees it), the
test sends the raw request with httpx to prove that the *server* rejects it too.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, RepoFile, hf_hub_url
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.server import TOKENS, LiveServer

NDJSON = "application/x-ndjson"
LFS_JSON = "application/vnd.git-lfs+json"
#: One connection pool for the module (a new httpx client per request costs more than the
#: request). Closed at exit, not by a module fixture: pytest may run this module's tests in two
#: groups, one per backend, with other modules in between.
HTTP = httpx.Client(timeout=60)
atexit.register(HTTP.close)


# -- helpers -----------------------------------------------------------------------------------


def auth(token: str | None = TOKENS["alice"]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


HEADER: dict[str, Any] = {"key": "header", "value": {"summary": "bad input", "description": ""}}
#: A valid addition sent before the bad line: it must not be committed either.
OK_FILE: dict[str, Any] = {
    "key": "file", "value": {"path": "ok.txt", "content": b64(b"fine"), "encoding": "base64"},
}


def post_commit(
    server: LiveServer, repo_id: str, body: bytes, token: str | None = TOKENS["alice"], rev: str = "main",
    query: str = "",
) -> httpx.Response:
    return HTTP.post(
        f"{server.url}/api/models/{repo_id}/commit/{quote(rev, safe='')}{query}", content=body,
        headers={**auth(token), "Content-Type": NDJSON},
    )


def lfs_batch(server: LiveServer, repo_id: str, oid: str, size: int, token: str = TOKENS["alice"]) -> httpx.Response:
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}],
            "hash_algo": "sha256", "ref": {"name": "main"}}
    return HTTP.post(
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch", json=body,
        headers={**auth(token), "Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )


def upload_href(server: LiveServer, repo_id: str, oid: str, size: int) -> str:
    """The basic-transfer upload URL the batch API hands out for an object it does not hold."""
    r = lfs_batch(server, repo_id, oid, size)
    r.raise_for_status()
    (obj,) = r.json()["objects"]
    assert "error" not in obj, obj
    return str(obj["actions"]["upload"]["href"])


def lfs_blob_names(server: LiveServer) -> frozenset[str]:
    root = server.data_dir / "blobs" / "lfs"
    return frozenset(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else frozenset()


def lfs_blob_path(server: LiveServer, oid: str) -> Path:
    return server.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def tmp_blobs(server: LiveServer) -> list[Path]:
    root = server.data_dir / "blobs" / "tmp"
    return [p for p in root.iterdir() if p.is_file()] if root.exists() else []


@dataclass(frozen=True)
class RepoState:
    """Everything a rejected request must leave as it was."""

    refs: dict[str, str]
    files: tuple[str, ...]
    private: bool
    gated: object
    lfs_blobs: frozenset[str]


def state(server: LiveServer, repo_id: str) -> RepoState:
    base = f"{server.url}/api/models/{repo_id}"
    info = HTTP.get(base, headers=auth())
    info.raise_for_status()
    refs = HTTP.get(f"{base}/refs", headers=auth())
    refs.raise_for_status()
    all_refs = {
        item["ref"]: item["targetCommit"]
        for group in refs.json().values() for item in group
    }
    data = info.json()
    return RepoState(
        all_refs, tuple(sorted(s["rfilename"] for s in data["siblings"])), data["private"], data["gated"],
        lfs_blob_names(server),
    )


def assert_error(
    r: httpx.Response, status: int, code: str | None = None, head: bool = False, label: object = None
) -> None:
    """A clear 4xx: the status, the headers the clients read, and the JSON envelope."""
    assert r.status_code == status, (label, r.status_code, r.headers.get("X-Error-Message"), r.text[:500])
    assert r.headers.get("X-Error-Message"), (label, "every error carries X-Error-Message")
    if code is not None:
        assert r.headers.get("X-Error-Code") == code, (label, r.headers.get("X-Error-Code"))
    if not head:
        assert r.headers["content-type"].startswith("application/json"), label
        body = r.json()
        assert isinstance(body.get("error"), str) and body["error"], label


def raises(exc: type[BaseException], label: object, call: Callable[..., object], **kwargs: Any) -> BaseException:
    """Like ``pytest.raises``, naming the input that did not raise."""
    try:
        call(**kwargs)
    except exc as caught:
        return caught
    pytest.fail(f"{label!r}: {exc.__name__} not raised")


@dataclass(frozen=True)
class Shared:
    """A repo with a regular file, a folder and an LFS file, never changed by this module."""

    repo_id: str
    lfs_oid: str
    lfs_size: int


LFS_CONTENT = b"\x00binary weights\x00" * 64


@pytest.fixture(scope="module")
def shared(server: LiveServer) -> Shared:
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    repo_id = f"acme/bad-input-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo_id)
    api.create_commit(repo_id, operations=[
        CommitOperationAdd("keep.txt", b"keep me"),
        CommitOperationAdd("dir/inner.txt", b"inner"),
        CommitOperationAdd("weights.bin", LFS_CONTENT),  # binary: preupload answers "lfs"
    ], commit_message="seed")
    (entry,) = api.get_paths_info(repo_id, ["weights.bin"])
    assert isinstance(entry, RepoFile) and entry.lfs is not None, "the fixture needs a real LFS file"
    return Shared(repo_id, entry.lfs.sha256, entry.lfs.size)


@pytest.fixture
def own_repo(api: HfApi, repo_name: str) -> str:
    """A fresh repo for tests that also make successful commits."""
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="file.txt", repo_id=repo_id)
    return repo_id


# -- paths in commit lines ---------------------------------------------------------------------

BAD_PATHS: dict[str, str] = {
    "dotdot": "../escape.txt",
    "dotdot-inside": "a/../../etc/passwd",
    "dotdot-last": "a/..",
    "dotdot-middle": "a/../b",
    "dot-segment": "a/./b.txt",
    "leading-slash": "/etc/passwd",
    "git-dir": ".git/config",
    "nested-git-dir": "sub/.git/hooks/pre-commit",
    "git-itself": ".git",
    "nul": "a\x00b.txt",
    "newline": "a\nb.txt",
    "tab": "a\tb.txt",
    "escape": "a\x1b[31m.txt",
    "del": "a\x7fb.txt",
    "empty-segment": "a//b.txt",
    "trailing-slash": "dir/",
    "only-slash": "/",
    "empty": "",
    "segment-over-255-bytes": "x" * 256,
    "segment-over-255-utf8-bytes": "\u00e9" * 128,  # 128 characters, 256 bytes
    "lone-surrogate": "a\ud800.txt",
}
#: Paths that are only too long or not UTF-8: 400. Every other bad path is unsafe: 422
#: (tests/conformance/test_parity_paths.py goes through each kind with the client too).
MERELY_INVALID = {"empty", "segment-over-255-bytes", "segment-over-255-utf8-bytes", "lone-surrogate"}


def expected_status(label: str) -> tuple[int, str]:
    return (400, "BadRequest") if label in MERELY_INVALID else (422, "UnprocessableEntity")


def bad_line(kind: str, path: str, shared: Shared) -> dict[str, Any]:
    value: dict[str, Any] = {"path": path}
    if kind == "file":
        value.update(content=b64(b"x"), encoding="base64")
    elif kind == "lfsFile":
        value.update(algo="sha256", oid=shared.lfs_oid, size=shared.lfs_size)
    return {"key": kind, "value": value}


@pytest.mark.parametrize("kind", ["file", "lfsFile", "deletedFile", "deletedFolder"])
def test_commit_rejects_unsafe_paths(server: LiveServer, shared: Shared, kind: str) -> None:
    before = state(server, shared.repo_id)
    for label, path in BAD_PATHS.items():
        if kind == "deletedFolder" and path == "dir/":
            path = "dir//"  # a single trailing '/' is how clients name a folder
        r = post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE, bad_line(kind, path, shared)))
        assert_error(r, *expected_status(label), label=label)
        assert "path" in r.headers["X-Error-Message"].lower(), label
    assert state(server, shared.repo_id) == before


def test_preupload_rejects_unsafe_paths(server: LiveServer, shared: Shared) -> None:
    for label, path in BAD_PATHS.items():
        r = HTTP.post(
            f"{server.url}/api/models/{shared.repo_id}/preupload/main",
            headers={**auth(), "Content-Type": "application/json"},
            content=json.dumps({"files": [{"path": path, "sample": "", "size": 1}]}).encode(),
        )
        assert_error(r, *expected_status(label), label=label)


def test_client_raises_for_paths_it_lets_through(api: HfApi, server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    with pytest.raises(BadRequestError) as bad:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x" * 256, repo_id=shared.repo_id)
    assert bad.value.response.status_code == 400
    for path in ["a//b.txt", "dir/", "a\x00b.txt", "a\nb.txt"]:
        with pytest.raises(HfHubHTTPError) as info:
            api.upload_file(path_or_fileobj=b"x", path_in_repo=path, repo_id=shared.repo_id)
        assert info.value.response.status_code == 422, path
        assert info.value.response.headers["X-Error-Code"] == "UnprocessableEntity", path
    # Paths with a '..' or '.git' segment never leave the client (it raises its own ValueError):
    # BAD_PATHS sends them raw ('a/../b', '.git/config', ...), so the server's refusal is tested there.
    assert state(server, shared.repo_id) == before


def test_adding_under_a_file_or_over_a_folder_is_rejected(server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    for path in ["keep.txt/inner.txt", "dir"]:
        line = {"key": "file", "value": {"path": path, "content": b64(b"x"), "encoding": "base64"}}
        assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE, line)), 400, "BadRequest")
    assert state(server, shared.repo_id) == before


# -- repo ids and ref names --------------------------------------------------------------------


def bad_repo_names(stem: str) -> dict[str, str]:
    return {
        "space": f"{stem} x",
        "slash-inside": f"{stem}/x",
        "bang": f"{stem}!",
        "percent": f"{stem}%2F",
        "double-dash": f"{stem}--x",
        "double-dot": f"{stem}..x",
        "too-long": stem + "x" * (97 - len(stem)),
        "dot-git": f"{stem}.git",
        "trailing-dot": f"{stem}.",
        "trailing-dash": f"{stem}-",
        "leading-dot": f".{stem}",
        "leading-dash": f"-{stem}",
        "leading-underscore": f"_{stem}",
        "non-ascii": f"{stem}-caf\u00e9",
        "trailing-newline": f"{stem}\n",
        "nul": f"{stem}\x00",
    }


def test_create_repo_rejects_invalid_names(server: LiveServer, repo_name: str) -> None:
    for label, name in bad_repo_names(repo_name).items():
        r = HTTP.post(f"{server.url}/api/repos/create", headers=auth(),
                      json={"name": name, "organization": "acme"})
        assert_error(r, 400, "BadRequest", label=label)
    for org in ["ac me", "acme\n", "../acme", "acme--x", "a" * 97]:
        r = HTTP.post(f"{server.url}/api/repos/create", headers=auth(),
                      json={"name": repo_name, "organization": org})
        assert_error(r, 400, "BadRequest", label=org)
    listed = HTTP.get(f"{server.url}/api/models", params={"search": repo_name}, headers=auth())
    assert listed.json() == []


def test_create_repo_invalid_names_through_the_client(api: HfApi, server: LiveServer, repo_name: str) -> None:
    # The client lets a leading '_' through (it matches \w): the server refuses it. Names the
    # client refuses itself ('--', '..', '.git') never reach the server: test_create_repo_rejects_invalid_names
    # sends exactly those raw.
    with pytest.raises(BadRequestError) as info:
        api.create_repo(f"acme/_{repo_name}")
    assert info.value.response.status_code == 400
    assert info.value.response.headers["X-Error-Code"] == "BadRequest"
    server.settle()  # a repo created by mistake would be in the catalog by now
    assert list(api.list_models(search=repo_name)) == []


BAD_REF_NAMES: dict[str, str] = {
    "double-dot": "a..b",
    "tilde": "a~1",
    "caret": "a^",
    "colon": "a:b",
    "question": "a?",
    "star": "a*",
    "bracket": "a[b",
    "backslash": "a\\b",
    "space": "a b",
    "leading-dash": "-x",
    "ends-lock": "x.lock",
    "component-ends-lock": "x.lock/y",
    "ends-slash": "x/",
    "ends-dot": "x.",
    "at-brace": "a@{1}",
    "at-alone": "@",
    "leading-slash": "/x",
    "double-slash": "a//b",
    "leading-dot": ".x",
    "component-leading-dot": "a/.x",
    "control": "a\x01b",
    "del": "a\x7fb",
    "full-ref": "refs/heads/x",
    "commit-id": "0" * 40,
    "too-long": "x" * 256,
}


def test_invalid_branch_and_tag_names(api: HfApi, server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    for label, name in BAD_REF_NAMES.items():
        for kind, call, arg in [("branch", api.create_branch, "branch"), ("tag", api.create_tag, "tag")]:
            exc = raises(BadRequestError, (kind, label), call, repo_id=shared.repo_id, **{arg: name})
            assert isinstance(exc, BadRequestError)
            assert exc.response.status_code == 400, (kind, label)
            assert exc.response.headers["X-Error-Code"] == "BadRequest", (kind, label)
    assert state(server, shared.repo_id) == before


def test_tag_name_that_is_not_valid_unicode(server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    r = HTTP.post(f"{server.url}/api/models/{shared.repo_id}/tag/main", headers=auth(),
                  content=b'{"tag": "v\\ud800"}')
    assert_error(r, 400, "BadRequest")
    assert state(server, shared.repo_id) == before


# -- LFS uploads -------------------------------------------------------------------------------


def test_lfs_bytes_not_matching_the_declared_oid_or_size(server: LiveServer, shared: Shared) -> None:
    content = os.urandom(4096)
    oid, size = hashlib.sha256(content).hexdigest(), len(content)
    before = state(server, shared.repo_id)
    wrong = [
        (content[:-1] + bytes([content[-1] ^ 1]), 400),  # same size, other sha256
        (content[:-10], 400),  # too short
        (content + b"extra", 413),  # longer than declared
        (b"", 400),
    ]
    for body, status in wrong:
        href = upload_href(server, shared.repo_id, oid, size)
        r = HTTP.put(href, content=body)
        assert_error(r, status)
        assert not lfs_blob_path(server, oid).exists()
        # the batch API still asks for the object: nothing was recorded under that oid
        (obj,) = lfs_batch(server, shared.repo_id, oid, size).json()["objects"]
        assert "upload" in obj["actions"]
    assert tmp_blobs(server) == []
    # a commit naming the oid is refused, and nothing changed
    line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": size}}
    assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, line)), 400, "BadRequest")
    assert state(server, shared.repo_id) == before


def test_lfs_verify_reports_missing_and_wrong_size(server: LiveServer, shared: Shared) -> None:
    url = f"{server.url}/{shared.repo_id}.git/info/lfs/objects/verify"
    r = HTTP.post(url, json={"oid": "0" * 64, "size": 1}, headers=auth())
    assert_error(r, 404)
    r = HTTP.post(url, json={"oid": shared.lfs_oid, "size": shared.lfs_size + 1}, headers=auth())
    assert_error(r, 400)


def test_lfs_upload_url_cannot_be_forged(server: LiveServer, shared: Shared) -> None:
    href = upload_href(server, shared.repo_id, "1" * 64, 3)
    forged = href[:-4] + ("AAAA" if not href.endswith("AAAA") else "BBBB")
    assert_error(HTTP.put(forged, content=b"abc"), 401)
    assert_error(HTTP.put(f"{server.url}/_lfs/upload/garbage", content=b"abc"), 401)


def test_commit_naming_an_lfs_oid_never_uploaded(api: HfApi, server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    missing = hashlib.sha256(b"never uploaded " + uuid.uuid4().bytes).hexdigest()
    line = {"key": "lfsFile", "value": {"path": "ghost.bin", "algo": "sha256", "oid": missing, "size": 10}}
    r = post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE, line))
    assert_error(r, 400, "BadRequest")
    assert missing in r.headers["X-Error-Message"]
    # an uploaded oid with a wrong size, a malformed oid, another algorithm
    for value in [
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid, "size": shared.lfs_size + 1},
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid.upper(), "size": shared.lfs_size},
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid + "\n", "size": shared.lfs_size},
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid[:-1], "size": shared.lfs_size},
        {"path": "w.bin", "algo": "md5", "oid": shared.lfs_oid, "size": shared.lfs_size},
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid, "size": -1},
        {"path": "w.bin", "algo": "sha256", "oid": shared.lfs_oid, "size": "12"},
    ]:
        r = post_commit(server, shared.repo_id, ndjson(HEADER, {"key": "lfsFile", "value": value}))
        assert_error(r, 400, "BadRequest")
    assert state(server, shared.repo_id) == before


def test_lfs_batch_rejects_malformed_oids_per_object(server: LiveServer, shared: Shared) -> None:
    for oid in ["0" * 64 + "\n", "xyz", "A" * 64]:
        (obj,) = lfs_batch(server, shared.repo_id, oid, 1).json()["objects"]
        assert "actions" not in obj and obj["error"]["code"] == 422


def test_client_disconnecting_mid_upload_leaves_no_blob(server: LiveServer, shared: Shared) -> None:
    content = os.urandom(3 * 1024 * 1024)
    oid, size = hashlib.sha256(content).hexdigest(), len(content)
    href = upload_href(server, shared.repo_id, oid, size)
    target = urlsplit(href)
    with socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=10) as sock:
        head = (
            f"PUT {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        read_before = server.bytes_read()
        sock.sendall(head.encode() + content[: size // 3])
        # The server has taken in the first third (its read counter grew by that much) when the
        # client goes away: a disconnect mid-body, not before the body started.
        deadline = time.monotonic() + 10
        while server.bytes_read() - read_before < size // 3:
            assert time.monotonic() < deadline, "the server never read the first third of the body"
            time.sleep(0.005)

    # an httpx stream that stops early: the body generator fails half-way
    def half() -> Any:
        yield content[: size // 2]
        raise OSError("client gave up")

    with pytest.raises(OSError, match="client gave up"):  # the client's own failure, not a refusal
        HTTP.put(href, content=half(), headers={"Content-Length": str(size)}, timeout=10)
    deadline = time.monotonic() + 5
    while tmp_blobs(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tmp_blobs(server) == [], "the partial upload was cleaned up"
    assert not lfs_blob_path(server, oid).exists()
    (obj,) = lfs_batch(server, shared.repo_id, oid, size).json()["objects"]
    assert "upload" in obj["actions"]
    line = {"key": "lfsFile", "value": {"path": "big.bin", "algo": "sha256", "oid": oid, "size": size}}
    assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, line)), 400, "BadRequest")
    # the same URL still takes the complete upload afterwards
    assert HTTP.put(href, content=content).status_code == 200
    assert lfs_blob_path(server, oid).stat().st_size == size


# -- the NDJSON body ---------------------------------------------------------------------------

def file_line(content: object, encoding: str = "base64") -> dict[str, Any]:
    return {"key": "file", "value": {"path": "a.txt", "content": content, "encoding": encoding}}


MALFORMED_BODIES: dict[str, bytes] = {
    "empty": b"",
    "blank-lines": b"\n\n  \n",
    "not-json": b"this is not json\n",
    "truncated-json": ndjson(HEADER)[:-5] + b"\n",
    "not-utf8": b'{"key": "header", "value": {"summary": "\xff\xfe"}}\n',
    "json-array": b"[1, 2, 3]\n",
    "no-header": ndjson(OK_FILE),
    "header-second": ndjson(OK_FILE, HEADER),
    "second-header-line": ndjson(HEADER, OK_FILE, HEADER),
    "header-without-summary": ndjson({"key": "header", "value": {"description": ""}}),
    "header-empty-summary": ndjson({"key": "header", "value": {"summary": "  "}}, OK_FILE),
    "header-summary-not-string": ndjson({"key": "header", "value": {"summary": 5}}, OK_FILE),
    "header-value-not-object": ndjson({"key": "header", "value": "summary"}, OK_FILE),
    "parent-not-hex": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": "main"}}, OK_FILE),
    "parent-too-short": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": "abcd"}}, OK_FILE),
    "parent-not-string": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": 12345}}, OK_FILE),
    "line-without-key": ndjson(HEADER, {"value": {"path": "a.txt"}}),
    "line-without-value": ndjson(HEADER, {"key": "file"}),
    "unknown-operation": ndjson(HEADER, OK_FILE, {"key": "copyFile", "value": {"path": "a", "src": "b"}}),
    "unknown-operation-case": ndjson(HEADER, OK_FILE, {"key": "File", "value": OK_FILE["value"]}),
    "bad-base64": ndjson(HEADER, file_line("!!!!")),
    "base64-bad-padding": ndjson(HEADER, file_line("abc")),
    "base64-with-newline": ndjson(HEADER, file_line("YW\nJj")),
    "content-not-string": ndjson(HEADER, file_line(5)),
    "other-encoding": ndjson(HEADER, file_line("abc", encoding="utf-8")),
    "path-not-string": ndjson(HEADER, {"key": "deletedFile", "value": {"path": ["keep.txt"]}}),
    "garbage-after-valid-lines": ndjson(HEADER, OK_FILE) + b"{oops\n",
}


def test_malformed_commit_bodies(server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    for label, body in MALFORMED_BODIES.items():
        assert_error(post_commit(server, shared.repo_id, body), 400, "BadRequest", label=label)
    assert state(server, shared.repo_id) == before


def test_commit_summary_with_nul_is_rejected(server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    for header in [{"summary": "a\x00b"}, {"summary": "ok", "description": "a\x00b"}]:
        for query in ["", "?create_pr=1"]:
            r = post_commit(server, shared.repo_id, ndjson({"key": "header", "value": header}, OK_FILE), query=query)
            assert_error(r, 400, "BadRequest")
    assert state(server, shared.repo_id) == before


def test_commit_to_a_tag_or_unknown_branch(api: HfApi, server: LiveServer, own_repo: str) -> None:
    api.create_tag(own_repo, tag="v1")
    before = state(server, own_repo)
    # a tag is not a branch: "v1" names no branch, "refs/tags/v1" is not writable
    assert_error(post_commit(server, own_repo, ndjson(HEADER, OK_FILE), rev="v1"), 404, "RevisionNotFound")
    assert_error(post_commit(server, own_repo, ndjson(HEADER, OK_FILE), rev="refs/tags/v1"), 400, "BadRequest")
    with pytest.raises(RevisionNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=own_repo, revision="no-such-branch")
    assert_error(post_commit(server, own_repo, ndjson(HEADER, OK_FILE), rev="a\x00b"), 404, "RevisionNotFound")
    assert state(server, own_repo) == before


def test_regular_file_over_the_limit_must_use_lfs(server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    big = b"a" * (10 * 1024 * 1024 + 1)
    line = {"key": "file", "value": {"path": "big.txt", "content": b64(big), "encoding": "base64"}}
    r = post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE, line))
    assert_error(r, 400, "BadRequest")
    assert "LFS" in r.headers["X-Error-Message"]
    assert state(server, shared.repo_id) == before


# -- parents, deletions ------------------------------------------------------------------------


def test_stale_parent_commit_is_a_conflict(api: HfApi, server: LiveServer, own_repo: str) -> None:
    old = api.model_info(own_repo).sha
    assert old is not None
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="file.txt", repo_id=own_repo)
    before = state(server, own_repo)
    for parent in [old, old[:7]]:
        with pytest.raises(HfHubHTTPError) as info:
            api.create_commit(own_repo, operations=[CommitOperationAdd("file.txt", b"v3")],
                              commit_message="stale", parent_commit=parent)
        assert not isinstance(info.value, BadRequestError)
        assert info.value.response.status_code == 412
        assert info.value.response.headers["X-Error-Message"]
    assert state(server, own_repo) == before
    # the current head as parent still works
    head = before.refs["refs/heads/main"]
    api.create_commit(own_repo, operations=[CommitOperationAdd("file.txt", b"v3")],
                      commit_message="fresh", parent_commit=head)


def test_deleting_a_missing_file_or_folder(api: HfApi, server: LiveServer, shared: Shared) -> None:
    before = state(server, shared.repo_id)
    with pytest.raises(EntryNotFoundError) as info:
        api.delete_file("no-such-file.txt", repo_id=shared.repo_id)
    assert isinstance(info.value, RemoteEntryNotFoundError)
    assert "A file with this name doesn't exist" in str(info.value)
    assert info.value.response.status_code == 404
    with pytest.raises(EntryNotFoundError):
        api.delete_file("dir/no-such-file.txt", repo_id=shared.repo_id)
    with pytest.raises(EntryNotFoundError):
        api.delete_folder("no-such-folder", repo_id=shared.repo_id)
    with pytest.raises(EntryNotFoundError):
        api.delete_folder("keep.txt", repo_id=shared.repo_id)  # a file is not a folder
    # raw: the valid addition before the failing deletion is not committed either
    for line in [{"key": "deletedFile", "value": {"path": "nope.txt"}},
                 {"key": "deletedFolder", "value": {"path": "nope/"}}]:
        r = post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE, line))
        assert_error(r, 404, "EntryNotFound")
        assert "with this name doesn't exist" in r.headers["X-Error-Message"]
    assert state(server, shared.repo_id) == before


# -- tokens ------------------------------------------------------------------------------------


def test_write_with_read_token_is_forbidden(
    api_as: Callable[[str | None], HfApi], server: LiveServer, shared: Shared
) -> None:
    reader = api_as("alice_read")
    before = state(server, shared.repo_id)
    with pytest.raises(HfHubHTTPError) as info:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=shared.repo_id)
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as info:
        reader.create_branch(shared.repo_id, branch="by-reader")
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as info:
        reader.create_repo(f"acme/{uuid.uuid4().hex[:10]}")
    assert info.value.response.status_code == 403
    assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE), token=TOKENS["alice_read"]),
                 403, "Forbidden")
    assert_error(lfs_batch(server, shared.repo_id, "2" * 64, 1, token=TOKENS["alice_read"]), 403)
    # carol only reads in acme: a write token does not give her more than her role
    assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE), token=TOKENS["carol"]), 403)
    assert state(server, shared.repo_id) == before


def test_unknown_revoked_and_missing_tokens(
    api_as: Callable[[str | None], HfApi], server: LiveServer, shared: Shared
) -> None:
    name = f"revoked-{uuid.uuid4().hex[:8]}"
    value = f"hf_{uuid.uuid4().hex}"
    server.cli("tokens", "create", "alice", "--name", name, "--role", "write", "--value", value)
    assert HTTP.get(f"{server.url}/api/whoami-v2", headers=auth(value)).status_code == 200
    server.cli("tokens", "revoke", "alice", "--name", name)
    before = state(server, shared.repo_id)
    for token in ["hf_this_token_does_not_exist_0000000000", value]:
        client = HfApi(endpoint=server.url, token=token)
        with pytest.raises(HfHubHTTPError) as info:
            client.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=shared.repo_id)
        assert info.value.response.status_code == 401
        assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE), token=token), 401, "Unauthorized")
        assert_error(lfs_batch(server, shared.repo_id, "3" * 64, 1, token=token), 401)
    with pytest.raises(HfHubHTTPError) as info:
        api_as(None).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=shared.repo_id)
    assert info.value.response.status_code == 401
    assert_error(post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE), token=None), 401, "Unauthorized")
    r = HTTP.post(f"{server.url}/api/repos/create", json={"name": "anon", "organization": "acme"})
    assert_error(r, 401)
    assert state(server, shared.repo_id) == before


# -- bad JSON bodies ---------------------------------------------------------------------------

BAD_JSON = [b"{not json", b"[1, 2]", b'"a string"', b"\xff\xfe", b"null"]


def test_bad_json_bodies(server: LiveServer, shared: Shared, repo_name: str) -> None:
    base = f"{server.url}/api/models/{shared.repo_id}"
    before = state(server, shared.repo_id)
    requests: list[tuple[str, str, list[bytes]]] = [
        ("POST", f"{server.url}/api/repos/create", [
            b"", *BAD_JSON, b"{}", b'{"name": 5}', b'{"name": "x", "organization": 5}',
            json.dumps({"name": repo_name, "organization": "acme", "type": "space"}).encode(),
            json.dumps({"name": repo_name, "organization": "acme", "type": ["model"]}).encode(),
            json.dumps({"name": repo_name, "organization": "acme", "visibility": "secret"}).encode(),
            json.dumps({"name": repo_name, "organization": "acme", "private": "yes"}).encode(),
        ]),
        ("POST", f"{base}/branch/new-branch", [
            *BAD_JSON, b'{"startingPoint": 5}', b'{"startingPoint": ["main"]}',
        ]),
        ("POST", f"{base}/tag/main", [
            b"", *BAD_JSON, b"{}", b'{"tag": 5}', b'{"tag": null}',
        ]),
        ("PUT", f"{base}/settings", [
            b"", *BAD_JSON, b"{}", b'{"visibility": "secret"}', b'{"visibility": ["private"]}',
            b'{"private": "yes"}', b'{"gated": "sometimes"}', b'{"gated": true}',
            b'{"visibility": "private", "gated": "bogus"}',
        ]),
        ("POST", f"{base}/preupload/main", [
            b"", *BAD_JSON, b'{"files": 5}', b'{"files": [5]}', b'{"files": [{"path": "a", "size": -1}]}',
            b'{"files": [{"path": "a", "size": 1, "sample": "!!"}]}',
        ]),
        ("POST", f"{server.url}/{shared.repo_id}.git/info/lfs/objects/batch", [
            b"", *BAD_JSON, b"{}", b'{"operation": "delete", "objects": []}', b'{"operation": "upload"}',
        ]),
    ]
    for method, url, bodies in requests:
        for body in bodies:
            r = HTTP.request(method, url, content=body,
                             headers={**auth(), "Content-Type": "application/json"})
            assert_error(r, 400, "BadRequest", label=(method, url, body))
    assert state(server, shared.repo_id) == before
    server.settle()  # a repo created by mistake would be in the catalog by now
    assert HTTP.get(f"{server.url}/api/models", params={"search": repo_name}).json() == []


def test_settings_need_the_admin_role(
    api_as: Callable[[str | None], HfApi], server: LiveServer, shared: Shared
) -> None:
    # The client validates the values of update_repo_settings itself (the raw test above covers
    # the server); what it cannot know is who may change them.
    before = state(server, shared.repo_id)
    for user in ["bob", "carol"]:
        with pytest.raises(HfHubHTTPError) as info:
            api_as(user).update_repo_settings(shared.repo_id, private=True)
        assert info.value.response.status_code == 403
    assert state(server, shared.repo_id) == before


# -- downloads: ranges, revisions, entries -----------------------------------------------------


def resolve_url(server: LiveServer, repo_id: str, path: str, rev: str = "main", safe: str = "/") -> str:
    """``safe=""`` keeps '..' segments away from httpx, which would normalise them."""
    return f"{server.url}/{repo_id}/resolve/{quote(rev, safe='')}/{quote(path, safe=safe)}"


@pytest.mark.parametrize("path", ["keep.txt", "weights.bin"])
def test_unsatisfiable_ranges(server: LiveServer, shared: Shared, path: str) -> None:
    size = len(b"keep me") if path == "keep.txt" else shared.lfs_size
    url = resolve_url(server, shared.repo_id, path)
    for header in [f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0", "bytes=5-2",
                   "bytes=99999999999999999999-", "bytes=abc", "bytes=1-x", "bytes=--1", "bytes=-", "bytes="]:
        for method in ["GET", "HEAD"]:
            r = HTTP.request(method, url, headers={"Range": header})
            assert_error(r, 416, "RangeNotSatisfiable", head=method == "HEAD")
            assert r.headers["Content-Range"] == f"bytes */{size}", header
    # other units are ignored (RFC 9110 §14.2), valid ranges still work
    r = HTTP.get(url, headers={"Range": "items=0-1"})
    assert r.status_code == 200 and len(r.content) == size
    r = HTTP.get(url, headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.headers["Content-Range"] == f"bytes 1-3/{size}" and len(r.content) == 3


def test_range_on_an_empty_file(api: HfApi, server: LiveServer, own_repo: str) -> None:
    api.upload_file(path_or_fileobj=b"", path_in_repo="empty.txt", repo_id=own_repo)
    url = resolve_url(server, own_repo, "empty.txt")
    for header in ["bytes=0-", "bytes=-5", "bytes=0-0"]:
        r = HTTP.get(url, headers={"Range": header})
        assert_error(r, 416, "RangeNotSatisfiable")
        assert r.headers["Content-Range"] == "bytes */0"
    r = HTTP.get(url)
    assert r.status_code == 200 and r.content == b""


def test_unknown_revision(api: HfApi, server: LiveServer, shared: Shared) -> None:
    for rev in ["no-such-branch", "f" * 40, "refs/pr/999", "a..b"]:
        with pytest.raises(RevisionNotFoundError):
            api.hf_hub_download(shared.repo_id, "keep.txt", revision=rev)
        with pytest.raises(RevisionNotFoundError):
            api.model_info(shared.repo_id, revision=rev)
        with pytest.raises(RevisionNotFoundError):
            api.list_repo_files(shared.repo_id, revision=rev)
    for rev in ["a\x00b", "main\n"]:
        r = HTTP.head(resolve_url(server, shared.repo_id, "keep.txt", rev))
        assert_error(r, 404, "RevisionNotFound", head=True)
        r = HTTP.get(f"{server.url}/api/models/{shared.repo_id}/revision/{quote(rev, safe='')}")
        assert_error(r, 404, "RevisionNotFound")


def test_unknown_repo(api: HfApi, server: LiveServer) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/no-such-repo-at-all")
    for rid in ["acme/a%00b", "acme/a%0Ab", "ac%00me/x"]:
        r = HTTP.get(f"{server.url}/api/models/{rid}")
        assert_error(r, 404, "RepoNotFound", label=rid)
        r = HTTP.head(f"{server.url}/{rid}/resolve/main/x.txt")
        assert_error(r, 404, "RepoNotFound", head=True, label=rid)


def test_listing_with_control_characters(server: LiveServer) -> None:
    for params in [{"search": "a\x00b"}, {"author": "ac\x00me"}, {"filter": "t\x00"}]:
        r = HTTP.get(f"{server.url}/api/models", params=params)
        assert_error(r, 400, "BadRequest", label=params)


def test_unknown_file(api: HfApi, server: LiveServer, shared: Shared) -> None:
    head = state(server, shared.repo_id).refs["refs/heads/main"]
    with pytest.raises(EntryNotFoundError) as info:
        api.hf_hub_download(shared.repo_id, "no-such-file.txt")
    assert isinstance(info.value, RemoteEntryNotFoundError)
    with pytest.raises(EntryNotFoundError):
        api.get_hf_file_metadata(url=hf_hub_url(shared.repo_id, "no-such-file.txt", endpoint=server.url))
    assert not api.file_exists(shared.repo_id, "no-such-file.txt")
    for path in ["no-such-file.txt", "dir", "dir/", "a/../keep.txt", "a//keep.txt", ".git/config"]:
        r = HTTP.head(resolve_url(server, shared.repo_id, path, safe=""))
        assert_error(r, 404, "EntryNotFound", head=True)
        assert r.headers["X-Repo-Commit"] == head, path
        r = HTTP.get(resolve_url(server, shared.repo_id, path, safe=""))
        assert_error(r, 404, "EntryNotFound")
    with pytest.raises(EntryNotFoundError):
        next(iter(api.list_repo_tree(shared.repo_id, path_in_repo="no-such-folder")))


# -- the error envelope ------------------------------------------------------------------------


def test_every_error_status_has_the_same_envelope(server: LiveServer, shared: Shared, own_repo: str) -> None:
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    old = api.model_info(own_repo).sha
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="file.txt", repo_id=own_repo)
    samples: dict[int, httpx.Response] = {
        400: HTTP.post(f"{server.url}/api/repos/create", content=b"{", headers=auth()),
        401: HTTP.get(f"{server.url}/api/whoami-v2", headers=auth("hf_unknown")),
        403: post_commit(server, shared.repo_id, ndjson(HEADER, OK_FILE), token=TOKENS["alice_read"]),
        404: HTTP.get(f"{server.url}/api/models/acme/no-such-repo-at-all"),
        409: HTTP.post(f"{server.url}/api/repos/create", headers=auth(),
                       json={"name": shared.repo_id.split("/")[1], "organization": "acme"}),
        412: post_commit(server, own_repo, ndjson(
            {"key": "header", "value": {"summary": "s", "parentCommit": old}}, OK_FILE)),
        416: HTTP.get(resolve_url(server, shared.repo_id, "keep.txt"), headers={"Range": "bytes=100-"}),
    }
    for status, r in samples.items():
        assert_error(r, status)
        body = r.json()
        assert body["error"] == r.headers["X-Error-Message"]
        assert r.headers.get("X-Error-Code")
    # HEAD errors carry the same headers and no body
    r = HTTP.head(resolve_url(server, "acme/no-such-repo-at-all", "x"))
    assert_error(r, 404, "RepoNotFound", head=True)
    assert r.content == b""


def test_nul_in_an_account_name_is_not_found(server: LiveServer) -> None:
    """NUL is never in a name (PostgreSQL refuses it in a query: these were 500s there)."""
    import httpx

    headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
    for path in ("/api/organizations/ac%00me/resource-groups", "/api/organizations/ac%00me/overview",
                 "/api/organizations/ac%00me/audit-log", "/api/users/a%00/overview", "/api/buckets/al%00ice/x",
                 "/api/organizations/ac%00me/members"):
        r = httpx.get(server.url + path, headers=headers, timeout=30)
        assert r.status_code == 404 and r.headers["X-Error-Message"], (path, r.status_code)
