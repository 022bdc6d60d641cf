"""Settings that change the wire: multipart LFS uploads, proxy headers, a public base URL."""

from __future__ import annotations

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
    api.upload_file(path_or_fileobj=payload, path_in_repo="big.safetensors", repo_id="acme/multi")
    local = hf_hub_download("acme/multi", "big.safetensors", endpoint=tuned.url, cache_dir=tmp_path)
    assert Path(local).read_bytes() == payload
    leftovers = list((tuned.data_dir / "blobs" / "uploads").rglob("*")) if (
        tuned.data_dir / "blobs" / "uploads").exists() else []
    assert [p for p in leftovers if p.is_file()] == []


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


def test_forwarded_headers_shape_absolute_urls(tuned: LiveServer) -> None:
    api = HfApi(endpoint=tuned.url, token=TOKENS["alice"])
    api.create_repo("acme/proxied")
    headers = {"Authorization": f"Bearer {TOKENS['alice']}", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "hub.example.org"}
    r = httpx.post(f"{tuned.url}/api/repos/create", headers=headers, json={"name": "proxied", "organization": "acme"})
    assert r.status_code == 409 and r.json()["url"] == "https://hub.example.org/acme/proxied"
    for i in range(3):
        api.create_repo(f"acme/proxied-{i}")
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
