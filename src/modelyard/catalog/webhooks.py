"""Webhooks, what they watch, their deliveries and the log of delivery attempts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.catalog.tables import (
    accounts,
    members,
    resource_group_members,
    webhook_attempts,
    webhook_deliveries,
    webhook_watches,
    webhooks,
)


@dataclass(frozen=True)
class Webhook:
    id: int
    uid: str
    owner_id: int
    url: str
    secret: str | None
    domains: list[str]
    disabled: bool
    watched: list[tuple[str, str]]  # (kind, name)


@dataclass(frozen=True)
class Target:
    """What a sender needs to post to a webhook."""

    id: int
    uid: str
    url: str
    secret: str | None


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    payload: str
    attempts: int
    next_attempt_at: datetime


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True)
class LoggedDelivery:
    id: int
    event_key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    finished_at: datetime | None
    log: list[Attempt]


def _webhooks(conn: Connection, where: Any) -> list[Webhook]:
    rows = conn.execute(select(webhooks).where(where).order_by(webhooks.c.id)).all()
    watched: dict[int, list[tuple[str, str]]] = {r.id: [] for r in rows}
    if rows:
        for w in conn.execute(select(webhook_watches).where(webhook_watches.c.webhook_id.in_(list(watched)))
                              .order_by(webhook_watches.c.kind, webhook_watches.c.name_key)):
            watched[w.webhook_id].append((w.kind, w.name))
    return [Webhook(r.id, r.uid, r.owner_id, r.url, r.secret, json.loads(r.domains), r.disabled, watched[r.id])
            for r in rows]


def list_for_owner(conn: Connection, owner_id: int) -> list[Webhook]:
    return _webhooks(conn, webhooks.c.owner_id == owner_id)


def get(conn: Connection, uid: str, owner_id: int) -> Webhook | None:
    """The webhook ``uid`` if ``owner_id`` owns it (anyone else's is as good as missing)."""
    found = _webhooks(conn, and_(webhooks.c.uid == uid, webhooks.c.owner_id == owner_id))
    return found[0] if found else None


def create(conn: Connection, *, uid: str, owner_id: int, url: str, secret: str | None, domains: list[str],
           watched: list[tuple[str, str]], now: datetime) -> int:
    result = conn.execute(insert(webhooks).values(
        uid=uid, owner_id=owner_id, url=url, secret=secret, domains=json.dumps(domains), disabled=False,
        created_at=now,
    ))
    webhook_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    set_watched(conn, webhook_id, watched)
    return webhook_id


def set_watched(conn: Connection, webhook_id: int, watched: list[tuple[str, str]]) -> None:
    conn.execute(delete(webhook_watches).where(webhook_watches.c.webhook_id == webhook_id))
    rows = {(kind, name.lower()): name for kind, name in watched}
    if rows:
        conn.execute(insert(webhook_watches), [
            {"webhook_id": webhook_id, "kind": kind, "name_key": key, "name": name}
            for (kind, key), name in rows.items()
        ])


def update_webhook(conn: Connection, webhook_id: int, **values: Any) -> None:
    if "domains" in values:
        values["domains"] = json.dumps(values["domains"])
    if values:
        conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))


def delete_webhook(conn: Connection, webhook_id: int) -> None:
    # Its watches, deliveries and their attempts go with it (ON DELETE CASCADE; SQLite enforces
    # foreign keys here, see catalog/database.py), but say so explicitly for clarity and safety.
    ids = select(webhook_deliveries.c.id).where(webhook_deliveries.c.webhook_id == webhook_id)
    conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
    conn.execute(delete(webhook_watches).where(webhook_watches.c.webhook_id == webhook_id))
    conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


# -- fan-out ----------------------------------------------------------------------------------


def matching(conn: Connection, repo_type: str, repo_name: str, owner_name: str, domain: str) -> list[Webhook]:
    """Enabled webhooks watching the repo itself or its owner (a user or an org), in ``domain``."""
    watch = or_(
        and_(webhook_watches.c.kind == repo_type, webhook_watches.c.name_key == repo_name.lower()),
        and_(webhook_watches.c.kind.in_(("user", "org")), webhook_watches.c.name_key == owner_name.lower()),
    )
    ids = select(webhook_watches.c.webhook_id).where(watch)
    found = _webhooks(conn, and_(webhooks.c.id.in_(ids), webhooks.c.disabled.is_(False)))
    return [w for w in found if domain in w.domains]


def readers(conn: Connection, owner_ids: set[int], repo_owner_id: int, group_id: int | None) -> set[int]:
    """Which of ``owner_ids`` may read a private repo of ``repo_owner_id`` in resource group
    ``group_id``: the owner itself, its org's members (of a group's repo: the org's admins and the
    group's members), and site admins (what ``services.auth.can_read`` decides for a principal)."""
    if not owner_ids:
        return set()
    ids = list(owner_ids)
    found = {repo_owner_id} & owner_ids
    found |= {r.id for r in conn.execute(select(accounts.c.id).where(accounts.c.id.in_(ids), accounts.c.is_admin))}
    member = select(members.c.user_id).where(members.c.org_id == repo_owner_id, members.c.user_id.in_(ids))
    if group_id is not None:
        in_group = select(resource_group_members.c.user_id).where(resource_group_members.c.group_id == group_id)
        member = member.where(or_(members.c.role == "admin", members.c.user_id.in_(in_group)))
    found |= {r.user_id for r in conn.execute(member)}
    return found


def _insert_pending(conn: Connection, rows: list[tuple[str, int, str]], now: datetime) -> list[int]:
    """Insert pending deliveries (event key, webhook id, payload JSON), skipping those that exist:
    ``ON CONFLICT DO NOTHING`` on (event, webhook), so two transactions fanning out the same event
    at once (a job run twice, an event job beside its repo's deletion) never clash. The webhook
    ids of the rows made."""
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(webhook_deliveries).on_conflict_do_nothing().returning(webhook_deliveries.c.webhook_id)
    made = conn.execute(stmt, [
        {"webhook_id": wid, "event_key": key, "payload": body, "status": "pending", "attempts": 0,
         "next_attempt_at": now, "lease_until": None, "created_at": now, "finished_at": None}
        for key, wid, body in rows
    ])
    return [int(wid) for wid in made.scalars()]


def add_many(conn: Connection, rows: list[tuple[str, int, str]], now: datetime) -> int:
    """Pending deliveries (event key, webhook id, payload JSON) of several events in one insert,
    leaving out those that exist already (a job run twice); how many were made."""
    return len(_insert_pending(conn, rows, now))


def add_deliveries(conn: Connection, event_key: str, payloads: dict[int, str], now: datetime) -> list[int]:
    """One pending delivery per webhook (id -> payload JSON) for the event, in one insert; the
    webhooks that have one for this event already (a job run twice) are left alone. The ids of
    the webhooks that got one."""
    return _insert_pending(conn, [(event_key, wid, body) for wid, body in payloads.items()], now)


# -- sending ----------------------------------------------------------------------------------

_PENDING = webhook_deliveries.c.status == "pending"


def busy_webhooks(conn: Connection, now: datetime, limit: int = 1000) -> list[int]:
    """Webhooks with a due pending delivery that nobody holds."""
    free = or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now)
    due = webhook_deliveries.c.next_attempt_at <= now
    return [r.webhook_id for r in conn.execute(
        select(webhook_deliveries.c.webhook_id).where(_PENDING, free, due).group_by(webhook_deliveries.c.webhook_id)
        .limit(limit))]


def target(conn: Connection, webhook_id: int) -> Target | None:
    row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
    return None if row is None or row.disabled else Target(row.id, row.uid, row.url, row.secret)


def claim(
    conn: Connection, webhook_id: int, now: datetime, lease: timedelta, limit: int,
) -> tuple[list[Delivery], datetime | None]:
    """The webhook's oldest pending deliveries, in order, up to the first that is not due yet or
    held by another sender; leased to the caller. Also when the next one falls due (None: none)."""
    rows = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id, _PENDING)
                        .order_by(webhook_deliveries.c.id).limit(limit)).all()
    taken: list[Delivery] = []
    for row in rows:
        held = row.lease_until is not None and row.lease_until >= now
        if held or row.next_attempt_at > now:
            return taken, (row.lease_until if held else row.next_attempt_at) if not taken else None
        taken.append(Delivery(row.id, row.webhook_id, row.payload, row.attempts, row.next_attempt_at))
    if taken:
        # Conditional on the rows still being free: of two senders, one takes them.
        result = conn.execute(update(webhook_deliveries).where(
            webhook_deliveries.c.id.in_([d.id for d in taken]), _PENDING,
            or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
        ).values(lease_until=now + lease))
        if result.rowcount != len(taken):
            raise LeaseLostError("another sender claimed these deliveries")
    return taken, None


class LeaseLostError(Exception):
    """Another sender claimed the deliveries first (the caller's transaction is rolled back)."""


def record(conn: Connection, attempts: list[Attempt], outcomes: dict[int, tuple[str, datetime | None]],
           now: datetime) -> None:
    """Log attempts and settle their deliveries: ``outcomes`` maps a delivery to
    (succeeded | failed | pending, next attempt time for pending)."""
    if attempts:  # a webhook deleted meanwhile took its deliveries with it: nothing to log
        alive = {r.id for r in conn.execute(select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.id.in_([a.delivery_id for a in attempts])))}
        attempts = [a for a in attempts if a.delivery_id in alive]
    if attempts:
        conn.execute(insert(webhook_attempts), [
            {"delivery_id": a.delivery_id, "attempt": a.attempt, "started_at": a.started_at,
             "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error} for a in attempts
        ])
    done = [d for d, (status, _) in outcomes.items() if status == "succeeded"]
    if done:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(done)).values(
            status="succeeded", attempts=webhook_deliveries.c.attempts + 1, lease_until=None, finished_at=now))
    for delivery_id, (status, when) in outcomes.items():
        if status == "failed":
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
                status="failed", attempts=webhook_deliveries.c.attempts + 1, lease_until=None, finished_at=now))
        elif status == "pending":
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
                attempts=webhook_deliveries.c.attempts + 1, lease_until=None, next_attempt_at=when))


def release(conn: Connection, delivery_ids: list[int]) -> None:
    """Give back claimed deliveries that were not attempted (they keep their order)."""
    if delivery_ids:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(delivery_ids), _PENDING)
                     .values(lease_until=None))


def renew(conn: Connection, delivery_ids: list[int], until: datetime) -> None:
    """A sender still working through claimed deliveries extends its lease on them."""
    if delivery_ids:
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(delivery_ids), _PENDING)
                     .values(lease_until=until))


def drop_pending(conn: Connection, webhook_id: int, now: datetime) -> None:
    """A disabled webhook's pending deliveries are given up."""
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id, _PENDING)
                 .values(status="failed", lease_until=None, finished_at=now))


# -- the log ----------------------------------------------------------------------------------


def deliveries(conn: Connection, webhook_id: int, offset: int, size: int) -> tuple[list[LoggedDelivery], bool]:
    """A page of the webhook's deliveries, newest first, each with its attempts (oldest first)."""
    rows = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
                        .order_by(webhook_deliveries.c.id.desc()).offset(offset).limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    log: dict[int, list[Attempt]] = {r.id: [] for r in rows}
    if rows:
        for a in conn.execute(select(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(list(log)))
                              .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)):
            log[a.delivery_id].append(Attempt(a.delivery_id, a.attempt, a.started_at, a.status_code, a.latency_ms,
                                              a.error))
    return [LoggedDelivery(r.id, r.event_key, json.loads(r.payload), r.status, r.attempts, r.next_attempt_at,
                           r.created_at, r.finished_at, log[r.id]) for r in rows], more

