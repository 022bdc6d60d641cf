"""Repositories and their catalog columns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.sql import ColumnElement

from modelyard.catalog.database import Database
from modelyard.catalog.tables import repo_lfs_objects, repo_tags, repos


@dataclass(frozen=True)
class Repo:
    id: int
    type: str
    namespace: str
    name: str
    owner_id: int
    private: bool
    gated: str | None
    created_at: datetime
    last_modified: datetime
    used_storage: int
    downloads: int
    downloads_all_time: int
    likes: int
    trending_score: float
    card_data: dict[str, Any] | None
    tags: list[str]
    library_name: str | None
    pipeline_tag: str | None

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


def _repo(row: Any) -> Repo:
    return Repo(
        id=row.id,
        type=row.type,
        namespace=row.namespace,
        name=row.name,
        owner_id=row.owner_id,
        private=bool(row.private),
        gated=row.gated,
        created_at=row.created_at,
        last_modified=row.last_modified,
        used_storage=row.used_storage,
        downloads=row.downloads,
        downloads_all_time=row.downloads_all_time,
        likes=row.likes,
        trending_score=row.trending_score,
        card_data=json.loads(row.card_data) if row.card_data else None,
        tags=json.loads(row.tags or "[]"),
        library_name=row.library_name,
        pipeline_tag=row.pipeline_tag,
    )


def repo_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}".lower()


def get(conn: Connection, repo_type: str, namespace: str, name: str) -> Repo | None:
    if "\x00" in namespace or "\x00" in name:  # never stored; PostgreSQL refuses NUL in a query
        return None
    row = conn.execute(
        select(repos).where(repos.c.type == repo_type, repos.c.key == repo_key(namespace, name))
    ).first()
    return None if row is None else _repo(row)


def get_by_id(conn: Connection, repo_id: int) -> Repo | None:
    row = conn.execute(select(repos).where(repos.c.id == repo_id)).first()
    return None if row is None else _repo(row)


def create(
    conn: Connection,
    *,
    repo_type: str,
    namespace: str,
    name: str,
    owner_id: int,
    private: bool,
    now: datetime,
) -> int:
    result = conn.execute(
        insert(repos).values(
            type=repo_type,
            namespace=namespace,
            name=name,
            key=repo_key(namespace, name),
            owner_id=owner_id,
            private=private,
            created_at=now,
            last_modified=now,
            used_storage=0,
            downloads=0,
            downloads_all_time=0,
            likes=0,
            trending_score=0.0,
            tags="[]",
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def delete_repo(conn: Connection, repo_id: int) -> None:
    conn.execute(delete(repos).where(repos.c.id == repo_id))


def update_repo(conn: Connection, repo_id: int, **values: Any) -> None:
    if "namespace" in values and "name" in values:
        values["key"] = repo_key(values["namespace"], values["name"])
    conn.execute(update(repos).where(repos.c.id == repo_id).values(**values))


def set_card(
    conn: Connection,
    repo_id: int,
    card_data: dict[str, Any] | None,
    tags: list[str],
    library_name: str | None,
    pipeline_tag: str | None,
) -> None:
    conn.execute(
        update(repos)
        .where(repos.c.id == repo_id)
        .values(
            card_data=json.dumps(card_data) if card_data is not None else None,
            tags=json.dumps(tags),
            library_name=library_name,
            pipeline_tag=pipeline_tag,
        )
    )
    conn.execute(delete(repo_tags).where(repo_tags.c.repo_id == repo_id))
    if tags:
        conn.execute(insert(repo_tags), [{"repo_id": repo_id, "tag": t} for t in sorted(set(tags))])


def has_lfs_object(conn: Connection, repo_id: int, sha256: str) -> int | None:
    """The size of an LFS object this repo holds, or None."""
    row = conn.execute(
        select(repo_lfs_objects.c.size).where(
            repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.sha256 == sha256
        )
    ).first()
    return None if row is None else int(row.size)


def add_lfs_object(db: Database, conn: Connection, repo_id: int, sha256: str, size: int, now: datetime) -> None:
    conn.execute(
        db.insert_ignore(repo_lfs_objects),
        [{"repo_id": repo_id, "sha256": sha256, "size": size, "pushed_at": now}],
    )


SORT_COLUMNS = {
    "lastModified": repos.c.last_modified,
    "createdAt": repos.c.created_at,
    "downloads": repos.c.downloads,
    "likes": repos.c.likes,
    "trendingScore": repos.c.trending_score,
}


@dataclass(frozen=True)
class ListQuery:
    repo_type: str
    search: list[str]
    author: str | None
    filters: list[str]
    sort: str
    limit: int
    cursor: tuple[Any, int] | None
    visible_owner_ids: frozenset[int] | None  # None = everything (admin)


def list_repos(conn: Connection, q: ListQuery) -> list[Repo]:
    """One page, newest-first by ``q.sort`` then id, after the keyset ``q.cursor``."""
    sort_col = SORT_COLUMNS[q.sort]
    conds: list[ColumnElement[bool]] = [repos.c.type == q.repo_type]
    if q.visible_owner_ids is not None:
        conds.append(
            or_(repos.c.private.is_(False), repos.c.owner_id.in_(sorted(q.visible_owner_ids)))
        )
    for term in q.search:
        conds.append(repos.c.key.contains(term.lower(), autoescape=True))
    if q.author:
        conds.append(repos.c.key.startswith(q.author.lower() + "/", autoescape=True))
    for tag in q.filters:
        conds.append(
            repos.c.id.in_(select(repo_tags.c.repo_id).where(repo_tags.c.tag == tag))
        )
    if q.cursor is not None:
        value, last_id = q.cursor
        conds.append(
            or_(sort_col < value, and_(sort_col == value, repos.c.id < last_id))
        )
    stmt = select(repos).where(*conds).order_by(sort_col.desc(), repos.c.id.desc()).limit(q.limit)
    return [_repo(r) for r in conn.execute(stmt)]
