"""Old names of moved repos and the repo each one leads to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select

from modelyard.catalog.repos import Repo, _repo, repo_key
from modelyard.catalog.tables import repo_redirects, repos


def add(conn: Connection, repo_type: str, namespace: str, name: str, repo: Repo, now: datetime) -> None:
    """``namespace/name`` (a name ``repo`` no longer has) leads to ``repo`` from now on."""
    remove_name(conn, repo_type, namespace, name)
    conn.execute(insert(repo_redirects).values(
        type=repo_type, key=repo_key(namespace, name), namespace=namespace, name=name,
        repo_id=repo.id, repo_uid=repo.uid, created_at=now,
    ))


def remove_name(conn: Connection, repo_type: str, namespace: str, name: str) -> None:
    """A repo takes ``namespace/name``: the name leads nowhere else any more."""
    conn.execute(delete(repo_redirects).where(
        repo_redirects.c.type == repo_type, repo_redirects.c.key == repo_key(namespace, name)
    ))


def remove_repo(conn: Connection, repo_id: int) -> None:
    """Every old name of a repo being deleted (the foreign key cascades too; this says so)."""
    conn.execute(delete(repo_redirects).where(repo_redirects.c.repo_id == repo_id))


def target(conn: Connection, repo_type: str, namespace: str, name: str) -> Repo | None:
    """The repo an old name leads to: only while no repo holds that name, and only the very repo
    the redirect was made for (same ``uid``)."""
    if "\x00" in namespace or "\x00" in name:  # never stored; PostgreSQL refuses NUL in a query
        return None
    key = repo_key(namespace, name)
    if conn.execute(_HOLDER, {"type": repo_type, "key": key}).first() is not None:
        return None
    row = conn.execute(_TARGET, {"type": repo_type, "key": key}).first()
    return None if row is None else _repo(row)


def old_names(conn: Connection, repo_id: int) -> list[str]:
    """The old names leading to a repo, oldest first (for operators and tests)."""
    rows = conn.execute(
        select(repo_redirects.c.namespace, repo_redirects.c.name)
        .where(repo_redirects.c.repo_id == repo_id)
        .order_by(repo_redirects.c.created_at, repo_redirects.c.key)
    ).all()
    return [f"{row.namespace}/{row.name}" for row in rows]


_HOLDER = select(repos.c.id).where(repos.c.type == bindparam("type"), repos.c.key == bindparam("key"))
_TARGET = (
    select(repos)
    .join(repo_redirects, (repo_redirects.c.repo_id == repos.c.id) & (repo_redirects.c.repo_uid == repos.c.uid))
    .where(repo_redirects.c.type == bindparam("type"), repo_redirects.c.key == bindparam("key"))
)
