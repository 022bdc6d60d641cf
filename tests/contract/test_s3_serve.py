"""End to end on S3: a real ``modelyard serve`` whose blob store is a bucket on moto's server,
driven by the real ``huggingface_hub`` client."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from modelyard.storage.base import lfs_key
from tests.support.s3 import AWS_ENV, MotoServer
from tests.support.server import TOKENS, LiveServer

PREFIX = "hub/blobs"


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return moto.new_bucket()


@pytest.fixture
def s3_server(moto: MotoServer, bucket: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "hub", None, "sqlite", extra_env={
        "MODELYARD_STORAGE_URL": f"s3://{bucket}/{PREFIX}",
        "MODELYARD_S3_ENDPOINT_URL": moto.url,
        # the hub sends the bytes itself here (direct downloads: test_s3_direct.py)
        "MODELYARD_DIRECT_DOWNLOADS": "false",
        **AWS_ENV,
    })
    with live.prepare().running():
        yield live


def test_upload_download_and_range_through_s3(
    s3_server: LiveServer, moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    buckets_before = moto.bucket_names()
    assert moto.all_keys(bucket) == [], "serve, db upgrade and seed put nothing in the bucket"
    assert not (s3_server.data_dir / "blobs").exists(), "no local blob folder beside an S3 store"

    api = HfApi(endpoint=s3_server.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/on-s3").repo_id
    readme = b"# On S3\n\nA small regular file.\n"
    weights = os.urandom(3 * 1024 * 1024 + 17)
    api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo_id)

    # The LFS object, and nothing else, is in the bucket, under the configured prefix.
    sha = hashlib.sha256(weights).hexdigest()
    assert moto.all_keys(bucket) == [f"{PREFIX}/{lfs_key(sha)}"]
    assert moto.bucket_names() == buckets_before
    info = {f.path: f for f in api.list_repo_tree(repo_id)}
    lfs = info["model.safetensors"].lfs  # type: ignore[union-attr]
    assert lfs is not None and lfs.sha256 == sha and lfs.size == len(weights)

    cache = tmp_path / "cache"
    for name, data in [("README.md", readme), ("model.safetensors", weights)]:
        path = hf_hub_download(repo_id, name, endpoint=s3_server.url, token=TOKENS["alice"], cache_dir=cache)
        assert Path(path).read_bytes() == data, name

    url = f"{s3_server.url}/{repo_id}/resolve/main/model.safetensors"
    n = len(weights)
    mib = 1024 * 1024
    with httpx.Client(headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as client:
        for header, start, end in [
            ("bytes=1000-1999", 1000, 2000),
            (f"bytes={mib - 5}-{mib + 5}", mib - 5, mib + 6),  # across two store read chunks
            (f"bytes={n - 100}-", n - 100, n),
            ("bytes=-64", n - 64, n),
        ]:
            r = client.get(url, headers={"Range": header})
            assert r.status_code == 206, (header, r.status_code, r.text[:200])
            assert r.content == weights[start:end], header
            assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{n}"
            assert r.headers["content-length"] == str(end - start)
        r = client.get(url, headers={"Range": f"bytes={n}-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{n}"
