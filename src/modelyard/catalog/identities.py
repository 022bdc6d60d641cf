"""Accounts' identities at an OpenID provider (``external_identities``): issuer and subject."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from modelyard.catalog.tables import external_identities


def account_for(conn: Connection, issuer: str, subject: str) -> int | None:
    row = conn.execute(select(external_identities.c.account_id).where(
        external_identities.c.issuer == issuer, external_identities.c.subject == subject)).first()
    return None if row is None else int(row.account_id)


def link(conn: Connection, issuer: str, subject: str, account_id: int, now: datetime) -> None:
    conn.execute(insert(external_identities).values(issuer=issuer, subject=subject, account_id=account_id,
                                                    created_at=now))
