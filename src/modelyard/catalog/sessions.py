"""Browser sessions and account passwords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from modelyard.catalog.accounts import Account, _account
from modelyard.catalog.tables import accounts, web_sessions


@dataclass(frozen=True)
class Session:
    id: int
    account_id: int
    csrf: str
    created_at: datetime
    expires_at: datetime


def add(conn: Connection, token_hash: str, account_id: int, csrf: str, now: datetime, expires_at: datetime) -> None:
    conn.execute(insert(web_sessions).values(token_hash=token_hash, account_id=account_id, csrf=csrf,
                                             created_at=now, expires_at=expires_at))


def with_account(conn: Connection, token_hash: str) -> tuple[Session, Account] | None:
    row = conn.execute(
        select(accounts, web_sessions.c.id.label("session_id"), web_sessions.c.csrf,
               web_sessions.c.created_at.label("session_created_at"), web_sessions.c.expires_at)
        .join(accounts, accounts.c.id == web_sessions.c.account_id)
        .where(web_sessions.c.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    session = Session(row.session_id, row.id, row.csrf, row.session_created_at, row.expires_at)
    return session, _account(row)


def remove(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


def remove_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now)).rowcount


def remove_all(conn: Connection, account_id: int) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.account_id == account_id))


def password_hash(conn: Connection, account_id: int) -> str | None:
    value = conn.execute(select(accounts.c.password_hash).where(accounts.c.id == account_id)).scalar()
    return None if value is None else str(value)


def set_password_hash(conn: Connection, account_id: int, hashed: str) -> None:
    conn.execute(update(accounts).where(accounts.c.id == account_id).values(password_hash=hashed))
