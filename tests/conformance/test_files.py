"""/resolve headers and ranges, info fields, validate-yaml, auth-check and incidental endpoints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import BadRequestError, EntryNotFoundError, RepositoryNotFoundError

from tests.support.server import LiveServer


@pytest.fixture
def populated(api: HfApi, server: LiveServer, repo_name: str) -> tuple[str, bytes, bytes]:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    big = os.urandom(200_000)
    small = b'{"model_type": "bert"}'
    api.upload_file(path_or_fileobj=big, path_in_repo="w/model.safetensors", repo_id=repo_id)
    api.upload_file(path_or_fileobj=small, path_in_repo="config.json", repo_id=repo_id)
    server.settle()  # usedStorage follows the commit through the job queue
    return repo_id, big, small


def test_resolve_headers_for_lfs_and_regular_files(server: LiveServer, populated: tuple[str, bytes, bytes]) -> None:
    repo_id, big, small = populated
    sha = hashlib.sha256(big).hexdigest()
    lfs = httpx.head(f"{server.url}/{repo_id}/resolve/main/w/model.safetensors")
    assert lfs.status_code == 200
    assert lfs.headers["X-Linked-Etag"] == f'"{sha}"' and lfs.headers["ETag"] == f'"{sha}"'
    assert lfs.headers["X-Linked-Size"] == str(len(big)) == lfs.headers["Content-Length"]
    assert len(lfs.headers["X-Repo-Commit"]) == 40 and lfs.headers["Accept-Ranges"] == "bytes"
    assert "Location" not in lfs.headers and "X-Xet-Hash" not in lfs.headers
    regular = httpx.head(f"{server.url}/{repo_id}/resolve/main/config.json")
    git_blob = hashlib.sha1(b"blob %d\0" % len(small) + small).hexdigest()
    assert regular.headers["ETag"] == f'"{git_blob}"' and "X-Linked-Etag" not in regular.headers
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "w/model.safetensors", endpoint=server.url))
    assert meta.etag == sha and meta.size == len(big) and meta.commit_hash == lfs.headers["X-Repo-Commit"]
    assert httpx.get(f"{server.url}/{repo_id}/resolve/main/w/model.safetensors").content == big


def test_ranges(server: LiveServer, populated: tuple[str, bytes, bytes]) -> None:
    repo_id, big, small = populated
    url = f"{server.url}/{repo_id}/resolve/main/w/model.safetensors"
    for header, expected, content_range in [
        ("bytes=0-99", big[:100], f"bytes 0-99/{len(big)}"),
        ("bytes=1000-", big[1000:], f"bytes 1000-{len(big) - 1}/{len(big)}"),
        ("bytes=-10", big[-10:], f"bytes {len(big) - 10}-{len(big) - 1}/{len(big)}"),
        ("bytes=199990-300000", big[199990:], f"bytes 199990-{len(big) - 1}/{len(big)}"),
    ]:
        r = httpx.get(url, headers={"Range": header})
        assert r.status_code == 206 and r.content == expected and r.headers["Content-Range"] == content_range
    r = httpx.get(url, headers={"Range": f"bytes={len(big)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(big)}"
    r = httpx.get(f"{server.url}/{repo_id}/resolve/main/config.json", headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == small[2:6]


def test_missing_file_404_carries_commit(server: LiveServer, populated: tuple[str, bytes, bytes],
                                         tmp_path: Path) -> None:
    repo_id, _, _ = populated
    r = httpx.head(f"{server.url}/{repo_id}/resolve/main/nope.json")
    assert r.status_code == 404 and r.headers["X-Error-Code"] == "EntryNotFound"
    assert len(r.headers["X-Repo-Commit"]) == 40
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.json", endpoint=server.url, cache_dir=tmp_path)
    # the miss is cached under .no_exist/<commit>/ as the client does for the Hub
    assert list(tmp_path.rglob(".no_exist/*/nope.json"))


def test_info_fields_blobs_expand_and_storage(api: HfApi, populated: tuple[str, bytes, bytes]) -> None:
    repo_id, big, small = populated
    info = api.model_info(repo_id, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings}
    lfs = by_name["w/model.safetensors"].lfs
    assert lfs is not None and lfs.size == len(big) and lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert by_name["config.json"].size == len(small) and by_name["config.json"].lfs is None
    assert info.used_storage is not None and info.used_storage >= len(big) + len(small)
    partial = api.model_info(repo_id, expand=["sha", "lastModified"])
    assert partial.sha == info.sha and partial.siblings is None and partial.tags is None


def test_validate_yaml_auth_check_and_incidentals(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, populated: tuple[str, bytes, bytes]
) -> None:
    repo_id, _, _ = populated
    card = {"content": "---\nlicense: mit\n---\n", "repoType": "model"}
    ok = httpx.post(f"{server.url}/api/validate-yaml", json=card)
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad = httpx.post(f"{server.url}/api/validate-yaml", json={"content": "---\nlicense: [unclosed\n---\n"})
    assert bad.status_code == 400 and bad.json()["errors"]
    # The client asks the server's validate-yaml before committing a README.md and turns its 400
    # into a ValueError: the refusal must be the server's (the cause), and nothing is committed.
    with pytest.raises(ValueError, match="Invalid metadata in README.md") as refused:
        api.upload_file(path_or_fileobj=b"---\ntags: {a: [\n---\n", path_in_repo="README.md", repo_id=repo_id)
    cause = refused.value.__cause__
    assert isinstance(cause, BadRequestError)
    assert cause.response.status_code == 400 and cause.response.url.path == "/api/validate-yaml"
    assert "README.md" not in api.list_repo_files(repo_id)
    api.auth_check(repo_id)
    api_as(None).auth_check(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check("acme/definitely-not-here")
    r = httpx.get(f"{server.url}/api/agent-harnesses")
    assert r.status_code == 200 and "harnesses" in r.json()
    assert httpx.head(f"{server.url}/api/telemetry/some/topic").status_code == 200
    r = httpx.get(f"{server.url}/info?dataset=x", headers={"Host": "datasets-server.127.0.0.1"})
    assert r.status_code == 404
