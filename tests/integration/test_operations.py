"""What an operator runs a server by: ``/healthz`` and ``/readyz`` for the load balancer,
Prometheus metrics, JSON log lines with request ids, and a graceful stop on SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from huggingface_hub import HfApi

from tests.support.server import PG_ADMIN_URL, TOKENS, LiveServer, metric, postgres_database, seeded_hub

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server logging JSON, with a short grace period for stopping."""
    with seeded_hub("sqlite", tmp_path_factory.mktemp("ops")) as hub:
        hub.extra_env.update({"MODELYARD_LOG_FORMAT": "json", "MODELYARD_SHUTDOWN_TIMEOUT": "20"})
        with hub.running() as live:
            yield live


def test_health_and_readiness(ops_server: LiveServer) -> None:
    assert httpx.get(f"{ops_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{ops_server.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database", "storage"}
    assert all(c["ok"] for c in body["checks"].values())


def test_readiness_fails_while_the_database_is_away(tmp_path: Path) -> None:
    """A server whose PostgreSQL database disappears stays alive but is not ready (503)."""
    with postgres_database() as url:
        live = LiveServer(tmp_path / "hub", url, "postgresql").prepare()
        with live.running():
            assert httpx.get(f"{live.url}/readyz").status_code == 200
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            r = httpx.get(f"{live.url}/readyz")
            assert r.status_code == 503
            checks = r.json()["checks"]
            assert checks["database"]["ok"] is False and checks["database"]["detail"]
            assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_metrics_count_requests_bytes_and_storage(ops_server: LiveServer) -> None:
    api = HfApi(endpoint=ops_server.url, token=TOKENS["alice"])
    before = {
        "uploads": metric(ops_server.url, "modelyard_http_request_bytes_total", route="lfs.upload"),
        "infos": metric(ops_server.url, "modelyard_http_requests_total", route="discovery.info", status="200"),
        "lfs": metric(ops_server.url, "modelyard_storage_bytes", kind="lfs"),
        "misses": metric(ops_server.url, "modelyard_http_requests_total", status="404"),
    }
    repo_id = api.create_repo(f"alice/m-{uuid.uuid4().hex[:8]}").repo_id
    data = os.urandom(3 * MIB)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    for _ in range(3):
        api.model_info(repo_id)
    httpx.get(f"{ops_server.url}/api/models/alice/no-such-repo-{uuid.uuid4().hex[:6]}")
    ops_server.settle()
    assert metric(ops_server.url, "modelyard_http_request_bytes_total", route="lfs.upload") - before["uploads"] \
        == len(data)
    assert metric(ops_server.url, "modelyard_http_requests_total", route="discovery.info", status="200") \
        - before["infos"] == 3
    assert metric(ops_server.url, "modelyard_http_requests_total", status="404") - before["misses"] >= 1
    assert metric(ops_server.url, "modelyard_storage_bytes", kind="lfs") - before["lfs"] == len(data)
    assert metric(ops_server.url, "modelyard_http_request_duration_seconds_count", route="discovery.info") >= 3
    assert metric(ops_server.url, "modelyard_events_pending") == 0
    text = httpx.get(f"{ops_server.url}/metrics").text
    assert "\nmodelyard_queue_depth " in text
    assert '\nmodelyard_http_requests_in_flight{route="ops.metrics"} 1.0\n' in text  # this very scrape
    assert '\nmodelyard_uploads_in_flight{route="lfs.upload"} 0.0\n' in text  # the upload is over
    assert repo_id not in text  # routes are named by handler, never by path


def test_log_lines_are_json_with_the_request_id(ops_server: LiveServer) -> None:
    rid = f"ops-{uuid.uuid4().hex}"
    httpx.get(f"{ops_server.url}/api/models/alice/missing-{uuid.uuid4().hex[:6]}", headers={"X-Request-Id": rid})
    deadline = time.monotonic() + 10
    found: list[dict[str, object]] = []
    while not found and time.monotonic() < deadline:
        for line in ops_server.log_path.read_text(errors="replace").splitlines():
            if rid in line:
                found.append(json.loads(line))  # every line naming it is one JSON object
        time.sleep(0.05)
    [entry] = found
    assert entry["request_id"] == rid and entry["status"] == 404 and entry["method"] == "GET"
    assert entry["logger"] == "modelyard.access" and isinstance(entry["ms"], float)
    assert str(entry["path"]).startswith("/api/models/alice/missing-")


def test_sigterm_finishes_the_download_in_flight(ops_server: LiveServer) -> None:
    api = HfApi(endpoint=ops_server.url, token=TOKENS["alice"])
    repo_id = api.create_repo(f"alice/stop-{uuid.uuid4().hex[:8]}").repo_id
    data = os.urandom(48 * MIB)
    api.upload_file(path_or_fileobj=data, path_in_repo="big.bin", repo_id=repo_id)
    assert ops_server.proc is not None
    started = threading.Event()
    got = hashlib.sha256()
    received = [0]

    def slow_reader() -> None:
        with httpx.stream("GET", f"{ops_server.url}/{repo_id}/resolve/main/big.bin",
                          headers={"Authorization": f"Bearer {TOKENS['alice']}"}, timeout=60) as r:
            for chunk in r.iter_bytes(MIB):
                got.update(chunk)
                received[0] += len(chunk)
                if received[0] >= 4 * MIB:
                    started.set()
                time.sleep(0.03)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    assert started.wait(30)
    ops_server.proc.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    reader.join(60)
    code = ops_server.proc.wait(30)
    try:
        assert received[0] == len(data) and got.digest() == hashlib.sha256(data).digest()
        # uvicorn stops cleanly, then re-raises the signal it caught (the exit a supervisor expects)
        assert code in (0, -signal.SIGTERM) and time.monotonic() - stopping < 20
        assert "Traceback" not in ops_server.log_path.read_text(errors="replace")
    finally:
        ops_server.stop()
        ops_server.start()  # for the module's other tests, in whatever order they run
