"""Whether this server can do its work (``/readyz``), and the shared facts metrics report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from modelyard.catalog import events as events_q
from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import xet as xet_q
from modelyard.services.hub import Hub

#: A key no blob has (keys are ``lfs/…``, ``xet/…``, ``uploads/…``): asking for it proves the
#: store answers, without reading or writing anything.
PROBE_KEY = "readyz/probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def readiness(hub: Hub) -> list[Check]:
    """Ask the database and the blob store one cheap question each; never raises."""
    return [_timed("database", lambda: _database(hub)), _timed("storage", lambda: _storage(hub))]


def _database(hub: Hub) -> None:
    with hub.db.read() as conn:
        conn.execute(text("SELECT 1")).one()


def _storage(hub: Hub) -> None:
    hub.blobs.exists(PROBE_KEY)


def _timed(name: str, probe: Callable[[], None]) -> Check:
    started = time.monotonic()
    try:
        probe()
    except Exception as exc:  # the check's whole point: report what failed, do not fail
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - started)
    return Check(name, True, "ok", time.monotonic() - started)


@dataclass(frozen=True)
class SharedFacts:
    events_pending: int
    queue_depth: int
    storage: dict[str, int]


def shared_facts(hub: Hub) -> SharedFacts:
    """What every server sees alike: the work pending and the bytes stored."""
    with hub.db.read() as conn:
        pending = events_q.pending_count(conn)
        _count, lfs_bytes = lfs_q.totals(conn)
        xet = xet_q.totals(conn)
    return SharedFacts(
        events_pending=pending,
        queue_depth=int(hub.jobs.queue.pending_count()),
        storage={"lfs": lfs_bytes, "xorbs": xet["xorb_bytes"], "shards": xet["shard_bytes"]},
    )
