"""A real ``modelyard serve`` process on loopback, over SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PG_ADMIN_URL = os.environ.get("MODELYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent

TOKENS = {
    "alice": "hf_alice_write_token_0000000000000000",
    "alice_read": "hf_alice_read_token_00000000000000000",
    "bob": "hf_bob_write_token_000000000000000000",
    "carol": "hf_carol_write_token_0000000000000000",
}

SEED = {
    "users": [
        {"name": "alice", "fullname": "Alice A", "email": "alice@example.com", "tokens": [
            {"value": TOKENS["alice"], "role": "write", "name": "laptop"},
            {"value": TOKENS["alice_read"], "role": "read", "name": "ci"},
        ]},
        {"name": "bob", "fullname": "Bob B", "tokens": [{"value": TOKENS["bob"], "role": "write", "name": "b"}]},
        {"name": "carol", "fullname": "Carol C", "tokens": [{"value": TOKENS["carol"], "role": "write", "name": "c"}]},
    ],
    "orgs": [
        {"name": "acme", "fullname": "Acme", "members": {"alice": "admin", "carol": "read"}},
        {"name": "vault", "fullname": "Vault", "members": {"alice": "write"}, "default_private": True},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class LiveServer:
    """A modelyard server process and the settings it runs with."""

    data_dir: Path
    database_url: str | None
    backend: str
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    admin_token: str | None = None
    _log: object = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "HF_"))}
        env["MODELYARD_DATA_DIR"] = str(self.data_dir)
        env["MODELYARD_TALLY_INTERVAL"] = "0.2"  # download counts folded quickly for the tests
        # Webhook receivers in the tests listen on loopback, which a hub refuses by default.
        env["MODELYARD_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
        # Rate limits stay on (every request goes through the limiter) but far above what the
        # tests send from one address; tests/integration/test_rate_limits.py sets tight ones.
        for group in ("API", "RESOLVE", "UPLOADS"):
            env[f"MODELYARD_RATE_LIMIT_{group}"] = "1000000/minute"
        if self.database_url:
            env["MODELYARD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "modelyard"), *args], env=self.env(), capture_output=True, text=True,
            check=check, timeout=300, input=stdin,
        )

    def seed(self, spec: dict[str, object]) -> None:
        path = self.data_dir / f"seed-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(spec))
        self.cli("seed", str(path))

    def prepare(self) -> LiveServer:
        """Migrate the database and seed the test accounts (``SEED``); returns the server, not started."""
        self.cli("db", "upgrade")
        self.seed(SEED)
        return self

    @contextmanager
    def running(self) -> Iterator[LiveServer]:
        """Started for the block, stopped after it."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [str(BIN / "modelyard"), "serve", "--port", str(self.port)],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                httpx.get(f"{self.url}/api/agent-harnesses", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every background job has run (the catalog and storage accounting follow
        commits through the job queue): no event is left undone in the database."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url or f"sqlite:///{self.data_dir / 'modelyard.db'}")
        try:
            deadline = time.monotonic() + timeout
            while True:
                with engine.connect() as conn:
                    pending = conn.execute(text("SELECT count(*) FROM events WHERE done_at IS NULL")).scalar_one()
                if pending == 0:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{pending} background job(s) still pending after {timeout} s")
                time.sleep(0.05)
        finally:
            engine.dispose()

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def pids(self) -> list[int]:
        """The serving processes: the one ``modelyard serve`` process, or its workers with ``--workers N``."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        workers = worker_pids(self.proc.pid)
        return workers or [self.proc.pid]

    def bytes_read(self) -> int:
        """Bytes the serving processes have read so far, from sockets and files alike (``rchar`` of
        /proc/PID/io). A test that sends part of a body waits for this to grow by at least that much:
        proof that the server took the bytes in, where a sleep would only hope so."""
        return sum(process_io(pid)["rchar"] for pid in self.pids())

    def bytes_written(self) -> int:
        """Bytes the serving processes have written so far, to sockets and files alike (``wchar``)."""
        return sum(process_io(pid)["wchar"] for pid in self.pids())


def wait_for_port(proc: subprocess.Popen[bytes], port: int, name: str, timeout: float = 30.0) -> None:
    """Wait until ``proc`` accepts connections on 127.0.0.1:``port``; raise if it exits or is late."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.05)


def process_io(pid: int) -> dict[str, int]:
    """The kernel's I/O counters of a process (``rchar``, ``wchar``, ...): /proc/PID/io."""
    lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    return {key: int(value) for key, value in (line.split(": ") for line in lines)}


def worker_pids(parent: int) -> list[int]:
    """Worker processes that uvicorn spawned under ``parent`` (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@contextmanager
def seeded_hub(backend: str, data_dir: Path) -> Iterator[LiveServer]:
    """A migrated, seeded hub on a fresh database (not started): sqlite, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield LiveServer(data_dir, None, "sqlite").prepare()
    else:
        with postgres_database() as url:
            yield LiveServer(data_dir, url, "postgresql").prepare()


def metric(server_url: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples at ``/metrics`` whose labels include ``labels``
    (``name`` as exposed: ``modelyard_http_response_bytes_total``)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server_url}/metrics", timeout=10).raise_for_status().text
    return sum(
        sample.value for family in text_string_to_metric_families(text) for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
