"""Settings that change the wire: multipart LFS uploads, proxy headers, a public base URL."""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.support.server import SEED, TOKENS, LiveServer


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("tuned"), None, "sqlite", extra_env={
        "MODELYARD_MULTIPART_THRESHOLD": str(1024 * 1024),
        "MODELYARD_MULTIPART_CHUNK_SIZE": str(300 * 1024),
        "MODELYARD_TRUST_PROXY_HEADERS": "true",
        "MODELYARD_ALLOWED_HOSTS": '["127.0.0.1", "hub.example.org"]',
    })
    live.cli("db", "upgrade")
    live.seed(SEED)
    live.start()
    yield live
    live.stop()


def test_multipart_lfs_upload(tuned: LiveServer, tmp_path: Path) -> None:
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    api.create_repo("acme/multi")
    payload = os.urandom(1024 * 1024 + 12345)  # 4 parts of 300 KiB, the last one short
    before = upload_files(tuned)  # other tests' refused completions keep their parts for a retry
    api.upload_file(path_or_fileobj=payload, path_in_repo="big.safetensors", repo_id="acme/multi")
    local = hf_hub_download("acme/multi", "big.safetensors", endpoint=tuned.url, cache_dir=tmp_path)
    assert Path(local).read_bytes() == payload
    assert upload_files(tuned) == before  # this upload's parts are gone


def upload_files(server: LiveServer) -> set[Path]:
    root = server.data_dir / "blobs" / "uploads"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_multipart_batch_offers_ordered_part_urls(tuned: LiveServer) -> None:
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    api.create_repo("acme/multi2")
    r = httpx.post(
        f"{tuned.url}/acme/multi2.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {TOKENS['alice']}", "Accept": "application/vnd.git-lfs+json"},
        json={"operation": "upload", "transfers": ["basic", "multipart"], "hash_algo": "sha256",
              "objects": [{"oid": "a" * 64, "size": 1024 * 1024 * 2}]},
    )
    assert r.status_code == 200
    header = r.json()["objects"][0]["actions"]["upload"]["header"]
    parts = [k for k in header if k.isdigit()]
    assert parts == sorted(parts) and len(parts) == 7  # ceil(2 MiB / 300 KiB)
    assert header["chunk_size"] == str(300 * 1024)


def test_multipart_completion_checks_every_part_etag(tuned: LiveServer) -> None:
    """A completion naming a part by an ETag it was not uploaded with, or missing a part, is
    refused and stores nothing; the right ETags complete the object."""
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    repo_id = api.create_repo("acme/multi-etags").repo_id
    data = os.urandom(1024 * 1024 + 5)
    oid = hashlib.sha256(data).hexdigest()
    r = httpx.post(f"{tuned.url}/{repo_id}.git/info/lfs/objects/batch",
                   headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                   json={"operation": "upload", "transfers": ["multipart"],
                         "objects": [{"oid": oid, "size": len(data)}]})
    upload = r.json()["objects"][0]["actions"]["upload"]
    chunk = int(upload["header"]["chunk_size"])
    urls = [upload["header"][k] for k in sorted(k for k in upload["header"] if k.isdigit())]
    etags = []
    for i, url in enumerate(urls):
        put = httpx.put(url, content=data[i * chunk : (i + 1) * chunk])
        assert put.status_code == 200
        etags.append(put.headers["ETag"])
    parts = [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]
    blob = tuned.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid
    wrong = [*parts[:-1], {"partNumber": len(parts), "etag": f'"{"0" * 64}"'}]
    for bad in (wrong, parts[:-1], [*parts[:1], *parts]):
        done = httpx.post(upload["href"], json={"oid": oid, "parts": bad})
        assert done.status_code == 400 and done.headers["X-Error-Message"], bad
        assert not blob.exists()
    done = httpx.post(upload["href"], json={"oid": oid, "parts": parts})
    assert done.status_code == 200 and blob.read_bytes() == data


def _multipart(tuned: LiveServer, repo_id: str, oid: str, size: int) -> tuple[str, list[str], int]:
    r = httpx.post(f"{tuned.url}/{repo_id}.git/info/lfs/objects/batch",
                   headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                   json={"operation": "upload", "transfers": ["multipart"], "objects": [{"oid": oid, "size": size}]})
    upload = r.json()["objects"][0]["actions"]["upload"]
    urls = [upload["header"][k] for k in sorted(k for k in upload["header"] if k.isdigit())]
    return upload["href"], urls, int(upload["header"]["chunk_size"])


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_multipart_object_sha256_is_checked_whatever_the_part_order(tuned: LiveServer, order: str) -> None:
    """Parts sent in order are hashed as they arrive (the completion does not hash them again),
    parts sent out of order are hashed at the completion: either way a completion whose parts do
    not make the declared oid is refused, and the right one succeeds."""
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    repo_id = api.create_repo(f"acme/multi-order-{order.replace(' ', '-')}").repo_id
    data = os.urandom(1024 * 1024 + 77)
    liar = hashlib.sha256(data + b"!").hexdigest()  # an oid these bytes do not hash to
    for oid, ok in ((liar, False), (hashlib.sha256(data).hexdigest(), True)):
        href, urls, chunk = _multipart(tuned, repo_id, oid, len(data))
        numbered = list(enumerate(urls))
        etags: dict[int, str] = {}
        for i, url in (numbered if order == "in order" else numbered[::-1]):
            put = httpx.put(url, content=data[i * chunk : (i + 1) * chunk])
            assert put.status_code == 200
            etags[i] = put.headers["ETag"]
        done = httpx.post(href, json={"oid": oid, "parts": [{"partNumber": i + 1, "etag": etags[i]}
                                                            for i in range(len(urls))]})
        blob = tuned.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid
        if ok:
            assert done.status_code == 200 and blob.read_bytes() == data
        else:
            assert done.status_code == 400 and "Checksum mismatch" in done.headers["X-Error-Message"]
            assert not blob.exists()


def _numbered(etags: list[str]) -> list[dict[str, object]]:
    return [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]


def _held_put(
    url: str, first: bytes, rest: bytes, release: threading.Event, box: list[httpx.Response]
) -> threading.Thread:
    """A PUT that sends ``first``, then waits for ``release`` before sending ``rest``."""

    def body() -> Iterator[bytes]:
        yield first
        release.wait(30)
        yield rest

    def run() -> None:
        box.append(httpx.put(url, content=body(), headers={"Content-Length": str(len(first) + len(rest))}, timeout=60))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _locked(path: Path, start: int, length: int) -> bool:
    """Whether some open file holds a write lock on any of bytes ``[start, start + length)``."""
    query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    fd = os.open(path, os.O_RDWR)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query)
    finally:
        os.close(fd)
    return struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK


def _new_assembly(server: LiveServer, before: set[Path]) -> Path:
    """The assembly file of the upload started since ``before``, once a part writer holds it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fresh = [p for p in upload_files(server) - before if p.name == "object"]
        if fresh and _locked(fresh[0], 0, 0):
            return fresh[0]
        time.sleep(0.02)
    raise AssertionError("no part writer started")


@dataclass(frozen=True)
class _Upload:
    """A multipart upload started in a new repo: its bytes, oid, completion URL and part URLs."""

    data: bytes
    oid: str
    href: str
    urls: list[str]
    chunk: int

    @property
    def pieces(self) -> list[bytes]:
        return [self.data[i : i + self.chunk] for i in range(0, len(self.data), self.chunk)]

    def blob(self, server: LiveServer) -> Path:
        return server.data_dir / "blobs" / "lfs" / self.oid[:2] / self.oid[2:4] / self.oid


def _start(server: LiveServer, name: str, size: int) -> _Upload:
    repo_id = HfApi(endpoint=server.url, token=TOKENS["alice"]).create_repo(f"acme/{name}").repo_id
    data = os.urandom(size)
    oid = hashlib.sha256(data).hexdigest()
    href, urls, chunk = _multipart(server, repo_id, oid, size)
    return _Upload(data, oid, href, urls, chunk)


def test_a_part_in_flight_excludes_the_same_part_and_the_completion(tuned: LiveServer) -> None:
    """While a part's body is arriving, a second upload of the same part is refused with 409, other
    parts go on, a completion is refused (the part is not in yet); once it is in, it completes."""
    up = _start(tuned, "multi-held", 1024 * 1024 + 3)
    href, urls, chunk, pieces = up.href, up.urls, up.chunk, up.pieces
    release, box = threading.Event(), []
    before = upload_files(tuned)
    held = _held_put(urls[0], pieces[0][:8192], pieces[0][8192:], release, box)
    try:
        assembly = _new_assembly(tuned, before)
        assert _locked(assembly, 0, chunk) and not _locked(assembly, chunk, chunk)
        again = httpx.put(urls[0], content=pieces[0])
        assert again.status_code == 409 and again.headers["X-Error-Code"] == "Conflict", again.headers
        etags = {0: ""}
        for i in range(1, len(urls)):
            put = httpx.put(urls[i], content=pieces[i])
            assert put.status_code == 200
            etags[i] = put.headers["ETag"]
        etags[0] = '"' + "0" * 64 + '"'  # part 1 is not in yet
        early = httpx.post(href, json={"oid": up.oid, "parts": _numbered([etags[i] for i in range(len(urls))])})
        assert early.status_code == 400 and "Part 1 was never uploaded" in early.headers["X-Error-Message"]
    finally:
        release.set()
        held.join(60)
    assert box and box[0].status_code == 200, box
    etags[0] = box[0].headers["ETag"]
    done = httpx.post(href, json={"oid": up.oid, "parts": _numbered([etags[i] for i in range(len(urls))])})
    assert done.status_code == 200 and up.blob(tuned).read_bytes() == up.data


def test_a_completion_while_a_part_is_uploaded_again_is_refused(tuned: LiveServer) -> None:
    before = upload_files(tuned)
    up = _start(tuned, "multi-early", 1024 * 1024 + 9)
    href, urls, chunk, pieces = up.href, up.urls, up.chunk, up.pieces
    etags = {i: httpx.put(url, content=pieces[i]).headers["ETag"] for i, url in enumerate(urls)}
    parts = _numbered([etags[i] for i in range(len(urls))])
    folder = next(p for p in upload_files(tuned) - before if p.name == "object").parent
    release, box = threading.Event(), []
    held = _held_put(urls[1], pieces[1][:4096], pieces[1][4096:], release, box)  # the same bytes again
    try:
        # the re-upload drops part 2's marker, under its lock, before it writes a byte
        deadline = time.monotonic() + 30
        while list(folder.glob("00002-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not list(folder.glob("00002-*")) and _locked(folder / "object", chunk, chunk)
        early = httpx.post(href, json={"oid": up.oid, "parts": parts})
        assert early.status_code == 400 and "Part 2 was never uploaded" in early.headers["X-Error-Message"]
    finally:
        release.set()
        held.join(60)
    assert box[0].status_code == 200 and box[0].headers["ETag"] == etags[1]
    done = httpx.post(href, json={"oid": up.oid, "parts": parts})
    assert done.status_code == 200 and up.blob(tuned).read_bytes() == up.data


def test_a_part_uploaded_again_with_other_bytes_replaces_the_first(tuned: LiveServer) -> None:
    """The completion must name the ETag of the bytes that are there: the first upload's ETag is
    refused; with the second one the object is hashed whole and must match the oid."""
    up = _start(tuned, "multi-again", 1024 * 1024 + 21)
    href, urls, pieces, oid, blob = up.href, up.urls, up.pieces, up.oid, up.blob(tuned)
    etags = [httpx.put(url, content=piece).headers["ETag"] for url, piece in zip(urls, pieces, strict=True)]
    wrong = os.urandom(len(pieces[1]))
    replaced = httpx.put(urls[1], content=wrong)
    assert replaced.status_code == 200 and replaced.headers["ETag"] != etags[1]
    named_first = httpx.post(href, json={"oid": oid, "parts": _numbered(etags)})
    assert named_first.status_code == 400 and "Part 2 was never uploaded" in named_first.headers["X-Error-Message"]
    now = [etags[0], replaced.headers["ETag"], *etags[2:]]
    named_now = httpx.post(href, json={"oid": oid, "parts": _numbered(now)})
    assert named_now.status_code == 400 and "Checksum mismatch" in named_now.headers["X-Error-Message"]
    assert not blob.exists()
    fixed = httpx.put(urls[1], content=pieces[1])  # the right bytes again: the upload completes
    assert fixed.headers["ETag"] == etags[1]
    done = httpx.post(href, json={"oid": oid, "parts": _numbered(etags)})
    assert done.status_code == 200 and blob.read_bytes() == up.data


def test_forwarded_headers_shape_absolute_urls(tuned: LiveServer) -> None:
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    api.create_repo("acme/proxied")
    headers = {"Authorization": f"Bearer {TOKENS['alice']}", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "hub.example.org"}
    r = httpx.post(f"{tuned.url}/api/repos/create", headers=headers, json={"name": "proxied", "organization": "acme"})
    assert r.status_code == 409 and r.json()["url"] == "https://hub.example.org/acme/proxied"
    for i in range(3):
        api.create_repo(f"acme/proxied-{i}")
    tuned.settle()
    r = httpx.get(f"{tuned.url}/api/models?search=proxied&limit=1", headers=headers)
    assert r.links["next"]["url"].startswith("https://hub.example.org/api/models?")


def test_untrusted_proxy_headers_are_ignored_and_public_url_wins(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "plain", None, "sqlite")
    live.cli("db", "upgrade")
    live.seed(SEED)
    live.start()
    try:
        headers = {"Authorization": f"Bearer {TOKENS['alice']}", "X-Forwarded-Host": "evil.example"}
        r = httpx.post(f"{live.url}/api/repos/create", headers=headers, json={"name": "p", "organization": "acme"})
        assert r.json()["url"] == f"{live.url}/acme/p"
    finally:
        live.stop()
    public = LiveServer(tmp_path / "public", None, "sqlite",
                        extra_env={"MODELYARD_PUBLIC_URL": "https://models.internal/hub"})
    public.cli("db", "upgrade")
    public.seed(SEED)
    public.start()
    try:
        headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
        r = httpx.post(f"{public.url}/api/repos/create", headers=headers, json={"name": "p", "organization": "acme"})
        assert r.json()["url"] == "https://models.internal/hub/acme/p"
    finally:
        public.stop()
