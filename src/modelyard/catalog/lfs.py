"""LFS objects known to be complete in the blob store, and multipart uploads in flight."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, exists, func, insert, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import lfs_objects, multipart_uploads, repo_lfs_objects


def record_object(db: Database, conn: Connection, sha256: str, size: int, now: datetime) -> None:
    conn.execute(
        db.insert_ignore(lfs_objects), [{"sha256": sha256, "size": size, "created_at": now}]
    )


def all_objects(conn: Connection) -> list[tuple[str, int]]:
    return [(r.sha256, r.size) for r in conn.execute(select(lfs_objects.c.sha256, lfs_objects.c.size))]


def sizes(conn: Connection, shas: Iterable[str]) -> dict[str, int]:
    """The recorded size of each of ``shas`` that the store holds as a complete object."""
    wanted = sorted(set(shas))
    out: dict[str, int] = {}
    for i in range(0, len(wanted), 500):
        rows = conn.execute(select(lfs_objects.c.sha256, lfs_objects.c.size).where(
            lfs_objects.c.sha256.in_(wanted[i : i + 500])))
        out.update({r.sha256: int(r.size) for r in rows})
    return out


def totals(conn: Connection) -> tuple[int, int]:
    """How many LFS objects the store holds, and their bytes."""
    row = conn.execute(select(func.count(), func.coalesce(func.sum(lfs_objects.c.size), 0))).one()
    return int(row[0]), int(row[1])


def repo_objects(conn: Connection, repo_id: int) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(repo_lfs_objects.c.sha256, repo_lfs_objects.c.size).where(
            repo_lfs_objects.c.repo_id == repo_id
        )
    )
    return [(r.sha256, r.size) for r in rows]


def start_multipart(
    conn: Connection, upload_id: str, repo_id: int, sha256: str, size: int, chunk_size: int, now: datetime
) -> None:
    conn.execute(
        insert(multipart_uploads).values(
            id=upload_id, repo_id=repo_id, sha256=sha256, size=size, chunk_size=chunk_size, created_at=now
        )
    )


def get_multipart(conn: Connection, upload_id: str) -> tuple[int, str, int, int] | None:
    row = conn.execute(select(multipart_uploads).where(multipart_uploads.c.id == upload_id)).first()
    return None if row is None else (row.repo_id, row.sha256, row.size, row.chunk_size)


def finish_multipart(conn: Connection, upload_id: str) -> None:
    conn.execute(delete(multipart_uploads).where(multipart_uploads.c.id == upload_id))


def drop_multiparts_started_before(conn: Connection, before: datetime) -> int:
    """Forget the multipart uploads started before ``before``; how many there were."""
    return int(conn.execute(delete(multipart_uploads).where(multipart_uploads.c.created_at < before)).rowcount)


def multipart_ids(conn: Connection) -> set[str]:
    return {str(r.id) for r in conn.execute(select(multipart_uploads.c.id))}


def repo_objects_pushed(conn: Connection, repo_id: int) -> list[tuple[int, str, datetime]]:
    rows = conn.execute(
        select(repo_lfs_objects.c.sha256, repo_lfs_objects.c.pushed_at).where(repo_lfs_objects.c.repo_id == repo_id)
    )
    return [(repo_id, r.sha256, r.pushed_at) for r in rows]


def forget_repo_object(conn: Connection, repo_id: int, sha256: str, before: datetime) -> int:
    """Let the repo go of an object, if it was pushed (or committed again) before ``before``."""
    return int(conn.execute(
        delete(repo_lfs_objects).where(
            repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.sha256 == sha256,
            repo_lfs_objects.c.pushed_at < before,
        )
    ).rowcount)


def unused_objects(conn: Connection, before: datetime) -> list[tuple[str, int]]:
    """LFS objects no repository holds any more, recorded before ``before``."""
    rows = conn.execute(
        select(lfs_objects.c.sha256, lfs_objects.c.size).where(
            lfs_objects.c.created_at < before, ~exists().where(repo_lfs_objects.c.sha256 == lfs_objects.c.sha256)
        )
    )
    return [(r.sha256, int(r.size)) for r in rows]


def delete_object(conn: Connection, sha256: str) -> bool:
    result = conn.execute(
        delete(lfs_objects).where(
            lfs_objects.c.sha256 == sha256, ~exists().where(repo_lfs_objects.c.sha256 == sha256)
        )
    )
    return bool(result.rowcount)
