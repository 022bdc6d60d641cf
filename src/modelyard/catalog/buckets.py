"""The files of buckets (rules in services/buckets.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from modelyard.catalog.database import Database
from modelyard.catalog.repos import Repo, _repo
from modelyard.catalog.tables import bucket_files, repos
from modelyard.catalog.visibility import Visibility


@dataclass(frozen=True)
class BucketFile:
    path: str
    xet_hash: str
    sha256: str
    size: int
    mtime: int | None
    content_type: str | None
    uploaded_at: datetime


def _file(row: object) -> BucketFile:
    r = row
    return BucketFile(r.path, r.xet_hash, r.sha256, int(r.size), r.mtime, r.content_type,  # type: ignore[attr-defined]
                      r.uploaded_at)  # type: ignore[attr-defined]


def totals(conn: Connection, repo_id: int) -> tuple[int, int]:
    """``(files, bytes)`` of a bucket."""
    row = conn.execute(select(func.count(), func.coalesce(func.sum(bucket_files.c.size), 0))
                       .where(bucket_files.c.repo_id == repo_id)).one()
    return int(row[0]), int(row[1])


def listing(conn: Connection, owner_id: int, visible: Visibility, search: str | None, after: str | None,
            limit: int) -> list[Repo]:
    """A page of the owner's buckets the caller may see, by name."""
    stmt = select(repos).where(repos.c.type == "bucket", repos.c.owner_id == owner_id, visible.repos())
    if search:
        stmt = stmt.where(repos.c.key.contains(search.lower(), autoescape=True))
    if after is not None:
        stmt = stmt.where(repos.c.key > after)
    return [_repo(r) for r in conn.execute(stmt.order_by(repos.c.key).limit(limit))]


def get_files(conn: Connection, repo_id: int, paths: Sequence[str]) -> dict[str, BucketFile]:
    paths = [p for p in paths if "\x00" not in p]  # never stored; PostgreSQL refuses NUL in a query
    if not paths:
        return {}
    rows = conn.execute(select(bucket_files).where(bucket_files.c.repo_id == repo_id,
                                                   bucket_files.c.path.in_(list(paths))))
    return {r.path: _file(r) for r in rows}


def files_under(conn: Connection, repo_id: int, prefix: str, after: str | None,
                limit: int | None) -> list[BucketFile]:
    """Files whose path starts with ``prefix`` (a lexical prefix), in the database's order of
    paths, after ``after``."""
    if "\x00" in prefix or (after is not None and "\x00" in after):
        return []  # never stored; PostgreSQL refuses NUL in a query
    stmt = select(bucket_files).where(bucket_files.c.repo_id == repo_id)
    if prefix:
        stmt = stmt.where(bucket_files.c.path.startswith(prefix, autoescape=True))
    if after is not None:
        stmt = stmt.where(bucket_files.c.path > after)
    stmt = stmt.order_by(bucket_files.c.path)
    return [_file(r) for r in conn.execute(stmt if limit is None else stmt.limit(limit))]


def put_file(db: Database, conn: Connection, repo_id: int, f: BucketFile) -> None:
    """Add or replace the file at ``f.path`` (last writer wins)."""
    conn.execute(delete(bucket_files).where(bucket_files.c.repo_id == repo_id, bucket_files.c.path == f.path))
    conn.execute(bucket_files.insert().values(
        repo_id=repo_id, path=f.path, xet_hash=f.xet_hash, sha256=f.sha256, size=f.size, mtime=f.mtime,
        content_type=f.content_type, uploaded_at=f.uploaded_at))


def delete_file(conn: Connection, repo_id: int, path: str) -> bool:
    result = conn.execute(delete(bucket_files).where(bucket_files.c.repo_id == repo_id, bucket_files.c.path == path))
    return result.rowcount == 1


def held_sha256(conn: Connection, repo_id: int) -> set[str]:
    """The sha256 of every file the bucket holds: what gc keeps of it."""
    return {r[0] for r in conn.execute(select(bucket_files.c.sha256).where(bucket_files.c.repo_id == repo_id))}
