"""Access requests to gated repos: one row per (repo, user), its status moved by the repo's writers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelyard.catalog.tables import accounts, repo_access_requests

STATUSES = ("pending", "accepted", "rejected")


@dataclass(frozen=True)
class AccessRequest:
    id: int
    user_id: int
    user: str
    fullname: str
    email: str | None
    status: str
    fields: dict[str, Any] | None
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime


def _columns() -> Any:
    r = repo_access_requests.c
    return select(
        r.id, r.user_id, accounts.c.name, accounts.c.fullname, accounts.c.email, r.status, r.fields,
        r.rejection_reason, r.created_at, r.updated_at,
    ).join(accounts, accounts.c.id == r.user_id)


def _request(row: Any) -> AccessRequest:
    return AccessRequest(
        id=row.id, user_id=row.user_id, user=row.name, fullname=row.fullname, email=row.email, status=row.status,
        fields=json.loads(row.fields) if row.fields else None, rejection_reason=row.rejection_reason,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def get(conn: Connection, repo_pk: int, user_id: int) -> AccessRequest | None:
    r = repo_access_requests.c
    row = conn.execute(_columns().where(r.repo_id == repo_pk, r.user_id == user_id)).first()
    return None if row is None else _request(row)


def get_by_id(conn: Connection, repo_pk: int, request_id: int) -> AccessRequest | None:
    r = repo_access_requests.c
    row = conn.execute(_columns().where(r.repo_id == repo_pk, r.id == request_id)).first()
    return None if row is None else _request(row)


def is_accepted(conn: Connection, repo_pk: int, user_id: int) -> bool:
    r = repo_access_requests.c
    found = conn.execute(
        select(r.id).where(r.repo_id == repo_pk, r.user_id == user_id, r.status == "accepted")
    ).first()
    return found is not None


def listing(conn: Connection, repo_pk: int, status: str, offset: int, limit: int) -> list[AccessRequest]:
    """One page of a status's requests, oldest first (``limit`` + 1 tells whether more follow)."""
    r = repo_access_requests.c
    stmt = _columns().where(r.repo_id == repo_pk, r.status == status).order_by(r.id).offset(offset).limit(limit)
    return [_request(row) for row in conn.execute(stmt)]


def add(
    conn: Connection, repo_pk: int, user_id: int, status: str, fields: dict[str, Any] | None, now: datetime
) -> int:
    stmt = insert(repo_access_requests).returning(repo_access_requests.c.id)
    return int(conn.execute(stmt, {
        "repo_id": repo_pk, "user_id": user_id, "status": status,
        "fields": json.dumps(fields) if fields else None, "created_at": now, "updated_at": now,
    }).scalar_one())


def set_status(
    conn: Connection, request_id: int, old: str, new: str, reason: str | None, now: datetime
) -> bool:
    """Compare-and-set: False when another writer moved the request first."""
    r = repo_access_requests.c
    result = conn.execute(
        update(repo_access_requests).where(r.id == request_id, r.status == old)
        .values(status=new, rejection_reason=reason, updated_at=now)
    )
    return result.rowcount == 1
