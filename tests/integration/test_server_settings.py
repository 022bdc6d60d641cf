"""Settings that change the wire: multipart LFS uploads, proxy headers, a public base URL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
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
