"""Engines and transactions for SQLite (WAL, one writer) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

T = TypeVar("T")


class Database:
    """One database: ``read()`` for queries, ``write()`` for a transaction that may write.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that writers queue for
    the lock up front instead of failing on upgrade; readers use WAL snapshots and never wait.
    ``quick(work)`` runs the few statements of a hot read path (HEAD and GET of a file, token
    checks) with no transaction around them on PostgreSQL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._read = self._sqlite_engine(url, immediate=False)
            self._write = self._sqlite_engine(url, immediate=True)
        else:
            # Writers use READ COMMITTED, so a compare-and-swap that lost a race re-reads the row
            # and updates nothing; readers get one snapshot per transaction (REPEATABLE READ).
            self._write = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self._read = create_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True, isolation_level="REPEATABLE READ"
            )
            # Each statement its own snapshot: no BEGIN, no ROLLBACK and no ping on checkout (a
            # stale connection is retried once instead, ``quick``): one round trip per statement.
            self._quick = create_engine(url, pool_size=8, max_overflow=8, isolation_level="AUTOCOMMIT")

    @staticmethod
    def _sqlite_engine(url: str, immediate: bool) -> Engine:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @property
    def engine(self) -> Engine:
        return self._write

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read.connect() as conn:
            with conn.begin():
                yield conn

    def quick(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` for reads whose statements each stand alone: on PostgreSQL every
        statement sees what is committed when it runs (no snapshot across them), in one round
        trip; on SQLite a read transaction (as cheap there). ``work`` must only read, and must
        be safe to run twice: a connection the server closed is replaced and ``work`` run again."""
        if self.is_sqlite:
            with self.read() as conn:
                return work(conn)
        for attempt in (1, 2):
            try:
                with self._quick.connect() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write.begin() as conn:
            yield conn

    def insert_ignore(self, table: Table) -> Insert:
        """An INSERT that silently skips rows whose primary key exists."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def dispose(self) -> None:
        self._read.dispose()
        if not self.is_sqlite:
            self._quick.dispose()
        if self._write is not self._read:
            self._write.dispose()
