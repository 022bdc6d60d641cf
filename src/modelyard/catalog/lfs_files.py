"""A repository's large files as ``lfs-files`` lists them, and the ones its owner permanently deleted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, exists, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import repo_lfs_objects, repo_purged_lfs, repo_xet_files

_BATCH = 500


@dataclass(frozen=True)
class HeldFile:
    """A large file a repository holds: uploaded by LFS, through Xet (``xet_hash``), or both."""

    sha256: str
    size: int
    pushed_at: datetime
    xet_hash: str | None


def held_page(conn: Connection, repo_id: int, after: str | None, limit: int) -> list[HeldFile]:
    """Up to ``limit`` files the repo holds, by sha256, after the sha256 ``after``: the LFS
    objects and the Xet files merged (a file that came both ways is listed once)."""
    lfs = select(repo_lfs_objects.c.sha256, repo_lfs_objects.c.size, repo_lfs_objects.c.pushed_at).where(
        repo_lfs_objects.c.repo_id == repo_id
    )
    xet = select(
        repo_xet_files.c.sha256, repo_xet_files.c.size, repo_xet_files.c.pushed_at, repo_xet_files.c.file_hash
    ).where(repo_xet_files.c.repo_id == repo_id)
    if after is not None:
        lfs = lfs.where(repo_lfs_objects.c.sha256 > after)
        xet = xet.where(repo_xet_files.c.sha256 > after)
    found: dict[str, HeldFile] = {}
    for r in conn.execute(xet.order_by(repo_xet_files.c.sha256).limit(limit)):
        found[r.sha256] = HeldFile(r.sha256, int(r.size), r.pushed_at, r.file_hash)
    for o in conn.execute(lfs.order_by(repo_lfs_objects.c.sha256).limit(limit)):
        via_xet = found.get(o.sha256)
        found[o.sha256] = HeldFile(o.sha256, int(o.size), o.pushed_at, via_xet.xet_hash if via_xet else None)
    return [found[sha] for sha in sorted(found)[:limit]]


def release(conn: Connection, repo_id: int, sha256: str) -> tuple[int | None, str | None]:
    """Let the repo go of a large file, however it came: (its size, or None if the repo did not
    hold it; the Xet file hash it came as, if any)."""
    lfs = conn.execute(
        delete(repo_lfs_objects).where(repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.sha256 == sha256)
        .returning(repo_lfs_objects.c.size)
    ).first()
    xet = conn.execute(
        delete(repo_xet_files).where(repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.sha256 == sha256)
        .returning(repo_xet_files.c.size, repo_xet_files.c.file_hash)
    ).first()
    size = lfs.size if lfs is not None else (xet.size if xet is not None else None)
    return (None if size is None else int(size)), (None if xet is None else str(xet.file_hash))


def mark_purged(db: Database, conn: Connection, repo_id: int, sha256: str, size: int, now: datetime) -> None:
    conn.execute(db.insert_ignore(repo_purged_lfs), [{"repo_id": repo_id, "sha256": sha256, "size": size,
                                                      "purged_at": now}])


def _purged_and_not_held() -> Select[Any]:
    """Purged objects the repository has not received again since (a new upload of the same bytes
    makes them downloadable again)."""
    return select(repo_purged_lfs.c.repo_id, repo_purged_lfs.c.sha256).where(
        ~exists().where(repo_lfs_objects.c.repo_id == repo_purged_lfs.c.repo_id,
                        repo_lfs_objects.c.sha256 == repo_purged_lfs.c.sha256),
        ~exists().where(repo_xet_files.c.repo_id == repo_purged_lfs.c.repo_id,
                        repo_xet_files.c.sha256 == repo_purged_lfs.c.sha256),
    )


def download_facts(conn: Connection, repo_id: int, sha256: str) -> tuple[str | None, bool]:
    """For a large file being downloaded, in one statement: the Xet file hash the repository
    received it as (None: an LFS object only), and whether its owner purged it (and does not
    hold it again)."""
    row = conn.execute(_DOWNLOAD_FACTS, {"repo_id": repo_id, "sha256": sha256}).one()
    return (None if row.xet is None else str(row.xet)), bool(row.purged)


def download_fact_columns(repo_id: Any, sha256: Any) -> tuple[Any, Any]:
    """``download_facts`` as two columns (``xet``, ``purged``) of a statement: for ``repo_id``
    and ``sha256`` as bound values or as columns of an enclosing query."""
    held = _purged_and_not_held().where(repo_purged_lfs.c.repo_id == repo_id, repo_purged_lfs.c.sha256 == sha256)
    xet = select(repo_xet_files.c.file_hash).where(
        repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.sha256 == sha256
    )
    return xet.scalar_subquery().label("xet"), held.exists().label("purged")


def _download_facts() -> Select[Any]:
    return select(*download_fact_columns(bindparam("repo_id"), bindparam("sha256")))


def purged(conn: Connection, repo_id: int, shas: Iterable[str]) -> set[str]:
    """Which of ``shas`` the repository's owner permanently deleted (and it does not hold again)."""
    wanted = sorted(set(shas))
    out: set[str] = set()
    for i in range(0, len(wanted), _BATCH):
        rows = conn.execute(_purged_and_not_held().where(
            repo_purged_lfs.c.repo_id == repo_id, repo_purged_lfs.c.sha256.in_(wanted[i : i + _BATCH])
        ))
        out.update(r.sha256 for r in rows)
    return out


def all_purged(conn: Connection) -> set[tuple[int, str]]:
    """``(repo id, sha256)`` of every permanently deleted object not held again (for fsck and gc)."""
    return {(int(r.repo_id), str(r.sha256)) for r in conn.execute(_purged_and_not_held())}


_DOWNLOAD_FACTS = _download_facts()  # built once: it runs on every download of a large file
