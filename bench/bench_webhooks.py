"""Webhook delivery throughput: 1,000 events to 10 receivers, then again with a hanging one.

A live server (SQLite, then PostgreSQL) gets 10 webhooks on one repo, each posting to its own
receiver on loopback (an asyncio HTTP/1.1 server in the bench process that answers 200 at once,
keeping connections alive). 1,000 events (tag pushes) are written into the ``events`` table in
one transaction and queued as the writers queue them (``Jobs.enqueue``); the clock runs from
then until every receiver has all 1,000 posts and every delivery row is settled. The second
round adds an 11th webhook whose receiver accepts connections and never answers: the other ten
must finish as fast as before (the hanging one's attempts time out on their own lane).

Usage: python -m bench.bench_webhooks [--events 1000] [--receivers 10] [--out result.json] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select
from tests.support.server import SEED, TOKENS, LiveServer, postgres_database

from modelyard.catalog.database import Database
from modelyard.catalog.tables import events, repos, webhook_deliveries
from modelyard.config import Settings
from modelyard.services.hub import Hub

REPO = "alice/hooked"
TARGET_S = 10.0
HANG_TIMEOUT = "2"  # seconds per attempt on the hanging receiver (the default is 10)


class Receivers:
    """``n`` counting receivers and one that never answers, on one asyncio loop in a thread."""

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.ports: list[int] = []
        self.hang_port = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(n, ready), daemon=True).start()
        ready.wait(10)

    def _run(self, n: int, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        for i in range(n):
            server = self._loop.run_until_complete(asyncio.start_server(self._counter(i), "127.0.0.1", 0))
            self.ports.append(server.sockets[0].getsockname()[1])
        hang = self._loop.run_until_complete(asyncio.start_server(self._hang, "127.0.0.1", 0))
        self.hang_port = hang.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    def _counter(self, index: int) -> Any:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    await reader.readexactly(length)
                    self.counts[index] += 1
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
        return serve

    async def _hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the sender gives up and closes


def make_events(database_url: str, count: int) -> list[int]:
    """``count`` tag pushes of REPO, recorded as a writer records them; their ids."""
    db = Database(database_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.write() as conn:
        repo_pk = conn.execute(select(repos.c.id).where(repos.c.key == REPO)).scalar_one()
        first = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
        conn.execute(insert(events), [
            {"repo_id": repo_pk, "kind": "ref", "ref": f"refs/tags/b{first + i}", "old": None,
             "new": f"{i:040x}", "actor_id": None, "data": None, "created_at": now, "attempts": 0,
             "next_attempt_at": now.replace(year=now.year + 1)}  # the writer enqueues them, not the sweeper
            for i in range(count)
        ])
        ids = [r.id for r in conn.execute(select(events.c.id).where(events.c.id > first).order_by(events.c.id))]
    db.dispose()
    return ids


def undone(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events).where(events.c.done_at.is_(None)))
                   .scalar_one())


def settled(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_deliveries)
                                .where(webhook_deliveries.c.status == "succeeded")).scalar_one())


def round_trip(live: LiveServer, database_url: str, rx: Receivers, count: int, timeout: float) -> dict[str, Any]:
    """Queue ``count`` events; seconds until every counting receiver has them all."""
    before = list(rx.counts)
    db = Database(database_url)  # one pool for the polls: they must cost the server's CPU little
    ok_before = settled(db)
    hub = Hub(Settings(data_dir=live.data_dir, database_url=database_url))
    t0 = time.perf_counter()
    ids = make_events(database_url, count)
    for event_id in ids:
        hub.jobs.enqueue(event_id)
    queued = time.perf_counter() - t0
    deadline = time.monotonic() + timeout
    n = len(rx.counts)
    handled = None
    while any(c - b < count for c, b in zip(rx.counts, before, strict=True)):
        if time.monotonic() > deadline:
            break
        if handled is None and undone(db) == 0:
            handled = time.perf_counter() - t0
        time.sleep(0.02)
    received = time.perf_counter() - t0
    while settled(db) - ok_before < count * n and time.monotonic() < deadline:
        time.sleep(0.05)
    done = time.perf_counter() - t0
    hub.close()
    db.dispose()
    got = [c - b for c, b in zip(rx.counts, before, strict=True)]
    return {"events": count, "receivers": n, "posts": sum(got), "complete": min(got) >= count,
            "queue_s": round(queued, 2),
            "jobs_done_s": None if handled is None else round(handled, 2),
            "received_s": round(received, 2), "settled_s": round(done, 2)}


def run_backend(backend: str, count: int, receivers: int, timeout: float) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-webhooks-"))
    ctx = postgres_database() if backend == "postgresql" else None
    url = ctx.__enter__() if ctx is not None else None
    database_url = url or f"sqlite:///{data_dir / 'modelyard.db'}"
    rx = Receivers(receivers)
    try:
        live = LiveServer(data_dir, url, backend, extra_env={"MODELYARD_WEBHOOK_TIMEOUT": HANG_TIMEOUT})
        live.cli("db", "upgrade")
        live.seed(SEED)
        live.start()
        try:
            auth = {"Authorization": f"Bearer {TOKENS['alice']}"}
            httpx.post(f"{live.url}/api/repos/create", json={"name": "hooked"}, headers=auth).raise_for_status()
            live.settle()

            def hook(port: int) -> str:
                r = httpx.post(f"{live.url}/api/settings/webhooks", headers=auth, json={
                    "url": f"http://127.0.0.1:{port}/", "watched": [{"type": "model", "name": REPO}],
                    "domains": ["repo"]})
                r.raise_for_status()
                return str(r.json()["webhook"]["id"])

            for port in rx.ports:
                hook(port)
            plain = round_trip(live, database_url, rx, count, timeout)
            hang_id = hook(rx.hang_port)
            hanging = round_trip(live, database_url, rx, count, timeout)
            log = httpx.get(f"{live.url}/api/settings/webhooks/{hang_id}/deliveries", headers=auth,
                            params={"limit": 1000}).json()
            hanging["hanging_attempts"] = sum(len(d["log"]) for d in log)
        finally:
            live.stop()
        return {"backend": backend, "plain": plain, "with_hanging": hanging}
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--receivers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on a round after this many seconds")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="20 events to 3 receivers")
    args = parser.parse_args()
    if args.quick:
        args.events, args.receivers = 20, 3
    results = [run_backend(b, args.events, args.receivers, args.timeout) for b in ("sqlite", "postgresql")]
    for r in results:
        print(f"{r['backend']:>10}: {r['plain']['posts']} posts received in {r['plain']['received_s']} s "
              f"(queued in {r['plain']['queue_s']} s, jobs done at {r['plain']['jobs_done_s']} s); "
              f"with a hanging receiver {r['with_hanging']['received_s']} s "
              f"({'meets' if _ok(r) else 'MISSES'} < {TARGET_S:g} s)", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"bench": "webhooks", "quick": args.quick, "results": results}, indent=2))


def _ok(r: dict[str, Any]) -> bool:
    return all(r[k]["complete"] and r[k]["received_s"] < TARGET_S for k in ("plain", "with_hanging"))


def met(result: dict[str, Any]) -> bool:
    return all(_ok(r) for r in result["results"])


def headline(result: dict[str, Any]) -> str:
    return "; ".join(f"{r['backend']}: {r['plain']['posts']:,} posts in {r['plain']['received_s']} s, "
                     f"{r['with_hanging']['received_s']} s with a hanging receiver" for r in result["results"])


def markdown(result: dict[str, Any]) -> str:
    lines = ["| backend | round | events | receivers | posts | all received s | all settled s | target < 10 s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        for key, label in (("plain", "10 receivers"), ("with_hanging", "+1 hanging receiver")):
            m = r[key]
            met_ = "met" if m["complete"] and m["received_s"] < TARGET_S else "**not met**"
            lines.append(f"| {r['backend']} | {label} | {m['events']:,} | {m['receivers']} | {m['posts']:,} | "
                         f"{m['received_s']} | {m['settled_s']} | {met_} |")
    return "\n".join(lines)


NOTES = """\
**How.** An event's job fans it out into one row per webhook in one insert; a sender thread in
each server runs one asyncio lane per webhook (one attempt in flight per webhook, so each
receiver gets its events in order) over a kept-alive connection, and settles each batch of
attempts in one transaction. A hanging receiver holds only its own lane, for
`MODELYARD_WEBHOOK_TIMEOUT` per attempt (2 s here)."""


if __name__ == "__main__":
    main()
