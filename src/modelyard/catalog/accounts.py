"""Users, organisations, memberships and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, select, update

from modelyard.catalog.tables import accounts, members, repos, tokens


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    kind: str
    fullname: str
    email: str | None
    is_admin: bool
    default_private: bool
    created_at: datetime


@dataclass(frozen=True)
class Token:
    id: int
    account_id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: str | None = None  # JSON (fine-grained tokens)
    expires_at: datetime | None = None


def _account(row: object) -> Account:
    return Account(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        kind=row.kind,  # type: ignore[attr-defined]
        fullname=row.fullname,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        is_admin=bool(row.is_admin),  # type: ignore[attr-defined]
        default_private=bool(row.default_private),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )


def by_name(conn: Connection, name: str) -> Account | None:
    if "\x00" in name:  # never stored; PostgreSQL refuses NUL in a query
        return None
    row = conn.execute(select(accounts).where(accounts.c.name_lower == name.lower())).first()
    return None if row is None else _account(row)


def by_id(conn: Connection, account_id: int) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return None if row is None else _account(row)


def create(
    conn: Connection,
    *,
    name: str,
    kind: str,
    fullname: str,
    email: str | None,
    is_admin: bool,
    default_private: bool,
    now: datetime,
) -> Account:
    result = conn.execute(
        insert(accounts).values(
            name=name,
            name_lower=name.lower(),
            kind=kind,
            fullname=fullname,
            email=email,
            is_admin=is_admin,
            default_private=default_private,
            created_at=now,
        )
    )
    account = by_id(conn, int(result.inserted_primary_key[0]))  # type: ignore[index]
    assert account is not None
    return account


def update_account(conn: Connection, account_id: int, **values: object) -> None:
    conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))


def delete_empty_org(conn: Connection, org_id: int) -> None:
    """Remove an organization that has no members and owns no repo (one that an import created
    for a namespace and then gave up: services/bundles.py)."""
    conn.execute(delete(accounts).where(
        accounts.c.id == org_id, accounts.c.kind == "org",
        ~exists().where(members.c.org_id == org_id), ~exists().where(repos.c.owner_id == org_id),
    ))


def org_roles(conn: Connection, user_id: int) -> dict[int, tuple[str, str]]:
    """``org id -> (org name, role)`` for every org the user belongs to."""
    rows = conn.execute(
        select(members.c.org_id, members.c.role, accounts.c.name)
        .join(accounts, accounts.c.id == members.c.org_id)
        .where(members.c.user_id == user_id)
    )
    return {r.org_id: (r.name, r.role) for r in rows}


def memberships(conn: Connection, user_id: int) -> list[tuple[int, str, str, str]]:
    """``(org id, org name, org fullname, role)`` for every org the user belongs to, by id."""
    rows = conn.execute(
        select(members.c.org_id, members.c.role, accounts.c.name, accounts.c.fullname)
        .join(accounts, accounts.c.id == members.c.org_id)
        .where(members.c.user_id == user_id)
        .order_by(members.c.org_id)
    )
    return [(r.org_id, r.name, r.fullname, r.role) for r in rows]


def user_names(conn: Connection, names_lower: list[str], emails: list[str]) -> list[tuple[str, str | None]]:
    """``(name, email)`` of the users named (lowercase) or with one of ``emails``."""
    if not names_lower and not emails:
        return []
    rows = conn.execute(
        select(accounts.c.name, accounts.c.email).where(
            accounts.c.kind == "user",
            accounts.c.name_lower.in_(names_lower) | accounts.c.email.in_(emails),
        )
    )
    return [(r.name, r.email) for r in rows]


def set_member(conn: Connection, org_id: int, user_id: int, role: str) -> None:
    existing = conn.execute(
        select(members.c.role).where(members.c.org_id == org_id, members.c.user_id == user_id)
    ).first()
    if existing is None:
        conn.execute(insert(members).values(org_id=org_id, user_id=user_id, role=role))
    else:
        conn.execute(
            update(members)
            .where(members.c.org_id == org_id, members.c.user_id == user_id)
            .values(role=role)
        )


def remove_member(conn: Connection, org_id: int, user_id: int) -> None:
    conn.execute(delete(members).where(members.c.org_id == org_id, members.c.user_id == user_id))


def lock(conn: Connection, account_id: int) -> None:
    """Hold the account's row until the transaction ends (membership changes of one org take
    turns: two admins demoting each other cannot leave it with none)."""
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())


def lock_namespace(conn: Connection, account_id: int) -> None:
    """Take turns with every other creation of a name in this namespace (PostgreSQL; SQLite has
    one writer anyway): the second sees the first's repo and answers 409 instead of failing on
    the unique key. ``FOR NO KEY UPDATE``: rows inserted with a key pointing at the account do not
    wait for it."""
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update(key_share=True))


def token_by_hash(conn: Connection, token_hash: str) -> Token | None:
    row = conn.execute(select(tokens).where(tokens.c.token_hash == token_hash)).first()
    if row is None:
        return None
    return Token(row.id, row.account_id, row.name, row.role, row.created_at, row.last_used_at, row.revoked_at,
                 row.scopes, row.expires_at)


def token_with_account(conn: Connection, token_hash: str) -> tuple[Token, Account] | None:
    """A token and its account in one query (every authenticated request asks this)."""
    return _token_and_account(conn.execute(_TOKEN_WITH_ACCOUNT, {"token_hash": token_hash}).first())


def token_with_account_by_id(conn: Connection, token_id: int) -> tuple[Token, Account] | None:
    """The same, by the token's id (what signed URLs and Xet tokens carry)."""
    return _token_and_account(conn.execute(_TOKEN_WITH_ACCOUNT_BY_ID, {"token_id": token_id}).first())


def _token_and_account(row: Any) -> tuple[Token, Account] | None:
    if row is None:
        return None
    token = Token(row.id, row.account_id, row.name, row.role, row.created_at, row.last_used_at, row.revoked_at,
                  row.scopes, row.expires_at)
    account = Account(row.account_id, row.account_name, row.kind, row.fullname, row.email, bool(row.is_admin),
                      bool(row.default_private), row.account_created_at)
    return token, account


_TOKEN_AND_ACCOUNT = (
    select(tokens, accounts.c.name.label("account_name"), accounts.c.kind, accounts.c.fullname,
           accounts.c.email, accounts.c.is_admin, accounts.c.default_private,
           accounts.c.created_at.label("account_created_at"))
    .join(accounts, accounts.c.id == tokens.c.account_id)
)
_TOKEN_WITH_ACCOUNT = _TOKEN_AND_ACCOUNT.where(tokens.c.token_hash == bindparam("token_hash"))
_TOKEN_WITH_ACCOUNT_BY_ID = _TOKEN_AND_ACCOUNT.where(tokens.c.id == bindparam("token_id"))


def add_token(
    conn: Connection, account_id: int, name: str, token_hash: str, role: str, now: datetime,
    scopes: str | None = None, expires_at: datetime | None = None,
) -> None:
    conn.execute(
        insert(tokens).values(
            account_id=account_id, name=name, token_hash=token_hash, role=role, created_at=now, scopes=scopes,
            expires_at=expires_at,
        )
    )


def revoke_tokens(conn: Connection, account_id: int, name: str | None, now: datetime) -> int:
    stmt = update(tokens).where(tokens.c.account_id == account_id, tokens.c.revoked_at.is_(None))
    if name is not None:
        stmt = stmt.where(tokens.c.name == name)
    return conn.execute(stmt.values(revoked_at=now)).rowcount


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=now))


def tokens_of(conn: Connection, account_id: int) -> list[Token]:
    """An account's live tokens (not revoked), oldest first."""
    rows = conn.execute(
        select(tokens).where(tokens.c.account_id == account_id, tokens.c.revoked_at.is_(None)).order_by(tokens.c.id)
    )
    return [Token(r.id, r.account_id, r.name, r.role, r.created_at, r.last_used_at, r.revoked_at, r.scopes,
                  r.expires_at) for r in rows]
