"""Scan results of file contents (``file_scans``), shared by every repo holding the content."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.catalog.tables import file_scans, lfs_objects, xet_files

BATCH = 500


@dataclass(frozen=True)
class Scan:
    key: str
    status: str  # queued | safe | caution | unsafe | error
    report: dict[str, Any] | None
    rules: str | None
    path: str
    size: int
    sha256: str | None
    oid: str | None
    xet_hash: str | None
    scanned_at: datetime | None


def _scan(row: Any) -> Scan:
    return Scan(row.key, row.status, None if row.report is None else json.loads(row.report), row.rules, row.path,
                row.size, row.sha256, row.oid, row.xet_hash, row.scanned_at)


def get(conn: Connection, key: str) -> Scan | None:
    row = conn.execute(select(file_scans).where(file_scans.c.key == key)).first()
    return None if row is None else _scan(row)


def get_many(conn: Connection, keys: Iterable[str]) -> dict[str, Scan]:
    wanted = sorted(set(keys))
    found: dict[str, Scan] = {}
    for i in range(0, len(wanted), BATCH):
        for row in conn.execute(select(file_scans).where(file_scans.c.key.in_(wanted[i : i + BATCH]))):
            found[row.key] = _scan(row)
    return found


def queue(conn: Connection, items: list[dict[str, Any]], now: datetime, lease: timedelta) -> list[str]:
    """Queue the scans of contents not known yet (``items``: key, path, size, sha256, oid, xet_hash); the
    keys that were queued by this call."""
    queued: list[str] = []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for i in range(0, len(items), BATCH):
        rows = [dict(item, status="queued", queued_at=now, attempts=0, lease_until=now + lease)
                for item in items[i : i + BATCH]]
        stmt = dialect.insert(file_scans).on_conflict_do_nothing().returning(file_scans.c.key)
        queued.extend(row.key for row in conn.execute(stmt, rows) if row is not None)
    return queued


def requeue(conn: Connection, keys: list[str], now: datetime, lease: timedelta) -> None:
    """Scan these contents again (their report stays shown until the new one replaces it)."""
    for i in range(0, len(keys), BATCH):
        conn.execute(update(file_scans).where(file_scans.c.key.in_(keys[i : i + BATCH])).values(
            status="queued", lease_until=now + lease, attempts=0))


def claim(conn: Connection, key: str, now: datetime, lease: timedelta) -> Scan | None:
    """Take a queued scan for ``lease`` (None if it is not queued any more)."""
    result = conn.execute(update(file_scans).where(file_scans.c.key == key, file_scans.c.status == "queued").values(
        attempts=file_scans.c.attempts + 1, lease_until=now + lease))
    return get(conn, key) if result.rowcount else None


def finish(conn: Connection, key: str, status: str, report: dict[str, Any], rules: str, now: datetime) -> None:
    conn.execute(update(file_scans).where(file_scans.c.key == key).values(
        status=status, report=json.dumps(report), rules=rules, scanned_at=now, lease_until=None))


def claim_stale(conn: Connection, now: datetime, lease: timedelta, limit: int = 100) -> list[str]:
    """Queued scans whose job was lost (their lease passed): leased again, to be enqueued."""
    keys = [row.key for row in conn.execute(
        select(file_scans.c.key).where(file_scans.c.status == "queued", file_scans.c.lease_until < now)
        .order_by(file_scans.c.lease_until).limit(limit))]
    if keys:
        conn.execute(update(file_scans).where(file_scans.c.key.in_(keys)).values(lease_until=now + lease))
    return keys


def outdated(conn: Connection, rules: str, everything: bool = False) -> list[str]:
    """The keys scanned under other rules than ``rules`` (or every key), for a rescan."""
    stmt = select(file_scans.c.key).where(file_scans.c.status != "queued")
    if not everything:
        stmt = stmt.where(or_(file_scans.c.rules.is_(None), file_scans.c.rules != rules))
    return [row.key for row in conn.execute(stmt.order_by(file_scans.c.key))]


def forget_unheld(conn: Connection) -> int:
    """Drop the results of large files whose bytes nothing holds any more (gc deleted their LFS
    object and Xet file): a later upload of the same bytes is scanned afresh. How many went."""
    held = or_(
        exists().where(lfs_objects.c.sha256 == file_scans.c.sha256),
        exists().where(xet_files.c.sha256 == file_scans.c.sha256),
    )
    return int(conn.execute(delete(file_scans).where(file_scans.c.sha256.is_not(None), ~held)).rowcount)
