"""Refs, changed only by compare-and-swap inside a transaction."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.catalog.tables import refs


def get(conn: Connection, repo_id: int, name: str) -> str | None:
    if "\x00" in name:  # no ref can hold NUL, and PostgreSQL refuses it in a query
        return None
    row = conn.execute(_TARGET, {"repo_id": repo_id, "name": name}).first()
    return None if row is None else str(row.target)


_TARGET = select(refs.c.target).where(refs.c.repo_id == bindparam("repo_id"), refs.c.name == bindparam("name"))


def all_refs(conn: Connection, repo_id: int) -> dict[str, str]:
    rows = conn.execute(select(refs.c.name, refs.c.target).where(refs.c.repo_id == repo_id))
    return {r.name: r.target for r in rows}


def compare_and_swap(conn: Connection, repo_id: int, name: str, old: str | None, new: str | None) -> bool:
    """Move ``name`` from ``old`` to ``new`` (None = absent); False if it was not at ``old``."""
    if old is None and new is None:
        return get(conn, repo_id, name) is None
    if old is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(refs).values(repo_id=repo_id, name=name, target=new))
        except IntegrityError:
            return False
        return True
    if new is None:
        result = conn.execute(
            delete(refs).where(refs.c.repo_id == repo_id, refs.c.name == name, refs.c.target == old)
        )
    else:
        result = conn.execute(
            update(refs)
            .where(refs.c.repo_id == repo_id, refs.c.name == name, refs.c.target == old)
            .values(target=new)
        )
    return result.rowcount == 1
