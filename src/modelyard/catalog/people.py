"""Follows, members and the counts of a user's or an organization's overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import accounts, discussions, follows, likes, members, repos
from modelyard.catalog.visibility import Visibility


@dataclass(frozen=True)
class Person:
    """An account as listings show it."""

    id: int
    name: str
    fullname: str
    kind: str
    role: str | None = None  # in member listings


def follow(db: Database, conn: Connection, follower_id: int, followed_id: int, now: datetime) -> bool:
    """False if it was followed already."""
    stmt = db.insert_ignore(follows).returning(follows.c.followed_id)
    row = conn.execute(stmt, {"follower_id": follower_id, "followed_id": followed_id, "created_at": now}).first()
    return row is not None


def unfollow(conn: Connection, follower_id: int, followed_id: int) -> bool:
    result = conn.execute(
        delete(follows).where(follows.c.follower_id == follower_id, follows.c.followed_id == followed_id)
    )
    return result.rowcount == 1


def is_following(conn: Connection, follower_id: int, followed_id: int) -> bool:
    return conn.execute(
        select(follows.c.created_at).where(follows.c.follower_id == follower_id, follows.c.followed_id == followed_id)
    ).first() is not None


def followers(conn: Connection, account_id: int) -> list[Person]:
    """Who follows the account, most recent first."""
    rows = conn.execute(
        select(accounts.c.id, accounts.c.name, accounts.c.fullname, accounts.c.kind)
        .join(follows, follows.c.follower_id == accounts.c.id)
        .where(follows.c.followed_id == account_id)
        .order_by(follows.c.created_at.desc(), accounts.c.name_lower)
    )
    return [Person(r.id, r.name, r.fullname, r.kind) for r in rows]


def following(conn: Connection, account_id: int, kind: str | None = "user") -> list[Person]:
    """Whom the account follows (users only by default, as ``list_user_following`` says)."""
    stmt = (
        select(accounts.c.id, accounts.c.name, accounts.c.fullname, accounts.c.kind)
        .join(follows, follows.c.followed_id == accounts.c.id)
        .where(follows.c.follower_id == account_id)
        .order_by(follows.c.created_at.desc(), accounts.c.name_lower)
    )
    if kind is not None:
        stmt = stmt.where(accounts.c.kind == kind)
    return [Person(r.id, r.name, r.fullname, r.kind) for r in conn.execute(stmt)]


def count_followers(conn: Connection, account_id: int) -> int:
    return int(conn.execute(
        select(func.count()).select_from(follows).where(follows.c.followed_id == account_id)
    ).scalar_one())


def count_following(conn: Connection, account_id: int) -> int:
    return int(conn.execute(
        select(func.count()).select_from(follows).join(accounts, accounts.c.id == follows.c.followed_id)
        .where(follows.c.follower_id == account_id, accounts.c.kind == "user")
    ).scalar_one())


def org_members(conn: Connection, org_id: int) -> list[Person]:
    rows = conn.execute(
        select(accounts.c.id, accounts.c.name, accounts.c.fullname, accounts.c.kind, members.c.role)
        .join(members, members.c.user_id == accounts.c.id)
        .where(members.c.org_id == org_id)
        .order_by(accounts.c.name_lower)
    )
    return [Person(r.id, r.name, r.fullname, r.kind, r.role) for r in rows]


def count_members(conn: Connection, org_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(members).where(members.c.org_id == org_id)).scalar_one())


def repo_counts(conn: Connection, owner_id: int, visible: Visibility) -> dict[str, int]:
    """``type -> number`` of the owner's repos the viewer may see."""
    stmt = (select(repos.c.type, func.count()).where(repos.c.owner_id == owner_id, visible.repos())
            .group_by(repos.c.type))
    return {t: int(n) for t, n in conn.execute(stmt).tuples()}


def count_likes(conn: Connection, account_id: int, visible: Visibility) -> int:
    """Likes the account gave to repos the viewer may see."""
    return int(conn.execute(
        select(func.count()).select_from(likes).join(repos, repos.c.id == likes.c.repo_id)
        .where(likes.c.account_id == account_id, visible.repos())
    ).scalar_one())


def count_discussions(conn: Connection, account_id: int, visible: Visibility) -> int:
    """Discussions and pull requests the account opened in repos the viewer may see."""
    return int(conn.execute(
        select(func.count()).select_from(discussions).join(repos, repos.c.id == discussions.c.repo_id)
        .where(discussions.c.author_id == account_id, visible.repos())
    ).scalar_one())


OwnedRepo = tuple[str, str, str, datetime, bool, int]


def owned_repos(conn: Connection, owner_id: int, visible: Visibility, offset: int,
                size: int) -> tuple[list[OwnedRepo], int]:
    """A page of the owner's repos the viewer may see, largest first, as ``(type, namespace, name,
    last_modified, private, used_storage)``; and the storage all the owner's repos use."""
    rows = conn.execute(
        select(repos.c.type, repos.c.namespace, repos.c.name, repos.c.last_modified, repos.c.private,
               repos.c.used_storage)
        .where(repos.c.owner_id == owner_id, visible.repos())
        .order_by(repos.c.used_storage.desc(), repos.c.id)
        .offset(offset).limit(size)
    ).tuples().all()
    total = conn.execute(
        select(func.coalesce(func.sum(repos.c.used_storage), 0)).where(repos.c.owner_id == owner_id)
    ).scalar_one()
    return [(t, ns, n, lm, bool(p), int(s)) for t, ns, n, lm, p, s in rows], int(total)
