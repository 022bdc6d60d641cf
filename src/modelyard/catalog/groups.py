"""Resource groups and their members (rules in services/groups.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from modelyard.catalog.tables import accounts, members, repos, resource_group_members, resource_groups


@dataclass(frozen=True)
class Group:
    id: int
    uid: str
    org_id: int
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class GroupMember:
    user_id: int
    name: str
    fullname: str
    role: str


def _group(row: object) -> Group:
    return Group(row.id, row.uid, row.org_id, row.name, row.description, row.created_at)  # type: ignore[attr-defined]


def create(conn: Connection, org_id: int, name: str, description: str, now: datetime) -> Group:
    uid = secrets.token_hex(12)
    pk = conn.execute(insert(resource_groups).values(
        uid=uid, org_id=org_id, name=name, name_lower=name.lower(), description=description, created_at=now,
    )).inserted_primary_key[0]  # type: ignore[index]
    return Group(int(pk), uid, org_id, name, description, now)


def by_uid(conn: Connection, uid: str) -> Group | None:
    row = conn.execute(select(resource_groups).where(resource_groups.c.uid == uid)).first()
    return None if row is None else _group(row)


def by_id(conn: Connection, group_id: int) -> Group | None:
    row = conn.execute(select(resource_groups).where(resource_groups.c.id == group_id)).first()
    return None if row is None else _group(row)


def by_name(conn: Connection, org_id: int, name: str) -> Group | None:
    row = conn.execute(select(resource_groups).where(
        resource_groups.c.org_id == org_id, resource_groups.c.name_lower == name.lower())).first()
    return None if row is None else _group(row)


def of_org(conn: Connection, org_id: int) -> list[Group]:
    rows = conn.execute(select(resource_groups).where(resource_groups.c.org_id == org_id)
                        .order_by(resource_groups.c.name_lower))
    return [_group(r) for r in rows]


def update_group(conn: Connection, group_id: int, **values: object) -> None:
    if "name" in values:
        values["name_lower"] = str(values["name"]).lower()
    conn.execute(update(resource_groups).where(resource_groups.c.id == group_id).values(**values))


def delete_group(conn: Connection, group_id: int) -> None:
    conn.execute(delete(resource_groups).where(resource_groups.c.id == group_id))


def roles_of(conn: Connection, user_id: int) -> dict[int, tuple[int, str]]:
    """``group id -> (org id, role)`` for every group the user is in while a member of its org
    (a role outlives nothing: leaving the org ends it even before the row is gone)."""
    rows = conn.execute(
        select(resource_group_members.c.group_id, resource_groups.c.org_id, resource_group_members.c.role)
        .join(resource_groups, resource_groups.c.id == resource_group_members.c.group_id)
        .join(members, (members.c.org_id == resource_groups.c.org_id) & (members.c.user_id == user_id))
        .where(resource_group_members.c.user_id == user_id)
    )
    return {r.group_id: (r.org_id, r.role) for r in rows}


def group_members(conn: Connection, group_id: int) -> list[GroupMember]:
    rows = conn.execute(
        select(accounts.c.id, accounts.c.name, accounts.c.fullname, resource_group_members.c.role)
        .join(accounts, accounts.c.id == resource_group_members.c.user_id)
        .where(resource_group_members.c.group_id == group_id)
        .order_by(accounts.c.name_lower)
    )
    return [GroupMember(r.id, r.name, r.fullname, r.role) for r in rows]


def member_counts(conn: Connection, group_ids: list[int]) -> dict[int, int]:
    if not group_ids:
        return {}
    rows = conn.execute(select(resource_group_members.c.group_id, func.count())
                        .where(resource_group_members.c.group_id.in_(group_ids))
                        .group_by(resource_group_members.c.group_id)).tuples()
    return {g: int(n) for g, n in rows}


def role(conn: Connection, group_id: int, user_id: int) -> str | None:
    return conn.execute(select(resource_group_members.c.role).where(
        resource_group_members.c.group_id == group_id, resource_group_members.c.user_id == user_id)).scalar()


def set_role(conn: Connection, group_id: int, user_id: int, new_role: str) -> None:
    if role(conn, group_id, user_id) is None:
        conn.execute(insert(resource_group_members).values(group_id=group_id, user_id=user_id, role=new_role))
    else:
        conn.execute(update(resource_group_members).where(
            resource_group_members.c.group_id == group_id, resource_group_members.c.user_id == user_id,
        ).values(role=new_role))


def remove(conn: Connection, group_id: int, user_id: int) -> bool:
    result = conn.execute(delete(resource_group_members).where(
        resource_group_members.c.group_id == group_id, resource_group_members.c.user_id == user_id))
    return result.rowcount == 1


def leave_org(conn: Connection, org_id: int, user_id: int) -> None:
    """A user leaving an org leaves its groups."""
    ids = select(resource_groups.c.id).where(resource_groups.c.org_id == org_id)
    conn.execute(delete(resource_group_members).where(
        resource_group_members.c.user_id == user_id, resource_group_members.c.group_id.in_(ids)))


def repos_of(conn: Connection, group_id: int) -> list[tuple[str, str, str, bool]]:
    """``(type, namespace, name, private)`` of the group's repos."""
    rows = conn.execute(select(repos.c.type, repos.c.namespace, repos.c.name, repos.c.private)
                        .where(repos.c.resource_group_id == group_id).order_by(repos.c.key))
    return [(t, ns, n, bool(p)) for t, ns, n, p in rows.tuples()]


def count_repos(conn: Connection, group_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(repos)
                            .where(repos.c.resource_group_id == group_id)).scalar_one())
