"""Writes that reads cause, kept off the read path.

A counted download and a token's last-used stamp are facts a *read* produces. Writing them from
the request would make every ``HEAD /resolve`` wait for the database's write lock (one writer at a
time on SQLite). Instead the request adds the fact to this process's memory, and one background
thread folds what has gathered into the database every ``tally_interval`` seconds, in one
transaction.

Downloads count once per client, repo and period (``download_count_period``): the fold inserts a
``download_marks`` row per (repo, client, period) and counts only the rows that were new, so a
client that repeats a request — on this server or on any other sharing the database — adds
nothing, and counts stay exact however the folds interleave.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import signals as signals_q

if TYPE_CHECKING:
    from modelyard.services.hub import Hub

log = logging.getLogger("modelyard.tallies")


def client_key(address: str, token_id: int) -> str:
    """Who counts as one downloader: the network address and the token used (0: anonymous)."""
    return hashlib.sha256(f"{address}|{token_id}".encode()).hexdigest()[:32]


class Tallies:
    """The pending read-side facts of one process, and the thread that folds them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._marks: set[tuple[int, str, int]] = set()
        self._touched: dict[int, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()  # one fold at a time (the thread, or close())

    def count_download(self, repo_pk: int, client: str) -> None:
        period = int(time.time() // self._hub.settings.download_count_period)
        with self._lock:
            self._marks.add((repo_pk, client, period))

    def touch_token(self, token_id: int) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._touched[token_id] = now

    def pending(self) -> int:
        with self._lock:
            return len(self._marks) + len(self._touched)

    def flush(self) -> None:
        """Fold everything pending into the database now (what the thread does periodically)."""
        with self._flush_lock:
            with self._lock:
                marks, self._marks = self._marks, set()
                touched, self._touched = self._touched, {}
            if not marks and not touched:
                return
            try:
                self._write(marks, touched)
            except Exception:
                # Keep them for the next fold (marks are idempotent; stamps only move forward).
                with self._lock:
                    self._marks |= marks
                    for token_id, when in touched.items():
                        self._touched[token_id] = max(when, self._touched.get(token_id, when))
                raise

    def _write(self, marks: set[tuple[int, str, int]], touched: dict[int, datetime]) -> None:
        db = self._hub.db
        today = datetime.now(UTC).date()
        with db.write() as conn:
            # The rows of every repo counted here first, in order, and only then the catalog
            # counter (``search.change_sort_keys``): a commit holds its repo's row and then takes
            # the counter, so taking the counter before a second repo's row could deadlock with it.
            for repo_pk in sorted({repo_pk for repo_pk, _c, _p in marks}):
                refs_q.lock(conn, repo_pk)
            new = Counter(repo_pk for repo_pk, client, period in sorted(marks)
                          if signals_q.add_download_mark(db, conn, repo_pk, client, period))
            for repo_pk, count in sorted(new.items()):
                signals_q.count_downloads(db, conn, repo_pk, today, count)
            if marks:
                oldest = min(period for _r, _c, period in marks) - 1
                signals_q.prune_download_marks(conn, oldest)
            for token_id, when in sorted(touched.items()):
                accounts_q.touch_token(conn, token_id, when)

    def start(self) -> None:
        """Start the folding thread (servers; one-shot commands fold on ``close``)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="modelyard-tallies", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self._hub.settings.tally_interval
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:
                log.exception("folding download counts and token stamps failed; retrying later")

    def close(self) -> None:
        """Stop the thread and fold what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("the last fold of download counts and token stamps failed")
