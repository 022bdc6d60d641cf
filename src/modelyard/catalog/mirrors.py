"""Mirrored repos' sync state and pinned commits (services/mirror.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from modelyard.catalog.database import Database
from modelyard.catalog.repos import repo_key
from modelyard.catalog.tables import mirror_pins, mirror_repos, repos


@dataclass(frozen=True)
class Mirror:
    repo_pk: int
    repo_type: str
    repo_id: str  # the local id
    upstream_type: str
    upstream_id: str
    refs_checked_at: datetime | None
    last_error: str | None
    revisions: list[str] | None  # whose files every sync fetches; None: files on demand only


_COLUMNS = (repos.c.id, repos.c.type, repos.c.namespace, repos.c.name, mirror_repos.c.upstream_type,
            mirror_repos.c.upstream_id, mirror_repos.c.refs_checked_at, mirror_repos.c.last_error,
            mirror_repos.c.revisions)
_JOINED = select(*_COLUMNS).select_from(repos.join(mirror_repos, mirror_repos.c.repo_id == repos.c.id))
_BY_PK = _JOINED.where(repos.c.id == bindparam("pk"))
_BY_KEY = _JOINED.where(repos.c.type == bindparam("type"), repos.c.key == bindparam("key"))


def _mirror(row: object) -> Mirror:
    r = row
    return Mirror(r.id, r.type, f"{r.namespace}/{r.name}", r.upstream_type, r.upstream_id,  # type: ignore[attr-defined]
                  r.refs_checked_at, r.last_error,  # type: ignore[attr-defined]
                  json.loads(r.revisions) if r.revisions else None)  # type: ignore[attr-defined]


def get(conn: Connection, repo_type: str, namespace: str, name: str) -> Mirror | None:
    if "\x00" in namespace or "\x00" in name:
        return None
    row = conn.execute(_BY_KEY, {"type": repo_type, "key": repo_key(namespace, name)}).first()
    return None if row is None else _mirror(row)


def by_pk(conn: Connection, repo_pk: int) -> Mirror | None:
    row = conn.execute(_BY_PK, {"pk": repo_pk}).first()
    return None if row is None else _mirror(row)


def track(conn: Connection, repo_pk: int, revisions: list[str] | None) -> None:
    conn.execute(update(mirror_repos).where(mirror_repos.c.repo_id == repo_pk)
                 .values(revisions=json.dumps(revisions) if revisions is not None else None))


def all_mirrors(conn: Connection) -> list[Mirror]:
    return [_mirror(r) for r in conn.execute(_JOINED.order_by(repos.c.id))]


def add(conn: Connection, repo_pk: int, upstream_type: str, upstream_id: str, now: datetime) -> None:
    conn.execute(mirror_repos.insert().values(repo_id=repo_pk, upstream_type=upstream_type, upstream_id=upstream_id,
                                              refs_checked_at=now))


def checked(conn: Connection, repo_pk: int, now: datetime, error: str | None) -> None:
    conn.execute(update(mirror_repos).where(mirror_repos.c.repo_id == repo_pk)
                 .values(refs_checked_at=now, last_error=error))


def pin(db: Database, conn: Connection, repo_pk: int, oids: list[str]) -> None:
    if oids:
        conn.execute(db.insert_ignore(mirror_pins), [{"repo_id": repo_pk, "oid": oid} for oid in oids])


def pins(conn: Connection, repo_pk: int) -> set[str]:
    return {r.oid for r in conn.execute(select(mirror_pins.c.oid).where(mirror_pins.c.repo_id == repo_pk))}
