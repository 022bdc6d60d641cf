"""Discussions and pull requests: threads, their events and the edit history of comments.

Listing a page and reading a thread each cost a fixed number of statements whatever their size:
the authors' names come in the same statement as the rows (an outer join on ``accounts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.sql import ColumnElement

from modelyard.catalog.tables import accounts, discussion_comment_edits, discussion_events, discussions


@dataclass(frozen=True)
class Thread:
    id: int
    repo_id: int
    num: int
    title: str
    is_pull_request: bool
    status: str  # open | closed | merged | draft
    author_id: int | None
    author: str | None
    created_at: datetime
    base_ref: str | None
    merge_commit: str | None


@dataclass(frozen=True)
class ThreadEvent:
    id: int
    type: str  # comment | status-change | commit | title-change
    author_id: int | None
    author: str | None
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class CommentVersion:
    event_id: int
    author: str | None
    raw: str
    html: str
    created_at: datetime


_THREAD = select(discussions, accounts.c.name.label("author_name")).select_from(
    discussions.outerjoin(accounts, accounts.c.id == discussions.c.author_id)
)


def _thread(row: Any) -> Thread:
    return Thread(row.id, row.repo_id, row.num, row.title, bool(row.is_pull_request), row.status, row.author_id,
                  row.author_name, row.created_at, row.base_ref, row.merge_commit)


def get(conn: Connection, repo_id: int, num: int, for_update: bool = False) -> Thread | None:
    stmt = _THREAD.where(discussions.c.repo_id == repo_id, discussions.c.num == num)
    if for_update:
        # PostgreSQL: writers of one thread take turns (SQLite has one writer anyway). NO KEY
        # UPDATE: rows inserted with a key pointing at the thread (a commit's event, taken under
        # the repo's lock) never wait for it, so no writer waits in a cycle.
        stmt = stmt.with_for_update(of=discussions, key_share=True)
    row = conn.execute(stmt).first()
    return None if row is None else _thread(row)


def next_num(conn: Connection, repo_id: int) -> int:
    """The next thread number of a repo; the caller holds the repo's row lock (``refs.lock``), and
    the unique (repo, num) constraint refuses a duplicate in any case."""
    current = conn.execute(select(func.max(discussions.c.num)).where(discussions.c.repo_id == repo_id)).scalar()
    return int(current or 0) + 1


def create(
    conn: Connection, repo_id: int, num: int, title: str, is_pull_request: bool, status: str,
    author_id: int | None, now: datetime, base_ref: str | None = None,
) -> int:
    result = conn.execute(insert(discussions).values(
        repo_id=repo_id, num=num, title=title, is_pull_request=is_pull_request, status=status,
        author_id=author_id, created_at=now, base_ref=base_ref,
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def update_thread(conn: Connection, thread_id: int, **values: Any) -> None:
    conn.execute(update(discussions).where(discussions.c.id == thread_id).values(**values))


def _filters(
    repo_id: int, pull_requests: bool | None, statuses: tuple[str, ...] | None, author_id: int | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [discussions.c.repo_id == repo_id]
    if pull_requests is not None:
        where.append(discussions.c.is_pull_request == pull_requests)
    if statuses is not None:
        where.append(discussions.c.status.in_(statuses))
    if author_id is not None:
        where.append(discussions.c.author_id == author_id)
    return where


def page(
    conn: Connection, repo_id: int, offset: int, limit: int, pull_requests: bool | None = None,
    statuses: tuple[str, ...] | None = None, author_id: int | None = None,
) -> tuple[list[Thread], int]:
    """One page of a repo's threads, newest first, and how many match in all: two statements."""
    where = _filters(repo_id, pull_requests, statuses, author_id)
    total = conn.execute(select(func.count()).select_from(discussions).where(*where)).scalar_one()
    rows = conn.execute(_THREAD.where(*where).order_by(discussions.c.num.desc()).limit(limit).offset(offset))
    return [_thread(r) for r in rows], int(total)


_EVENTS = select(discussion_events, accounts.c.name.label("author_name")).select_from(
    discussion_events.outerjoin(accounts, accounts.c.id == discussion_events.c.author_id)
)


def _event(row: Any) -> ThreadEvent:
    return ThreadEvent(row.id, row.type, row.author_id, row.author_name, row.created_at, json.loads(row.data))


def events(conn: Connection, thread_id: int) -> list[ThreadEvent]:
    rows = conn.execute(_EVENTS.where(discussion_events.c.discussion_id == thread_id).order_by(discussion_events.c.id))
    return [_event(r) for r in rows]


def event(conn: Connection, thread_id: int, event_id: int) -> ThreadEvent | None:
    row = conn.execute(_EVENTS.where(
        discussion_events.c.discussion_id == thread_id, discussion_events.c.id == event_id)).first()
    return None if row is None else _event(row)


def add_event(
    conn: Connection, thread_id: int, type_: str, author_id: int | None, now: datetime, data: dict[str, Any],
) -> int:
    result = conn.execute(insert(discussion_events).values(
        discussion_id=thread_id, type=type_, author_id=author_id, created_at=now, data=json.dumps(data),
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def set_event_data(conn: Connection, event_id: int, data: dict[str, Any]) -> None:
    conn.execute(update(discussion_events).where(discussion_events.c.id == event_id).values(data=json.dumps(data)))


def add_version(
    conn: Connection, thread_id: int, event_id: int, author_id: int | None, raw: str, html: str, when: datetime,
) -> None:
    """Keep a comment's version that an edit replaces."""
    conn.execute(insert(discussion_comment_edits).values(
        event_id=event_id, discussion_id=thread_id, author_id=author_id, raw=raw, html=html, created_at=when,
    ))


def drop_versions(conn: Connection, event_id: int) -> None:
    conn.execute(delete(discussion_comment_edits).where(discussion_comment_edits.c.event_id == event_id))


def versions(conn: Connection, thread_id: int, event_id: int | None = None) -> list[CommentVersion]:
    """Earlier versions of a thread's comments (or of one comment), newest first: one statement."""
    stmt = select(discussion_comment_edits, accounts.c.name.label("author_name")).select_from(
        discussion_comment_edits.outerjoin(accounts, accounts.c.id == discussion_comment_edits.c.author_id)
    ).where(discussion_comment_edits.c.discussion_id == thread_id)
    if event_id is not None:
        stmt = stmt.where(discussion_comment_edits.c.event_id == event_id)
    rows = conn.execute(stmt.order_by(discussion_comment_edits.c.id.desc()))
    return [CommentVersion(r.event_id, r.author_name, r.raw, r.html, r.created_at) for r in rows]


def author_of_pr(conn: Connection, repo_id: int, num: int) -> tuple[int | None, str] | None:
    """The author and status of pull request ``num`` (None if there is no such pull request)."""
    row = conn.execute(select(discussions.c.author_id, discussions.c.status).where(
        discussions.c.repo_id == repo_id, discussions.c.num == num, discussions.c.is_pull_request.is_(True),
    )).first()
    return None if row is None else (row.author_id, row.status)


def names(conn: Connection, account_ids: list[int]) -> dict[int, str]:
    if not account_ids:
        return {}
    rows = conn.execute(select(accounts.c.id, accounts.c.name).where(accounts.c.id.in_(account_ids)))
    return {r.id: r.name for r in rows}
