"""Catalog search: full-text match, tag filters, sorting and snapshot-stable pagination.

Full text lives outside the portable metadata: an FTS5 table ``repo_fts`` (rowid = repo id) on
SQLite, a ``search_vector`` tsvector column with a GIN index on PostgreSQL (migration 0002).

Pagination is stable under concurrent writes. Every change of a sort key (last modified,
downloads, likes, trending score) takes the next value of a catalog-wide sequence and logs the
values it replaced. A cursor remembers the sequence number of its first page; later pages see
each repo with the sort values it had then (repos created since are left out), so a walk
neither repeats nor skips a repo while commits land.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, text, update
from sqlalchemy.sql import ColumnElement

from modelyard.catalog.database import Database
from modelyard.catalog.repos import Repo, _repo
from modelyard.catalog.tables import catalog_counter, repo_sort_log, repo_tags, repos

SORT_KEYS = ("lastModified", "createdAt", "downloads", "likes", "trendingScore")
SORT_COLUMNS = {
    "lastModified": repos.c.last_modified,
    "createdAt": repos.c.created_at,
    "downloads": repos.c.downloads,
    "likes": repos.c.likes,
    "trendingScore": repos.c.trending_score,
}
#: How long a pagination cursor keeps its snapshot; older cursors are refused.
CURSOR_LIFETIME = timedelta(hours=1)
_TOKEN = re.compile(r"\w+", re.UNICODE)


def next_seq(conn: Connection) -> int:
    """Take the next catalog sequence number (inside the caller's write transaction)."""
    conn.execute(update(catalog_counter).where(catalog_counter.c.id == 1).values(value=catalog_counter.c.value + 1))
    return int(conn.execute(select(catalog_counter.c.value).where(catalog_counter.c.id == 1)).scalar_one())


def current_seq(conn: Connection) -> int:
    return int(conn.execute(select(catalog_counter.c.value).where(catalog_counter.c.id == 1)).scalar_one())


def change_sort_keys(conn: Connection, repo_id: int, **values: Any) -> None:
    """Update sort keys (and anything else in ``values``), logging the old sort values first."""
    old = conn.execute(
        select(repos.c.last_modified, repos.c.downloads, repos.c.likes, repos.c.trending_score)
        .where(repos.c.id == repo_id)
    ).first()
    if old is None:
        return
    seq = next_seq(conn)
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(repo_sort_log.insert().values(
        repo_id=repo_id, seq=seq, last_modified=old.last_modified, downloads=old.downloads,
        likes=old.likes, trending_score=old.trending_score, at=now,
    ))
    if seq % 1000 == 0:  # now and then, forget what no live cursor can still need
        conn.execute(delete(repo_sort_log).where(repo_sort_log.c.at < now - CURSOR_LIFETIME))
    conn.execute(update(repos).where(repos.c.id == repo_id).values(change_seq=seq, **values))


def set_search_text(db: Database, conn: Connection, repo_id: int, name: str, body: str) -> None:
    """(Re)index a repo's searchable text: its id (weighted high), card text and tags."""
    if db.is_sqlite:
        conn.execute(text("DELETE FROM repo_fts WHERE rowid = :id"), {"id": repo_id})
        conn.execute(text("INSERT INTO repo_fts (rowid, name, body) VALUES (:id, :name, :body)"),
                     {"id": repo_id, "name": name, "body": body})
    else:
        conn.execute(
            text("UPDATE repos SET search_vector = setweight(to_tsvector('simple', :name), 'A') || "
                 "setweight(to_tsvector('simple', :body), 'B') WHERE id = :id"),
            {"id": repo_id, "name": name, "body": body[:200_000]},
        )


def delete_search_text(db: Database, conn: Connection, repo_id: int) -> None:
    if db.is_sqlite:
        conn.execute(text("DELETE FROM repo_fts WHERE rowid = :id"), {"id": repo_id})


def search_tokens(terms: list[str]) -> list[str]:
    return [t.lower() for term in terms for t in _TOKEN.findall(term)]


@dataclass(frozen=True)
class Cursor:
    """Where a page walk stands: the snapshot it reads, and the last (sort value, id) served."""

    seq: int
    value: Any
    last_id: int


@dataclass(frozen=True)
class SearchQuery:
    repo_type: str
    search: list[str]
    author: str | None
    filters: list[str]
    pipeline_tag: str | None
    min_params: int | None
    max_params: int | None
    gated: bool | None
    sort: str
    limit: int
    cursor: Cursor | None
    visible_owner_ids: frozenset[int] | None  # None = everything (admin)


def _conditions(db: Database, q: SearchQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [repos.c.type == q.repo_type]
    if q.visible_owner_ids is not None:
        conds.append(or_(repos.c.private.is_(False), repos.c.owner_id.in_(sorted(q.visible_owner_ids))))
    tokens = search_tokens(q.search)
    if tokens:
        if db.is_sqlite:
            match = " ".join('"' + t.replace('"', "") + '"*' for t in tokens)
            conds.append(repos.c.id.in_(text("SELECT rowid FROM repo_fts WHERE repo_fts MATCH :m").bindparams(m=match)))
        else:
            query = " & ".join(f"{t}:*" for t in tokens)
            conds.append(text("repos.search_vector @@ to_tsquery('simple', :q)").bindparams(q=query))  # type: ignore[arg-type]
    elif any(s.strip() for s in q.search):
        conds.append(repos.c.id < 0)  # only punctuation: nothing can match
    if q.author:
        conds.append(repos.c.key.startswith(q.author.lower() + "/", autoescape=True))
    for tag in q.filters:
        conds.append(repos.c.id.in_(select(repo_tags.c.repo_id).where(repo_tags.c.tag == tag)))
    if q.pipeline_tag:
        conds.append(repos.c.pipeline_tag == q.pipeline_tag)
    if q.min_params is not None:
        conds.append(repos.c.num_parameters >= q.min_params)
    if q.max_params is not None:
        conds.append(repos.c.num_parameters <= q.max_params)
    if q.gated is not None:
        conds.append(repos.c.gated.is_not(None) if q.gated else repos.c.gated.is_(None))
    return conds


def _sort_value(repo: Repo, sort: str) -> Any:
    return {
        "lastModified": repo.last_modified, "createdAt": repo.created_at, "downloads": repo.downloads,
        "likes": repo.likes, "trendingScore": repo.trending_score,
    }[sort]


def search(db: Database, conn: Connection, q: SearchQuery) -> tuple[list[Repo], Cursor | None]:
    """One page of matching repos, newest/highest first, and the cursor of the next page."""
    seq = q.cursor.seq if q.cursor else current_seq(conn)
    sort_col = SORT_COLUMNS[q.sort]
    conds = _conditions(db, q)
    conds.append(repos.c.created_seq <= seq)
    stable = [*conds, repos.c.change_seq <= seq]
    if q.cursor is not None:
        value, last_id = q.cursor.value, q.cursor.last_id
        stable.append(or_(sort_col < value, and_(sort_col == value, repos.c.id < last_id)))
    rows = conn.execute(
        select(repos).where(*stable).order_by(sort_col.desc(), repos.c.id.desc()).limit(q.limit + 1)
    )
    candidates: list[tuple[Any, int, Repo]] = [(_sort_value(r, q.sort), r.id, r) for r in map(_repo, rows)]
    # Repos changed after the snapshot: place them by the values they had at the snapshot.
    changed = [_repo(r) for r in conn.execute(select(repos).where(*conds, repos.c.change_seq > seq))]
    if changed:
        snapshot = _values_at(conn, [r.id for r in changed], seq)
        for repo in changed:
            value = snapshot.get(repo.id, {}).get(q.sort, _sort_value(repo, q.sort))
            if q.cursor is None or (value, repo.id) < (q.cursor.value, q.cursor.last_id):
                candidates.append((value, repo.id, repo))
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    page = candidates[: q.limit]
    if len(candidates) > q.limit:
        value, last_id, _ = page[-1]
        return [c[2] for c in page], Cursor(seq, value, last_id)
    return [c[2] for c in page], None


def _values_at(conn: Connection, repo_ids: list[int], seq: int) -> dict[int, dict[str, Any]]:
    """Each repo's sort values as of ``seq``: the oldest logged values replaced after it."""
    out: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        select(repo_sort_log)
        .where(repo_sort_log.c.repo_id.in_(repo_ids), repo_sort_log.c.seq > seq)
        .order_by(repo_sort_log.c.repo_id, repo_sort_log.c.seq)
    )
    for row in rows:
        if row.repo_id not in out:
            out[row.repo_id] = {
                "lastModified": row.last_modified, "downloads": row.downloads, "likes": row.likes,
                "trendingScore": row.trending_score,
            }
    return out


def tag_counts(conn: Connection, repo_type: str) -> dict[str, int]:
    rows = conn.execute(
        select(repo_tags.c.tag, func.count())
        .select_from(repo_tags.join(repos, repos.c.id == repo_tags.c.repo_id))
        .where(repos.c.type == repo_type, repos.c.private.is_(False))
        .group_by(repo_tags.c.tag)
    )
    return {r[0]: int(r[1]) for r in rows}


def parse_cursor_value(sort: str, raw: Any) -> Any:
    if sort in ("lastModified", "createdAt"):
        return datetime.fromisoformat(str(raw))
    if sort == "trendingScore":
        return float(raw)
    return int(raw)
