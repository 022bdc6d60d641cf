"""Direct transfers with S3 storage: downloads answered with a redirect to a presigned URL of the
store, as the Hub redirects to its CDN, so the bytes never pass through the hub.

The store is moto's S3 server behind ``tests/support/s3_gateway.py``, which checks presigned URLs
as S3 does (moto does not check them at all); the hub talks to moto directly and signs URLs for
the gateway (``MODELYARD_S3_PUBLIC_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from modelyard.storage.base import lfs_key
from tests.support.clients.run import run_client
from tests.support.s3 import AWS_ENV, MotoServer
from tests.support.s3_gateway import Gateway, s3_gateway
from tests.support.server import TOKENS, LiveServer, metric
from tests.support.xet import cas_token

#: Presigned URLs live this long here, so that a test can wait one out.
TTL = 10
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(moto: MotoServer) -> Iterator[Gateway]:
    with s3_gateway(moto.url) as g:
        yield g


@pytest.fixture(scope="module")
def direct(moto: MotoServer, gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    bucket = moto.new_bucket()
    live = LiveServer(tmp_path_factory.mktemp("direct") / "hub", None, "sqlite", extra_env={
        "MODELYARD_STORAGE_URL": f"s3://{bucket}/blobs",
        "MODELYARD_S3_ENDPOINT_URL": moto.url,
        "MODELYARD_S3_PUBLIC_ENDPOINT_URL": gateway.url,
        "MODELYARD_DOWNLOAD_URL_TTL": str(TTL),
        "MODELYARD_XET_URL_TTL": str(TTL),
        "MODELYARD_UPLOAD_URL_TTL": str(TTL),
        # multipart from 12 MiB in parts of 5 MiB (S3's smallest): the 24 MiB weights go up in parts
        "MODELYARD_MULTIPART_THRESHOLD": str(12 * MIB), "MODELYARD_MULTIPART_CHUNK_SIZE": str(5 * MIB),
        **AWS_ENV,
    })
    with live.prepare().running():
        yield live


@pytest.fixture(scope="module")
def weights(direct: LiveServer) -> tuple[str, bytes]:
    """alice's repo with a 24 MiB LFS file and a small regular one."""
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct", private=True).repo_id
    data = os.urandom(24 * MIB + 5)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"# card\n", path_in_repo="README.md", repo_id=repo_id)
    return repo_id, data


def auth(user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def resolve_url(server: LiveServer, repo_id: str, path: str) -> str:
    return f"{server.url}/{repo_id}/resolve/main/{path}"


def test_a_download_comes_from_the_store_not_the_hub(
    direct: LiveServer, gateway: Gateway, weights: tuple[str, bytes], tmp_path: Path
) -> None:
    repo_id, data = weights
    sha = hashlib.sha256(data).hexdigest()
    head = httpx.head(resolve_url(direct, repo_id, "model.safetensors"), headers=auth())
    assert head.status_code == 302
    assert head.headers["location"].startswith(gateway.url + "/")
    assert head.headers["x-linked-size"] == str(len(data)) and head.headers["x-linked-etag"] == f'"{sha}"'
    assert len(head.headers["x-repo-commit"]) == 40

    hub_out = metric(direct.url, "modelyard_http_response_bytes_total")
    hub_written = direct.bytes_written()
    store_sent = gateway.sent
    path = hf_hub_download(repo_id, "model.safetensors", endpoint=direct.url, token=TOKENS["alice"],
                           cache_dir=tmp_path / "cache")
    got = Path(path).read_bytes()
    assert hashlib.sha256(got).hexdigest() == sha  # the client's file, checked against the etag
    assert gateway.sent - store_sent >= len(data)
    # the hub answered metadata only: a few KiB of bodies, nothing near the file's 24 MiB
    assert metric(direct.url, "modelyard_http_response_bytes_total") - hub_out < 64 * 1024
    assert direct.bytes_written() - hub_written < 2 * MIB

    # a Range read follows the redirect and gets its window from the store
    with httpx.Client(headers=auth(), follow_redirects=True) as client:
        r = client.get(resolve_url(direct, repo_id, "model.safetensors"), headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]
    assert str(r.url).startswith(gateway.url)
    # a small regular file is still sent by the hub
    small = httpx.get(resolve_url(direct, repo_id, "README.md"), headers=auth())
    assert small.status_code == 200 and small.content == b"# card\n"


def test_the_redirect_needs_read_access(direct: LiveServer, weights: tuple[str, bytes]) -> None:
    repo_id, _data = weights
    for headers in ({}, auth("bob")):
        r = httpx.head(resolve_url(direct, repo_id, "model.safetensors"), headers=headers)
        assert r.status_code in (401, 404) and "location" not in r.headers


def tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    path = changes.pop("path", parts.path)
    query.update(changes)
    return urlunsplit(parts._replace(path=path, query=urlencode(query)))


def test_a_tampered_or_expired_url_fails(direct: LiveServer, weights: tuple[str, bytes]) -> None:
    repo_id, data = weights
    url = httpx.head(resolve_url(direct, repo_id, "model.safetensors"), headers=auth()).headers["location"]
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).content == data[:10]  # the URL as given works
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for bad in (
        tampered(url, **{"X-Amz-Signature": flipped}),
        tampered(url, **{"X-Amz-Expires": "604800"}),  # a longer life than was signed
        tampered(url, path=urlsplit(url).path[:-4] + "0000"),  # another object
        urlunsplit(urlsplit(url)._replace(query="")),  # no signature: the bucket is private
    ):
        r = httpx.get(bad, headers={"Range": "bytes=0-9"})
        assert r.status_code == 403, (bad, r.status_code)
        assert r.content != data[:10]
    time.sleep(TTL + 1)
    expired = httpx.get(url, headers={"Range": "bytes=0-9"})
    assert expired.status_code == 403 and b"expired" in expired.content


def test_git_lfs_downloads_go_to_the_store(direct: LiveServer, gateway: Gateway, weights: tuple[str, bytes]) -> None:
    repo_id, data = weights
    sha = hashlib.sha256(data).hexdigest()
    r = httpx.post(f"{direct.url}/{repo_id}.git/info/lfs/objects/batch", headers={
        **auth(), "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
        json={"operation": "download", "transfers": ["basic"], "objects": [{"oid": sha, "size": len(data)}]})
    assert r.status_code == 200, r.text
    action = r.json()["objects"][0]["actions"]["download"]
    assert action["href"].startswith(gateway.url) and action["expires_in"] == TTL
    got = httpx.get(action["href"], timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha


def xet_env(server: LiveServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": server.url, "HF_HOME": str(home), "HF_TOKEN": TOKENS["alice"],
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_UPDATE_DOWNLOAD_COUNTS": "0"})
    return env


def test_xet_reads_go_to_the_store_by_signed_ranges(direct: LiveServer, gateway: Gateway, tmp_path: Path) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-xet").repo_id
    data = os.urandom(6 * MIB)
    local = tmp_path / "w.bin"
    local.write_bytes(data)
    env = xet_env(direct, tmp_path / "home")
    run_client("xet_client.py", ["upload", repo_id, str(local), "w.bin"], env)
    [entry] = [e for e in api.list_repo_tree(repo_id) if e.path == "w.bin"]
    assert entry.xet_hash is not None  # type: ignore[union-attr]

    hub_fetches = metric(direct.url, "modelyard_http_requests_total", route="xet.fetch")
    seen = len(gateway.requests)
    result = run_client("xet_client.py", ["download", repo_id, "w.bin"], env)
    assert hashlib.sha256(Path(result["path"]).read_bytes()).digest() == hashlib.sha256(data).digest()
    xorb_reads = [r for r in gateway.requests[seen:] if "/xet/xorbs/" in r[1]]
    assert xorb_reads and all(r[2] is not None and r[3] == 206 for r in xorb_reads), gateway.requests[seen:]
    assert metric(direct.url, "modelyard_http_requests_total", route="xet.fetch") == hub_fetches

    # A xorb URL opens exactly its range: a wider or other range is refused by the store.
    token = cas_token(direct, repo_id, "read", TOKENS["alice"])
    rec = httpx.get(f"{direct.url}/xet/v1/reconstructions/{entry.xet_hash}",  # type: ignore[union-attr]
                    headers={"Authorization": f"Bearer {token}"})
    assert rec.status_code == 200, rec.text
    [(xorb, [fetch, *_])] = list(rec.json()["fetch_info"].items())[:1]
    start, end = fetch["url_range"]["start"], fetch["url_range"]["end"]
    assert fetch["url"].startswith(gateway.url) and xorb in fetch["url"]
    ok = httpx.get(fetch["url"], headers={"Range": f"bytes={start}-{end}"})
    assert ok.status_code == 206 and len(ok.content) == end - start + 1
    for other in (f"bytes={start}-{end + 4096}", "bytes=0-", None):
        r = httpx.get(fetch["url"], headers={"Range": other} if other else {})
        assert r.status_code == 403, (other, r.status_code)


def lfs_batch(server: LiveServer, repo_id: str, oid: str, size: int, transfers: tuple[str, ...] = ("basic",)
              ) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", headers={
        **auth(), "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
        json={"operation": "upload", "transfers": list(transfers), "objects": [{"oid": oid, "size": size}]})
    assert r.status_code == 200, r.text
    actions: dict[str, Any] = r.json()["objects"][0]["actions"]
    return actions


def test_an_upload_goes_to_the_store_and_is_checked_before_it_counts(
    direct: LiveServer, gateway: Gateway, moto: MotoServer, tmp_path: Path
) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-up").repo_id
    data = os.urandom(16 * MIB + 3)
    hub_in = metric(direct.url, "modelyard_http_request_bytes_total")
    store_in = gateway.received
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    assert gateway.received - store_in >= len(data)  # the bytes went to the store
    assert metric(direct.url, "modelyard_http_request_bytes_total") - hub_in < 64 * 1024  # not to the hub
    got = hf_hub_download(repo_id, "w.bin", endpoint=direct.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == data
    bucket = next(b for b in moto.bucket_names() if any(k.startswith("blobs/") for k in moto.all_keys(b))
                  and f"blobs/{lfs_key(hashlib.sha256(data).hexdigest())}" in moto.all_keys(b))
    assert not [k for k in moto.all_keys(bucket) if k.startswith("blobs/staged/")]  # the staged copy is gone


def test_a_lying_direct_upload_is_refused_and_nothing_counts(direct: LiveServer, moto: MotoServer) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-lie").repo_id
    data = os.urandom(MIB)
    oid = hashlib.sha256(data).hexdigest()
    actions = lfs_batch(direct, repo_id, oid, len(data))
    put, verify = actions["upload"]["href"], actions["verify"]["href"]
    assert httpx.put(put, content=data[:-1]).status_code == 403  # another length than was signed
    assert httpx.put(put, content=os.urandom(len(data))).status_code == 200  # right length, wrong bytes
    r = httpx.post(verify, json={"oid": oid, "size": len(data)})
    assert r.status_code == 400 and r.headers["x-error-message"].startswith("Checksum mismatch")
    lines = [{"key": "header", "value": {"summary": "lie"}},
             {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data)}}]
    commit = httpx.post(f"{direct.url}/api/models/{repo_id}/commit/main",
                        headers={**auth(), "Content-Type": "application/x-ndjson"},
                        content=b"\n".join(json.dumps(line).encode() for line in lines))
    assert commit.status_code >= 400, commit.text  # the object does not exist: nothing to commit
    assert "w.bin" not in api.list_repo_files(repo_id)
    # the right bytes through a fresh batch are accepted
    actions = lfs_batch(direct, repo_id, oid, len(data))
    assert httpx.put(actions["upload"]["href"], content=data).status_code == 200
    assert httpx.post(actions["verify"]["href"], json={"oid": oid, "size": len(data)}).status_code == 200


def test_a_multipart_upload_goes_to_the_store_in_parts(
    direct: LiveServer, gateway: Gateway, tmp_path: Path
) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-parts").repo_id
    data = os.urandom(13 * MIB + 7)  # parts of 5, 5 and 3 MiB
    hub_in, store_in, seen = metric(direct.url, "modelyard_http_request_bytes_total"), gateway.received, \
        len(gateway.requests)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    assert gateway.received - store_in >= len(data)
    assert len([r for r in gateway.requests[seen:] if r[0] == "PUT" and r[3] == 200]) == 3
    assert metric(direct.url, "modelyard_http_request_bytes_total") - hub_in < 64 * 1024
    got = hf_hub_download(repo_id, "w.bin", endpoint=direct.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == data


def put_parts(actions: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    header = actions["upload"]["header"]
    chunk = int(header["chunk_size"])
    urls = [header[k] for k in sorted(k for k in header if k.isdigit())]
    parts = []
    for n, url in enumerate(urls, 1):
        r = httpx.put(url, content=data[(n - 1) * chunk : n * chunk])
        assert r.status_code == 200, r.text
        parts.append({"partNumber": n, "etag": r.headers["etag"]})
    return parts


def test_a_multipart_completion_the_store_refuses_changes_nothing(direct: LiveServer) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-parts-bad").repo_id
    data = os.urandom(12 * MIB)
    oid = hashlib.sha256(data).hexdigest()
    actions = lfs_batch(direct, repo_id, oid, len(data), ("basic", "multipart"))
    assert actions["upload"]["href"].startswith(f"{direct.url}/_lfs/staged-parts/")
    first = actions["upload"]["header"]["00001"]
    assert httpx.put(first, content=data[: 5 * MIB + 1]).status_code == 403  # longer than the part's signed size
    parts = put_parts(actions, data)
    complete = actions["upload"]["href"]
    bad = [dict(p) for p in parts]
    bad[1]["etag"] = '"' + "0" * 32 + '"'
    verify = {"oid": oid, "size": len(data)}
    for body in ({"oid": oid, "parts": bad}, {"oid": oid, "parts": parts[:-1]}, {"oid": "f" * 64, "parts": parts}):
        r = httpx.post(complete, json=body, timeout=60)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert httpx.post(f"{direct.url}/{repo_id}.git/info/lfs/objects/verify", json=verify,
                          headers=auth()).status_code == 404  # nothing counts
    assert httpx.post(complete, json={"oid": oid, "parts": parts}, timeout=60).status_code == 200
    assert httpx.post(complete, json={"oid": oid, "parts": parts}, timeout=60).status_code == 200  # a retry
    assert httpx.post(f"{direct.url}/{repo_id}.git/info/lfs/objects/verify", json=verify,
                      headers=auth()).status_code == 200


def test_gc_removes_direct_uploads_never_verified(direct: LiveServer, moto: MotoServer) -> None:
    api = HfApi(endpoint=direct.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/direct-gc").repo_id
    data = os.urandom(4096)
    actions = lfs_batch(direct, repo_id, hashlib.sha256(data).hexdigest(), len(data))
    assert httpx.put(actions["upload"]["href"], content=data).status_code == 200  # and never verified
    big = os.urandom(12 * MIB)
    parts = lfs_batch(direct, repo_id, hashlib.sha256(big).hexdigest(), len(big), ("basic", "multipart"))
    first = parts["upload"]["header"]["00001"]
    assert httpx.put(first, content=big[: 5 * MIB]).status_code == 200  # and never completed
    s3 = moto.client()

    def unfinished() -> list[str]:
        return [u["Key"] for b in moto.bucket_names() for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
                if u["Key"].startswith("blobs/staged/")]

    assert unfinished()
    staged = [k for b in moto.bucket_names() for k in moto.all_keys(b) if k.startswith("blobs/staged/")]
    assert staged
    kept = json.loads(direct.cli("gc", "--grace", "0").stdout.splitlines()[-1])
    assert kept["staged_files"] == 0  # its URL has not expired: an upload in flight is kept
    time.sleep(TTL + 1)
    removed = json.loads(direct.cli("gc", "--grace", "0").stdout.splitlines()[-1])
    assert removed["staged_files"] >= 2
    assert not unfinished()
    left = [k for b in moto.bucket_names() for k in moto.all_keys(b) if k.startswith("blobs/staged/")]
    assert not set(staged) & set(left)


def test_the_hub_sends_the_bytes_when_direct_downloads_are_off(
    moto: MotoServer, gateway: Gateway, tmp_path: Path
) -> None:
    bucket = moto.new_bucket()
    live = LiveServer(tmp_path / "hub", None, "sqlite", extra_env={
        "MODELYARD_STORAGE_URL": f"s3://{bucket}/blobs", "MODELYARD_S3_ENDPOINT_URL": moto.url,
        "MODELYARD_DIRECT_DOWNLOADS": "false", **AWS_ENV,
    })
    with live.prepare().running():
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        repo_id = api.create_repo("alice/proxied").repo_id
        data = os.urandom(2 * MIB)
        api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
        head = httpx.head(resolve_url(live, repo_id, "w.bin"), headers=auth())
        assert head.status_code == 200 and "location" not in head.headers
        got = hf_hub_download(repo_id, "w.bin", endpoint=live.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
        assert Path(got).read_bytes() == data
        assert metric(live.url, "modelyard_http_response_bytes_total", route="files.resolve") >= len(data)


