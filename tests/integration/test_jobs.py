"""Post-commit work runs as jobs on the queue: a commit does not wait for it, a failed job is
retried until the catalog converges, and a lost job is enqueued again (SQLite and PostgreSQL).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from huggingface_hub import HfApi
from safetensors.numpy import save
from sqlalchemy import create_engine, text

from tests.integration.conftest import BACKENDS
from tests.support.server import TOKENS, LiveServer, seeded_hub

ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}


@pytest.fixture(scope="module", params=BACKENDS)
def jobs_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose lost jobs are swept again after 2 s (the default lease is 5 minutes)."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"jobs-{request.param}")) as hub:
        hub.extra_env.update({"MODELYARD_JOB_LEASE": "2", "MODELYARD_JOB_SWEEP_INTERVAL": "0.5"})
        with hub.running() as live:
            yield live


def rows(server: LiveServer, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def weights(n: int) -> bytes:
    return save({"w": np.zeros((n,), dtype=np.float32)})


def params_in_catalog(api: HfApi, repo_id: str, n: int) -> bool:
    """Whether listing by parameter count (the catalog, not a live computation) finds the repo at ``n``."""
    found = {m.id for m in api.list_models(search=repo_id.split("/")[1], num_parameters=f"min:{n},max:{n}")}
    return repo_id in found


def wait_for(check: Any, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.1)
    return time.monotonic() - start


def upload_unreferenced(server: LiveServer, repo_id: str, data: bytes) -> tuple[str, Path]:
    """An LFS object uploaded (batch, PUT, verify) but not committed: its sha256 and blob file."""
    import hashlib

    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", headers=ALICE,
                       json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    assert httpx.put(href, content=data).status_code == 200
    return oid, server.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def commit_lfs(server: LiveServer, repo_id: str, path: str, oid: str, size: int) -> httpx.Response:
    body = "\n".join(json.dumps(line) for line in [
        {"key": "header", "value": {"summary": f"add {path}"}},
        {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}]) + "\n"
    return httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", content=body.encode(),
                      headers={**ALICE, "Content-Type": "application/x-ndjson"})


def test_a_failed_indexing_job_is_retried_until_the_catalog_converges(jobs_server: LiveServer, tmp_path: Path) -> None:
    server = jobs_server
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    repo_id = api.create_repo("acme/flaky-store").repo_id
    api.upload_file(path_or_fileobj=io.BytesIO(weights(1000)), path_in_repo="model.safetensors", repo_id=repo_id)
    server.settle()
    assert params_in_catalog(api, repo_id, 1000)

    # The next version's bytes are uploaded, then vanish from the store before the commit: the
    # commit itself only needs the database, the indexing job needs the bytes and fails.
    data = weights(2000)
    oid, blob = upload_unreferenced(server, repo_id, data)
    parked = tmp_path / "parked"
    blob.rename(parked)
    r = commit_lfs(server, repo_id, "model.safetensors", oid, len(data))
    assert r.status_code == 200, r.text  # the commit does not wait for (or fail with) the catalog
    event = rows(server, "SELECT max(id) FROM events")[0][0]
    wait_for(lambda: rows(server, "SELECT attempts FROM events WHERE id = :id", id=event)[0][0] >= 2, 30)
    assert rows(server, "SELECT done_at FROM events WHERE id = :id", id=event)[0][0] is None
    assert params_in_catalog(api, repo_id, 1000) and not params_in_catalog(api, repo_id, 2000)

    parked.rename(blob)  # the store is back: a retry succeeds
    wait_for(lambda: params_in_catalog(api, repo_id, 2000), 60)
    # The event is marked done in the transaction after the catalog's (with its webhooks and scans).
    wait_for(lambda: rows(server, "SELECT done_at FROM events WHERE id = :id", id=event)[0][0] is not None, 30)
    assert api.model_info(repo_id).safetensors.total == 2000
    assert "refreshing the catalog failed" in server.log_path.read_text()


def test_a_lost_job_is_enqueued_again(jobs_server: LiveServer) -> None:
    """A commit made while no consumer runs (the server is down) whose queued job is then lost:
    the sweeper finds the event undone past its lease and enqueues it again."""
    server = jobs_server
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    repo_id = api.create_repo("acme/lost-job").repo_id
    server.settle()
    server.stop()
    folder = server.data_dir / "import-src"
    folder.mkdir(exist_ok=True)
    (folder / "README.md").write_text("---\nlicense: mit\ntags:\n- lostjobtag\n---\n# lost\n")
    server.cli("import", str(folder), repo_id, "--as-user", "alice")
    assert rows(server, "SELECT count(*) FROM events WHERE done_at IS NULL")[0][0] == 1
    drop_queued_jobs(server)
    server.start()
    found = lambda: repo_id in {m.id for m in api.list_models(filter="lostjobtag")}  # noqa: E731
    wait_for(found, 60)
    # The job marks the event done just after the catalog has it: wait for that too.
    wait_for(lambda: rows(server, "SELECT count(*) FROM events WHERE done_at IS NULL")[0][0] == 0, 30)


def drop_queued_jobs(server: LiveServer) -> None:
    """What a crash of the queue's consumer mid-job looks like: the job is gone from the queue."""
    if server.database_url:
        url = server.database_url
        table = "huey_task"
    else:
        url = f"sqlite:///{server.data_dir / 'queue.db'}"
        table = "task"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            dropped = conn.execute(text(f"DELETE FROM {table}")).rowcount
    finally:
        engine.dispose()
    assert dropped >= 1
