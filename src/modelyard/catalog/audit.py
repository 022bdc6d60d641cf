"""The audit log's rows (``audit_events``): appended, read, never changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from modelyard.catalog.tables import audit_events


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    action: str
    owner_id: int | None
    actor_id: int | None
    actor: str
    subject: str
    details: dict[str, Any]
    address: str


def append(conn: Connection, at: datetime, action: str, owner_id: int | None, actor_id: int | None, actor: str,
           subject: str, details: dict[str, Any], address: str) -> None:
    conn.execute(insert(audit_events).values(
        at=at, action=action, owner_id=owner_id, actor_id=actor_id, actor=actor, subject=subject,
        details=json.dumps(details, sort_keys=True), address=address))


def read(conn: Connection, owner_id: int | None = None, actions: list[str] | None = None, actor: str | None = None,
         since: datetime | None = None, before_id: int | None = None, limit: int = 100,
         everyone: bool = False) -> list[AuditEvent]:
    """Newest first: one account's entries (or, with ``everyone``, all of them)."""
    stmt = select(audit_events)
    if not everyone:
        stmt = stmt.where(audit_events.c.owner_id == owner_id)
    if actions:
        stmt = stmt.where(audit_events.c.action.in_(actions))
    if actor:
        stmt = stmt.where(audit_events.c.actor == actor)
    if since is not None:
        stmt = stmt.where(audit_events.c.at >= since)
    if before_id is not None:
        stmt = stmt.where(audit_events.c.id < before_id)
    rows = conn.execute(stmt.order_by(audit_events.c.id.desc()).limit(limit))
    return [AuditEvent(r.id, r.at, r.action, r.owner_id, r.actor_id, r.actor, r.subject, json.loads(r.details),
                       r.address) for r in rows]
