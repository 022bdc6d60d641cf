"""Likes and download counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, delete, func, select, update

from modelyard.catalog.database import Database
from modelyard.catalog.search import change_sort_keys
from modelyard.catalog.tables import accounts, download_days, download_marks, likes, repos

DOWNLOAD_WINDOW_DAYS = 30


def like(db: Database, conn: Connection, account_id: int, repo_id: int, now: datetime) -> bool:
    """Like a repo; False if it was liked already."""
    stmt = db.insert_ignore(likes).returning(likes.c.repo_id)  # a row comes back only if inserted
    inserted = conn.execute(stmt, {"account_id": account_id, "repo_id": repo_id, "created_at": now}).first()
    if inserted is None:
        return False
    _refresh_likes(conn, repo_id)
    return True


def unlike(conn: Connection, account_id: int, repo_id: int) -> bool:
    result = conn.execute(delete(likes).where(likes.c.account_id == account_id, likes.c.repo_id == repo_id))
    if result.rowcount != 1:
        return False
    _refresh_likes(conn, repo_id)
    return True


def _refresh_likes(conn: Connection, repo_id: int) -> None:
    count = int(conn.execute(select(func.count()).select_from(likes).where(likes.c.repo_id == repo_id)).scalar_one())
    today = datetime.now(UTC).date()
    change_sort_keys(conn, repo_id, likes=count, trending_score=trending(_week(conn, repo_id, today), count))


def _week(conn: Connection, repo_id: int, today: date) -> int:
    return int(conn.execute(
        select(func.coalesce(func.sum(download_days.c.count), 0))
        .where(download_days.c.repo_id == repo_id, download_days.c.day >= today - timedelta(days=6))
    ).scalar_one())


def likers(conn: Connection, repo_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(accounts.c.name, accounts.c.fullname)
        .join(likes, likes.c.account_id == accounts.c.id)
        .where(likes.c.repo_id == repo_id)
        .order_by(likes.c.created_at.desc(), accounts.c.name)
    )
    return [(r.name, r.fullname) for r in rows]


def liked_repo_ids(conn: Connection, account_id: int) -> list[tuple[int, datetime]]:
    rows = conn.execute(
        select(likes.c.repo_id, likes.c.created_at).where(likes.c.account_id == account_id)
        .order_by(likes.c.created_at.desc())
    )
    return [(r.repo_id, r.created_at) for r in rows]


def add_download_mark(db: Database, conn: Connection, repo_id: int, client: str, period: int) -> bool:
    """Record that ``client`` downloaded ``repo_id`` in ``period``; False if it had already (or
    the repo is gone)."""
    if conn.execute(select(repos.c.id).where(repos.c.id == repo_id)).first() is None:
        return False
    stmt = db.insert_ignore(download_marks).returning(download_marks.c.repo_id)
    return conn.execute(stmt, {"repo_id": repo_id, "client": client, "period": period}).first() is not None


def prune_download_marks(conn: Connection, before_period: int) -> None:
    conn.execute(delete(download_marks).where(download_marks.c.period < before_period))


def count_downloads(db: Database, conn: Connection, repo_id: int, today: date, count: int = 1) -> None:
    """``count`` more downloads today; refresh the 30-day and all-time totals and the trending score."""
    updated = conn.execute(
        update(download_days)
        .where(download_days.c.repo_id == repo_id, download_days.c.day == today)
        .values(count=download_days.c.count + count)
    )
    if updated.rowcount == 0:
        conn.execute(db.insert_ignore(download_days), [{"repo_id": repo_id, "day": today, "count": count}])
    since = today - timedelta(days=DOWNLOAD_WINDOW_DAYS - 1)
    window = conn.execute(
        select(func.coalesce(func.sum(download_days.c.count), 0))
        .where(download_days.c.repo_id == repo_id, download_days.c.day >= since)
    ).scalar_one()
    week = _week(conn, repo_id, today)
    total = conn.execute(select(repos.c.downloads_all_time, repos.c.likes).where(repos.c.id == repo_id)).first()
    if total is None:
        return
    change_sort_keys(
        conn, repo_id, downloads=int(window), downloads_all_time=int(total.downloads_all_time) + count,
        trending_score=trending(int(week), int(total.likes)),
    )


def trending(week_downloads: int, like_count: int) -> float:
    """Recent activity: downloads of the last 7 days plus likes weighted as 10 downloads."""
    return float(week_downloads + 10 * like_count)


def is_liked(conn: Connection, account_id: int, repo_id: int) -> bool:
    return conn.execute(
        select(likes.c.repo_id).where(likes.c.account_id == account_id, likes.c.repo_id == repo_id)
    ).first() is not None


def daily_downloads(conn: Connection, repo_id: int, since: date) -> dict[date, int]:
    """A repo's counted downloads per day from ``since`` on (days without any are absent)."""
    rows = conn.execute(
        select(download_days.c.day, download_days.c.count)
        .where(download_days.c.repo_id == repo_id, download_days.c.day >= since)
    )
    return {r[0]: int(r[1]) for r in rows}
