"""Refs, changed only by compare-and-swap inside a transaction."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.catalog.tables import refs, repos


def get(conn: Connection, repo_id: int, name: str) -> str | None:
    if "\x00" in name:  # no ref can hold NUL, and PostgreSQL refuses it in a query
        return None
    row = conn.execute(_TARGET, {"repo_id": repo_id, "name": name}).first()
    return None if row is None else str(row.target)


_TARGET = select(refs.c.target).where(refs.c.repo_id == bindparam("repo_id"), refs.c.name == bindparam("name"))


def heads(conn: Connection, repo_ids: list[int], name: str) -> dict[int, str]:
    """The target of ref ``name`` in each of several repos (those that have it), in one statement."""
    if not repo_ids:
        return {}
    rows = conn.execute(select(refs.c.repo_id, refs.c.target).where(refs.c.repo_id.in_(repo_ids), refs.c.name == name))
    return {r.repo_id: r.target for r in rows}


def all_refs(conn: Connection, repo_id: int) -> dict[str, str]:
    rows = conn.execute(select(refs.c.name, refs.c.target).where(refs.c.repo_id == repo_id))
    return {r.name: r.target for r in rows}


def compare_and_swap(conn: Connection, repo_id: int, name: str, old: str | None, new: str | None) -> bool:
    """Move ``name`` from ``old`` to ``new`` (None = absent); False if it was not at ``old``.

    A move also bumps the repo's ``refs_version`` (what ``gc`` checks before it lets go of files),
    first: that takes the repo's row lock before any ref row, the order every writer and ``gc``
    follow (PostgreSQL), so two of them never wait for each other in a cycle. (A bump without a
    move, when the swap fails, only makes ``gc`` skip the repo once.)
    """
    if old is None and new is None:
        return get(conn, repo_id, name) is None
    conn.execute(update(repos).where(repos.c.id == repo_id).values(refs_version=repos.c.refs_version + 1))
    if old is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(refs).values(repo_id=repo_id, name=name, target=new))
        except IntegrityError:
            return False
    else:
        stmt = (
            delete(refs) if new is None else update(refs).values(target=new)
        ).where(refs.c.repo_id == repo_id, refs.c.name == name, refs.c.target == old)
        if conn.execute(stmt).rowcount != 1:
            return False
    return True


def lock(conn: Connection, repo_id: int) -> int | None:
    """Take the repo's row lock for this transaction (PostgreSQL; SQLite has one writer anyway)
    and return its ``refs_version``: commits take it before they check what the repo holds, gc
    before it lets go of it, so the two never interleave.

    ``FOR NO KEY UPDATE``: the holders of the lock take turns, but a row inserted with a key
    pointing at the repo (an event of a comment, which holds its thread's lock) does not wait
    for it, so a comment and a merge of the same pull request never wait on each other in a cycle."""
    row = conn.execute(
        select(repos.c.refs_version).where(repos.c.id == repo_id).with_for_update(key_share=True)
    ).first()
    return None if row is None else int(row.refs_version)


def version(conn: Connection, repo_id: int) -> int | None:
    row = conn.execute(select(repos.c.refs_version).where(repos.c.id == repo_id)).first()
    return None if row is None else int(row.refs_version)
