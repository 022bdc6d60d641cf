"""Discussion listing and thread details latency (SQLite and PostgreSQL).

A repo gets 1,000 threads (discussions and pull requests, three authors, mixed statuses, each
opened with a comment) and one discussion with 500 events (comments, some edited, title and
status changes), written straight into the tables as the service would write them. Then, over
loopback against a live server, one request at a time: ``GET .../discussions?p=N`` (pages of
50, cycled, with and without a status filter) and ``GET .../discussions/1?diff=1`` (what
``get_discussion_details`` sends).

Usage: python -m bench.bench_discussions [--threads 1000] [--events 500] [--requests 300] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select
from tests.support.server import SEED, TOKENS, LiveServer, postgres_database

from modelyard.catalog.database import Database
from modelyard.catalog.tables import accounts, discussion_comment_edits, discussion_events, discussions, repos
from modelyard.services.markdown import render

REPO = "acme/discussed"
TARGET_P99_MS = 50


def _comment(rng: random.Random, author: tuple[int, str], when: datetime) -> str:
    raw = f"Comment **{rng.randint(0, 10**6)}**: " + " ".join(f"w{rng.randint(0, 5000)}" for _ in range(40))
    return json.dumps({"raw": raw, "html": render(raw), "hidden": False, "edited": False,
                       "updatedAt": when.isoformat(), "editorId": author[0], "editor": author[1]})


def generate(database_url: str, threads: int, events: int, seed: int = 1) -> None:
    """Write ``threads`` threads into REPO, the first with ``events`` events."""
    rng = random.Random(seed)
    db = Database(database_url)
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=100)
    with db.write() as conn:
        repo_pk = conn.execute(select(repos.c.id).where(repos.c.key == REPO)).scalar_one()
        people = [(r.id, r.name) for r in conn.execute(
            select(accounts.c.id, accounts.c.name).where(accounts.c.name.in_(["alice", "bob", "carol"])))]
        rows = []
        for num in range(1, threads + 1):
            pr = num > 1 and rng.random() < 0.3
            status = rng.choice(["open", "closed", "merged", "draft"] if pr else ["open", "open", "closed"])
            rows.append({"repo_id": repo_pk, "num": num, "title": f"Thread {num}", "is_pull_request": pr,
                         "status": "open" if num == 1 else status, "author_id": rng.choice(people)[0],
                         "created_at": base + timedelta(minutes=num),
                         "base_ref": "refs/heads/main" if pr else None})
        conn.execute(insert(discussions), rows)
        ids = dict(conn.execute(select(discussions.c.num, discussions.c.id).where(
            discussions.c.repo_id == repo_pk)).all())
        opening = [{"discussion_id": ids[n], "type": "comment", "author_id": people[0][0],
                    "created_at": base + timedelta(minutes=n), "data": _comment(rng, people[0], base)}
                   for n in range(2, threads + 1)]
        conn.execute(insert(discussion_events), opening)
        long = []
        for i in range(events):
            author, when = rng.choice(people), base + timedelta(seconds=i)
            if i % 50 == 49:
                long.append({"discussion_id": ids[1], "type": "title-change", "author_id": author[0],
                             "created_at": when, "data": json.dumps({"from": f"t{i}", "to": f"t{i + 1}"})})
            else:
                long.append({"discussion_id": ids[1], "type": "comment", "author_id": author[0],
                             "created_at": when, "data": _comment(rng, author, when)})
        conn.execute(insert(discussion_events), long)
        edited = conn.execute(select(discussion_events.c.id, discussion_events.c.author_id).where(
            discussion_events.c.discussion_id == ids[1], discussion_events.c.type == "comment").limit(events // 10))
        conn.execute(insert(discussion_comment_edits), [
            {"event_id": e.id, "discussion_id": ids[1], "author_id": e.author_id, "raw": "earlier",
             "html": "<p>earlier</p>", "created_at": base} for e in edited])
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()


def _timed(client: httpx.Client, urls: list[str], requests: int) -> dict[str, Any]:
    for url in urls:  # warm-up
        client.get(url).raise_for_status()
    latencies = []
    for i in range(requests):
        t0 = time.perf_counter()
        r = client.get(urls[i % len(urls)])
        latencies.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    latencies.sort()
    return {"requests": requests, "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2), "max_ms": round(latencies[-1], 2)}


def measure(url: str, threads: int, events: int, requests: int) -> dict[str, Any]:
    api = f"{url}/api/models/{REPO}/discussions"
    pages = max(1, (threads + 49) // 50)
    listing = [f"{api}?p={p}" for p in range(pages)] + [f"{api}?p=0&status=open&type=pull_request"]
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as client:
        details = client.get(f"{api}/1?diff=1").json()
        assert len(details["events"]) == events, len(details["events"])
        assert client.get(f"{api}?p=0").json()["count"] == threads
        return {"list": _timed(client, listing, requests), "details": _timed(client, [f"{api}/1?diff=1"], requests)}


def run_backend(backend: str, threads: int, events: int, requests: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-discussions-"))
    ctx = postgres_database() if backend == "postgresql" else None
    url = ctx.__enter__() if ctx is not None else None
    try:
        live = LiveServer(data_dir, url, backend)
        live.cli("db", "upgrade")
        live.seed(SEED)
        live.start()
        try:
            httpx.post(f"{live.url}/api/repos/create", json={"name": "discussed", "organization": "acme"},
                       headers={"Authorization": f"Bearer {TOKENS['alice']}"}).raise_for_status()
            t0 = time.perf_counter()
            generate(url or f"sqlite:///{data_dir / 'modelyard.db'}", threads, events)
            generated = time.perf_counter() - t0
            result = measure(live.url, threads, events, requests)
        finally:
            live.stop()
        result.update({"backend": backend, "threads": threads, "events": events, "generate_s": round(generated, 1)})
        return result
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="100 threads, 50 events, 30 requests per backend")
    args = parser.parse_args()
    if args.quick:
        args.threads, args.events, args.requests = 100, 50, 30
    results = [run_backend(b, args.threads, args.events, args.requests) for b in ("sqlite", "postgresql")]
    for r in results:
        print(f"{r['backend']:>10}: list p99 {r['list']['p99_ms']} ms, details p99 {r['details']['p99_ms']} ms "
              f"({'meets' if _ok(r) else 'MISSES'} p99 < {TARGET_P99_MS} ms)", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"bench": "discussions", "quick": args.quick, "results": results}, indent=2))


def _ok(r: dict[str, Any]) -> bool:
    return bool(r["list"]["p99_ms"] < TARGET_P99_MS and r["details"]["p99_ms"] < TARGET_P99_MS)


def met(result: dict[str, Any]) -> bool:
    return all(_ok(r) for r in result["results"])


def headline(result: dict[str, Any]) -> str:
    return "; ".join(f"{r['backend']}: list p99 {r['list']['p99_ms']} ms, details p99 {r['details']['p99_ms']} ms"
                     for r in result["results"])


def markdown(result: dict[str, Any]) -> str:
    lines = ["| backend | threads | events in the thread | request | p50 ms | p99 ms | max ms | target p99 < 50 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        for what, label in (("list", "list a page of 50"), ("details", "details with diff=1")):
            m = r[what]
            lines.append(f"| {r['backend']} | {r['threads']:,} | {r['events']} | {label} | {m['p50_ms']} | "
                         f"{m['p99_ms']} | {m['max_ms']} | {'met' if m['p99_ms'] < TARGET_P99_MS else '**not met**'} |")
    return "\n".join(lines)


NOTES = """\
**How.** A page of threads is two statements (the count and the page, authors joined in);
a thread is three after the repo look-up (the thread, its events with their authors, the
earlier versions of its comments; a pull request adds its refs), whatever their sizes
(`tests/integration/test_discussion_query_counts.py`). Comments are rendered to sanitized HTML
once, when written, and stored beside their raw text."""


if __name__ == "__main__":
    main()
