"""Git objects and the commits each repository owns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import git_objects, repo_commits


def get(conn: Connection, oid: str) -> tuple[int, bytes] | None:
    row = conn.execute(
        select(git_objects.c.type, git_objects.c.data).where(git_objects.c.oid == oid)
    ).first()
    return None if row is None else (row.type, bytes(row.data))


def get_many(conn: Connection, oids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """``oid -> (type, raw body)`` of the objects that exist, 500 per statement."""
    out: dict[str, tuple[int, bytes]] = {}
    for start in range(0, len(oids), 500):
        rows = conn.execute(
            select(git_objects.c.oid, git_objects.c.type, git_objects.c.data)
            .where(git_objects.c.oid.in_(oids[start : start + 500]))
        )
        for row in rows:
            out[row.oid] = (row.type, bytes(row.data))
    return out


def blob_meta(conn: Connection, oids: Sequence[str]) -> dict[str, tuple[int, str | None, int | None]]:
    """``oid -> (size, lfs sha256, lfs size)`` for the blobs that exist."""
    out: dict[str, tuple[int, str | None, int | None]] = {}
    for start in range(0, len(oids), 500):
        rows = conn.execute(
            select(
                git_objects.c.oid, git_objects.c.size, git_objects.c.lfs_sha256, git_objects.c.lfs_size
            ).where(git_objects.c.oid.in_(oids[start : start + 500]))
        )
        for row in rows:
            out[row.oid] = (row.size, row.lfs_sha256, row.lfs_size)
    return out


def put_many(
    db: Database,
    conn: Connection,
    objects: Iterable[tuple[str, int, bytes, str | None, int | None]],
) -> None:
    """Insert ``(oid, type, data, lfs_sha256, lfs_size)`` rows, skipping those that exist."""
    rows = [
        {"oid": oid, "type": t, "size": len(data), "data": data, "lfs_sha256": s, "lfs_size": z}
        for oid, t, data, s, z in objects
    ]
    if rows:
        conn.execute(db.insert_ignore(git_objects), rows)


def add_repo_commit(db: Database, conn: Connection, repo_id: int, oid: str, when: datetime) -> None:
    conn.execute(db.insert_ignore(repo_commits), [{"repo_id": repo_id, "oid": oid, "created_at": when}])


def repo_has_commit(conn: Connection, repo_id: int, oid: str) -> bool:
    row = conn.execute(
        select(repo_commits.c.oid).where(repo_commits.c.repo_id == repo_id, repo_commits.c.oid == oid)
    ).first()
    return row is not None


def repo_commit_time(conn: Connection, repo_id: int, oid: str) -> datetime | None:
    """When the repo got the commit (made there, or pushed to it)."""
    return conn.execute(select(repo_commits.c.created_at).where(
        repo_commits.c.repo_id == repo_id, repo_commits.c.oid == oid)).scalar()


def find_commits_by_prefix(conn: Connection, repo_id: int, prefix: str) -> list[str]:
    rows = conn.execute(
        select(repo_commits.c.oid)
        .where(repo_commits.c.repo_id == repo_id, repo_commits.c.oid.like(prefix + "%"))
        .limit(2)
    )
    return [r.oid for r in rows]


def repo_commit_ids(conn: Connection, repo_id: int) -> list[str]:
    return [r.oid for r in conn.execute(select(repo_commits.c.oid).where(repo_commits.c.repo_id == repo_id))]


def forget_repo_commits(conn: Connection, repo_id: int, oids: Iterable[str]) -> None:
    oid_list = list(oids)
    for start in range(0, len(oid_list), 500):
        conn.execute(
            repo_commits.delete().where(
                repo_commits.c.repo_id == repo_id, repo_commits.c.oid.in_(oid_list[start : start + 500])
            )
        )


def repo_commits_among(conn: Connection, repo_id: int, oids: Sequence[str]) -> set[str]:
    """Those of ``oids`` that are commits of the repo, 500 per statement."""
    out: set[str] = set()
    for start in range(0, len(oids), 500):
        rows = conn.execute(select(repo_commits.c.oid).where(
            repo_commits.c.repo_id == repo_id, repo_commits.c.oid.in_(oids[start : start + 500])))
        out.update(r.oid for r in rows)
    return out


def repo_commit_objects(conn: Connection, repo_id: int, limit: int) -> dict[str, tuple[int, bytes]]:
    """``oid -> (type, raw body)`` of every commit of the repo in one statement; empty when it has
    more than ``limit`` (the caller then loads them as it needs them)."""
    count = conn.execute(
        select(func.count()).select_from(repo_commits).where(repo_commits.c.repo_id == repo_id)
    ).scalar()
    if not count or count > limit:
        return {}
    rows = conn.execute(
        select(git_objects.c.oid, git_objects.c.type, git_objects.c.data)
        .join(repo_commits, repo_commits.c.oid == git_objects.c.oid)
        .where(repo_commits.c.repo_id == repo_id)
    )
    return {r.oid: (r.type, bytes(r.data)) for r in rows}
