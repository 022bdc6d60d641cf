"""``modelyard gc`` removes multipart uploads nobody can finish, and nothing of a live one.

Uploads are left unfinished, a repository with an unfinished upload is deleted, a completed one
is kept; the unfinished uploads are then made older than the upload URLs' lifetime (their start
time moved back in the database: the only thing not done through the server), one more upload
starts, and gc runs: the abandoned and orphaned files are gone, the live upload still completes,
the completed object still downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from sqlalchemy import create_engine, text

from tests.integration.conftest import BACKENDS
from tests.support.server import TOKENS, LiveServer, postgres_database

CHUNK = 300 * 1024


@pytest.fixture(params=BACKENDS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"MODELYARD_MULTIPART_THRESHOLD": str(1024 * 1024), "MODELYARD_MULTIPART_CHUNK_SIZE": str(CHUNK)}
    data_dir = tmp_path_factory.mktemp(f"gc-uploads-{request.param}")
    if request.param == "sqlite":
        live = LiveServer(data_dir, None, "sqlite", extra_env=env).prepare()
        with live.running():
            yield live
    else:
        with postgres_database() as url:
            live = LiveServer(data_dir, url, "postgresql", extra_env=env).prepare()
            with live.running():
                yield live


def _begin(hub: LiveServer, repo_id: str, data: bytes, parts: int) -> tuple[str, list[str], list[str]]:
    """Start a multipart upload of ``data`` and send its first ``parts`` parts: (completion URL,
    part URLs, ETags of the parts sent)."""
    oid = hashlib.sha256(data).hexdigest()
    body = {"operation": "upload", "transfers": ["multipart"], "objects": [{"oid": oid, "size": len(data)}]}
    r = httpx.post(f"{hub.url}/{repo_id}.git/info/lfs/objects/batch",
                   headers={"Authorization": f"Bearer {TOKENS['alice']}"}, json=body)
    upload = r.json()["objects"][0]["actions"]["upload"]
    urls = [upload["header"][k] for k in sorted(k for k in upload["header"] if k.isdigit())]
    etags = []
    for i in range(parts):
        put = httpx.put(urls[i], content=data[i * CHUNK : (i + 1) * CHUNK])
        assert put.status_code == 200
        etags.append(put.headers["ETag"])
    return upload["href"], urls, etags


def _age_uploads(hub: LiveServer, by: timedelta) -> None:
    engine = create_engine(hub.database_url or f"sqlite:///{hub.data_dir / 'modelyard.db'}")
    try:
        with engine.begin() as conn:
            for row in conn.execute(text("SELECT id, created_at FROM multipart_uploads")).all():
                started = datetime.fromisoformat(str(row.created_at))  # SQLite gives text back
                conn.execute(text("UPDATE multipart_uploads SET created_at = :t WHERE id = :i"),
                             {"t": started - by, "i": row.id})
    finally:
        engine.dispose()


def _upload_folders(hub: LiveServer) -> set[str]:
    root = hub.data_dir / "blobs" / "uploads"
    return {p.parent.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_gc_removes_abandoned_and_orphaned_uploads_only(hub: LiveServer, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=TOKENS["alice"])
    for name in ("gc-up-keep", "gc-up-gone"):
        api.create_repo(f"acme/{name}")
    payload = os.urandom(1024 * 1024 + 1)
    api.upload_file(path_or_fileobj=payload, path_in_repo="done.bin", repo_id="acme/gc-up-keep")  # completed
    _begin(hub, "acme/gc-up-keep", os.urandom(1024 * 1024 + 2), parts=2)  # abandoned half-way
    _begin(hub, "acme/gc-up-gone", os.urandom(1024 * 1024 + 3), parts=1)
    api.delete_repo("acme/gc-up-gone")  # its upload's record goes with it; its files stay until gc
    stale = _upload_folders(hub)
    assert len(stale) == 2
    _age_uploads(hub, timedelta(days=2))  # started two days ago: their URLs (one day) have expired

    live_data = os.urandom(1024 * 1024 + 4)
    href, urls, etags = _begin(hub, "acme/gc-up-keep", live_data, parts=2)
    live = _upload_folders(hub) - stale
    assert len(live) == 1

    out = hub.cli("gc", "--grace", "0")
    report = json.loads(out.stdout)
    assert report["uploads_abandoned"] == 1 and report["upload_files"] >= 3, report
    assert _upload_folders(hub) == live  # only the live upload's files are left

    for i in range(2, len(urls)):  # the live upload goes on and completes
        put = httpx.put(urls[i], content=live_data[i * CHUNK : (i + 1) * CHUNK])
        etags.append(put.headers["ETag"])
    done = httpx.post(href, json={"oid": hashlib.sha256(live_data).hexdigest(),
                                  "parts": [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]})
    assert done.status_code == 200, done.text
    local = hf_hub_download("acme/gc-up-keep", "done.bin", endpoint=hub.url, token=TOKENS["alice"],
                            cache_dir=tmp_path)
    assert Path(local).read_bytes() == payload
