"""Events: what happened to a repo, recorded with the change itself; the jobs that follow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from modelyard.catalog.tables import events


@dataclass(frozen=True)
class Event:
    id: int
    repo_id: int
    kind: str  # ref | repo | ...
    ref: str | None
    old: str | None
    new: str | None
    actor_id: int | None
    created_at: datetime
    done_at: datetime | None
    attempts: int
    data: dict[str, Any] | None = None


def record(
    conn: Connection, repo_id: int, kind: str, now: datetime, ref: str | None = None, old: str | None = None,
    new: str | None = None, actor_id: int | None = None, retry_after: timedelta = timedelta(seconds=60),
    data: dict[str, Any] | None = None,
) -> int:
    """Record an event in the caller's transaction; the sweeper may enqueue it after ``retry_after``
    (the writer enqueues it at once once its transaction has committed)."""
    result = conn.execute(insert(events).values(
        repo_id=repo_id, kind=kind, ref=ref, old=old, new=new, actor_id=actor_id, created_at=now,
        data=None if data is None else json.dumps(data), attempts=0, next_attempt_at=now + retry_after,
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(select(events).where(events.c.id == event_id)).first()
    if row is None:
        return None
    return Event(row.id, row.repo_id, row.kind, row.ref, row.old, row.new, row.actor_id, row.created_at,
                 row.done_at, row.attempts, None if row.data is None else json.loads(row.data))


def started(conn: Connection, event_id: int, now: datetime, retry_after: timedelta) -> None:
    """An attempt begins: counted, and the sweeper leaves the event alone for ``retry_after``."""
    conn.execute(update(events).where(events.c.id == event_id).values(
        attempts=events.c.attempts + 1, next_attempt_at=now + retry_after))


def done(conn: Connection, event_id: int, now: datetime) -> None:
    conn.execute(update(events).where(events.c.id == event_id, events.c.done_at.is_(None)).values(done_at=now))


def claim_stale(conn: Connection, now: datetime, retry_after: timedelta, limit: int = 100) -> list[int]:
    """Events not done whose retry time has come; their retry time moves on, so one sweeper
    (on any server) re-enqueues each of them."""
    ids = [r.id for r in conn.execute(
        select(events.c.id).where(events.c.done_at.is_(None), events.c.next_attempt_at <= now)
        .order_by(events.c.id).limit(limit)
    )]
    claimed = []
    for event_id in ids:
        result = conn.execute(update(events).where(
            events.c.id == event_id, events.c.done_at.is_(None), events.c.next_attempt_at <= now,
        ).values(next_attempt_at=now + retry_after))
        if result.rowcount:
            claimed.append(event_id)
    return claimed



def pending_for_repo(conn: Connection, repo_id: int, limit: int | None = None) -> list[Event]:
    """A repo's events whose job has not finished, oldest first."""
    rows = conn.execute(select(events).where(events.c.repo_id == repo_id, events.c.done_at.is_(None))
                        .order_by(events.c.id).limit(limit)).all()
    return [Event(row.id, row.repo_id, row.kind, row.ref, row.old, row.new, row.actor_id, row.created_at,
                  row.done_at, row.attempts, None if row.data is None else json.loads(row.data)) for row in rows]


def done_many(conn: Connection, event_ids: list[int], now: datetime) -> None:
    if event_ids:
        conn.execute(update(events).where(events.c.id.in_(event_ids), events.c.done_at.is_(None)).values(done_at=now))


def pending_of_kind(conn: Connection, repo_id: int, kind: str) -> bool:
    """Whether the repo has an event of ``kind`` not done yet."""
    row = conn.execute(select(events.c.id).where(
        events.c.repo_id == repo_id, events.c.kind == kind, events.c.done_at.is_(None)).limit(1)).first()
    return row is not None


def pending_count(conn: Connection) -> int:
    """Events whose job has not finished (the work queued behind the hub's changes)."""
    return int(conn.execute(select(func.count()).select_from(events).where(events.c.done_at.is_(None))).scalar_one())
