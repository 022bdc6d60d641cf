"""Xet metadata: xorb indexes, shards, file reconstructions, which repo holds which file."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import (
    repo_xet_files,
    repos,
    xet_dedup_chunks,
    xet_file_xorbs,
    xet_files,
    xet_shards,
    xet_xorbs,
)
from modelyard.catalog.visibility import EVERYTHING, Visibility

_BATCH = 500


@dataclass(frozen=True)
class StoredXorb:
    hash: str
    stored_size: int
    chunks: bytes  # packed XorbIndex


@dataclass(frozen=True)
class StoredFile:
    hash: str
    sha256: str
    size: int
    terms: bytes  # packed terms


def xorbs(conn: Connection, hashes: Iterable[str]) -> dict[str, StoredXorb]:
    wanted = sorted(set(hashes))
    out: dict[str, StoredXorb] = {}
    for i in range(0, len(wanted), _BATCH):
        rows = conn.execute(
            select(xet_xorbs.c.hash, xet_xorbs.c.stored_size, xet_xorbs.c.chunks).where(
                xet_xorbs.c.hash.in_(wanted[i : i + _BATCH])
            )
        )
        for r in rows:
            out[r.hash] = StoredXorb(r.hash, int(r.stored_size), bytes(r.chunks))
    return out


def xorb_times(conn: Connection, hashes: Iterable[str]) -> dict[str, datetime]:
    """When each xorb was stored."""
    wanted = sorted(set(hashes))
    out: dict[str, datetime] = {}
    for i in range(0, len(wanted), _BATCH):
        rows = conn.execute(select(xet_xorbs.c.hash, xet_xorbs.c.created_at).where(
            xet_xorbs.c.hash.in_(wanted[i : i + _BATCH])))
        out.update({r.hash: r.created_at for r in rows})
    return out


def all_xorb_hashes(conn: Connection) -> list[str]:
    """The name of every xorb stored (what a hub holds, for ``modelyard bundle have``)."""
    return [r.hash for r in conn.execute(select(xet_xorbs.c.hash).order_by(xet_xorbs.c.hash))]


def has_xorb(conn: Connection, xorb_hash: str) -> bool:
    return conn.execute(select(xet_xorbs.c.hash).where(xet_xorbs.c.hash == xorb_hash)).first() is not None


def insert_xorb(
    db: Database, conn: Connection, xorb_hash: str, num_chunks: int, unpacked: int, stored: int, chunks: bytes,
    dedup_chunks: Sequence[str], now: datetime,
) -> bool:
    """Record a stored xorb; False when it was recorded already."""
    # RETURNING tells whether the row was new (psycopg reports no rowcount for ON CONFLICT DO NOTHING).
    result = conn.execute(db.insert_ignore(xet_xorbs).returning(xet_xorbs.c.hash), {
        "hash": xorb_hash, "num_chunks": num_chunks, "unpacked_size": unpacked, "stored_size": stored,
        "chunks": chunks, "created_at": now,
    })
    inserted = result.first() is not None
    add_dedup_chunks(db, conn, [(c, xorb_hash) for c in dedup_chunks])
    return inserted


def add_dedup_chunks(db: Database, conn: Connection, rows: Sequence[tuple[str, str]]) -> None:
    if rows:
        conn.execute(db.insert_ignore(xet_dedup_chunks), [{"chunk_hash": c, "xorb_hash": x} for c, x in rows])


def _visible_use(xorb_col: Any, visible: Visibility) -> Any:
    """``xorb_col`` is used by a file that a repository the caller may read holds."""
    cond = (
        select(xet_file_xorbs.c.xorb_hash)
        .join(repo_xet_files, repo_xet_files.c.file_hash == xet_file_xorbs.c.file_hash)
        .join(repos, repos.c.id == repo_xet_files.c.repo_id)
        .where(xet_file_xorbs.c.xorb_hash == xorb_col)
    )
    if not visible.everything:
        cond = cond.where(visible.repos())
    return cond.exists()


def dedup_xorb(conn: Connection, chunk_hash: str, visible: Visibility = EVERYTHING) -> str | None:
    """The xorb offered for a chunk, if a repository ``visible`` to the caller uses it."""
    row = conn.execute(
        select(xet_dedup_chunks.c.xorb_hash).where(
            xet_dedup_chunks.c.chunk_hash == chunk_hash, _visible_use(xet_dedup_chunks.c.xorb_hash, visible)
        )
    ).first()
    return None if row is None else str(row.xorb_hash)


def related_xorbs(
    conn: Connection, xorb_hash: str, files: int, limit: int, visible: Visibility = EVERYTHING
) -> list[str]:
    """Other xorbs used by (a few of) the files that use ``xorb_hash``: what a client that holds
    one of its chunks most likely holds the rest of. Only files of repositories the caller may
    read are considered (``visible``)."""
    users = select(xet_file_xorbs.c.file_hash).where(xet_file_xorbs.c.xorb_hash == xorb_hash)
    if not visible.everything:
        readable = (
            select(repo_xet_files.c.file_hash)
            .join(repos, repos.c.id == repo_xet_files.c.repo_id)
            .where(visible.repos())
        )
        users = users.where(xet_file_xorbs.c.file_hash.in_(readable))
    rows = conn.execute(
        select(xet_file_xorbs.c.xorb_hash).where(
            xet_file_xorbs.c.file_hash.in_(users.limit(files).scalar_subquery()),
            xet_file_xorbs.c.xorb_hash != xorb_hash,
        ).distinct().order_by(xet_file_xorbs.c.xorb_hash).limit(limit)
    )
    return [r.xorb_hash for r in rows]


def file(conn: Connection, file_hash: str) -> StoredFile | None:
    row = conn.execute(select(xet_files).where(xet_files.c.hash == file_hash)).first()
    return None if row is None else StoredFile(row.hash, row.sha256, int(row.size), bytes(row.terms))


def repo_file(conn: Connection, repo_id: int, file_hash: str) -> StoredFile | None:
    """A Xet file that was uploaded to this repository."""
    row = conn.execute(
        select(xet_files).where(
            xet_files.c.hash == file_hash,
            exists().where(repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.file_hash == file_hash),
        )
    ).first()
    return None if row is None else StoredFile(row.hash, row.sha256, int(row.size), bytes(row.terms))


def repo_files_by_sha256(conn: Connection, repo_id: int, shas: Sequence[str]) -> dict[str, tuple[str, int]]:
    """``sha256 -> (xet file hash, size)`` for the given files uploaded to this repo through Xet."""
    wanted = sorted(set(shas))
    out: dict[str, tuple[str, int]] = {}
    for i in range(0, len(wanted), _BATCH):
        rows = conn.execute(
            select(repo_xet_files.c.sha256, repo_xet_files.c.file_hash, repo_xet_files.c.size).where(
                repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.sha256.in_(wanted[i : i + _BATCH])
            )
        )
        for r in rows:
            out[r.sha256] = (r.file_hash, int(r.size))
    return out


def record_shard(db: Database, conn: Connection, shard_hash: str, size: int, now: datetime) -> bool:
    result = conn.execute(
        db.insert_ignore(xet_shards).returning(xet_shards.c.hash), {"hash": shard_hash, "size": size, "created_at": now}
    )
    return result.first() is not None


def record_file(
    db: Database, conn: Connection, f: StoredFile, xorb_hashes: Iterable[str], shard: str, now: datetime
) -> None:
    conn.execute(db.insert_ignore(xet_files), [{
        "hash": f.hash, "sha256": f.sha256, "size": f.size, "terms": f.terms, "shard": shard, "created_at": now,
    }])
    rows = [{"file_hash": f.hash, "xorb_hash": x} for x in sorted(set(xorb_hashes))]
    if rows:
        conn.execute(db.insert_ignore(xet_file_xorbs), rows)


def record_repo_file(
    db: Database, conn: Connection, repo_id: int, sha256: str, file_hash: str, size: int, now: datetime
) -> None:
    conn.execute(db.insert_ignore(repo_xet_files), [{
        "repo_id": repo_id, "sha256": sha256, "file_hash": file_hash, "size": size, "pushed_at": now,
    }])


def repo_files(conn: Connection, repo_id: int) -> list[StoredFile]:
    rows = conn.execute(
        select(xet_files).join(repo_xet_files, repo_xet_files.c.file_hash == xet_files.c.hash).where(
            repo_xet_files.c.repo_id == repo_id
        )
    )
    return [StoredFile(r.hash, r.sha256, int(r.size), bytes(r.terms)) for r in rows]


def files_by_sha256(conn: Connection, shas: Iterable[str]) -> dict[str, StoredFile]:
    wanted = sorted(set(shas))
    out: dict[str, StoredFile] = {}
    for i in range(0, len(wanted), _BATCH):
        for r in conn.execute(select(xet_files).where(xet_files.c.sha256.in_(wanted[i : i + _BATCH]))):
            out[r.sha256] = StoredFile(r.hash, r.sha256, int(r.size), bytes(r.terms))
    return out


def totals(conn: Connection) -> dict[str, int]:
    """Hub-wide Xet storage: xorbs and shards kept, and their bytes."""
    x = conn.execute(select(func.count(), func.coalesce(func.sum(xet_xorbs.c.stored_size), 0))).one()
    s = conn.execute(select(func.count(), func.coalesce(func.sum(xet_shards.c.size), 0))).one()
    f = conn.execute(select(func.count(), func.coalesce(func.sum(xet_files.c.size), 0))).one()
    return {"xorbs": int(x[0]), "xorb_bytes": int(x[1]), "shards": int(s[0]), "shard_bytes": int(s[1]),
            "files": int(f[0]), "file_bytes": int(f[1])}


# -- garbage collection ------------------------------------------------------------------------


def repo_files_pushed(conn: Connection, repo_id: int) -> list[tuple[int, str, datetime]]:
    rows = conn.execute(
        select(repo_xet_files.c.sha256, repo_xet_files.c.pushed_at).where(repo_xet_files.c.repo_id == repo_id)
    )
    return [(repo_id, r.sha256, r.pushed_at) for r in rows]


def forget_repo_file(conn: Connection, repo_id: int, sha256: str, before: datetime) -> int:
    """Let the repo go of a Xet file, if it was pushed before ``before``."""
    return int(conn.execute(
        delete(repo_xet_files).where(
            repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.sha256 == sha256,
            repo_xet_files.c.pushed_at < before,
        )
    ).rowcount)


def unused_files(conn: Connection, before: datetime) -> list[str]:
    """Files no repository holds any more, older than ``before``."""
    rows = conn.execute(
        select(xet_files.c.hash).where(
            xet_files.c.created_at < before,
            ~exists().where(repo_xet_files.c.file_hash == xet_files.c.hash),
        )
    )
    return [r.hash for r in rows]


def delete_file(conn: Connection, file_hash: str) -> bool:
    """Delete a file nobody holds (re-checked here, in the deleting transaction)."""
    result = conn.execute(
        delete(xet_files).where(
            xet_files.c.hash == file_hash, ~exists().where(repo_xet_files.c.file_hash == file_hash)
        )
    )
    return bool(result.rowcount)


def unused_xorbs(conn: Connection, before: datetime) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(xet_xorbs.c.hash, xet_xorbs.c.stored_size).where(
            xet_xorbs.c.created_at < before,
            ~exists().where(xet_file_xorbs.c.xorb_hash == xet_xorbs.c.hash),
        )
    )
    return [(r.hash, int(r.stored_size)) for r in rows]


def delete_xorb(conn: Connection, xorb_hash: str) -> bool:
    """Delete an unreferenced xorb's row; a concurrent shard that references it wins (foreign key)."""
    conn.execute(delete(xet_dedup_chunks).where(xet_dedup_chunks.c.xorb_hash == xorb_hash))
    result = conn.execute(
        delete(xet_xorbs).where(
            xet_xorbs.c.hash == xorb_hash, ~exists().where(xet_file_xorbs.c.xorb_hash == xorb_hash)
        )
    )
    return bool(result.rowcount)


def unused_shards(conn: Connection, before: datetime) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(xet_shards.c.hash, xet_shards.c.size).where(
            xet_shards.c.created_at < before, ~exists().where(xet_files.c.shard == xet_shards.c.hash)
        )
    )
    return [(r.hash, int(r.size)) for r in rows]


def delete_shard(conn: Connection, shard_hash: str) -> bool:
    result = conn.execute(
        delete(xet_shards).where(xet_shards.c.hash == shard_hash, ~exists().where(xet_files.c.shard == shard_hash))
    )
    return bool(result.rowcount)

