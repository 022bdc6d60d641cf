"""Background jobs: the work that follows an event runs on one shared queue (huey).

A change that needs follow-up work (a ref moved, a repo was created or renamed) records an
*event* in its own transaction (``catalog/events.py``), then enqueues a job for it once the
transaction has committed. The job does what the event calls for — today the catalog entry and
the storage accounting of the repo's default branch — and marks the event done. Jobs are
idempotent (they recompute from the repo as it is now), retried with backoff by the queue, and
an event whose job was lost (a crash while it ran, a failed enqueue) is enqueued again by the
sweeper, so the work is done at least once, whatever happens.

The queue (docs/architecture.md says why huey): ``SqliteHuey`` in ``<data_dir>/queue.db`` on the
embedded default, ``PostgresHuey`` in the hub's PostgreSQL database when the hub runs on it
(``LISTEN/NOTIFY``, ``SKIP LOCKED``: shared by any number of servers), or Redis
(``MODELYARD_QUEUE_URL=redis://...``). Every server process consumes it with a few threads
(``EmbeddedConsumer``); ``modelyard worker`` runs a consumer on its own.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.engine import make_url

from modelyard.catalog import events as events_q
from modelyard.config import Settings
from modelyard.services.pools import lower_priority

if TYPE_CHECKING:
    from modelyard.services.hub import Hub

log = logging.getLogger("modelyard.jobs")
#: Retries of one job by the queue, first delay and factor (2, 4, 8 ... 512 s: about 17 min);
#: after that the sweeper keeps enqueueing the event again.
RETRIES = 9
RETRY_DELAY = 2
RETRY_BACKOFF = 2


def open_queue(settings: Settings) -> Huey:
    """The queue for these settings (nothing is connected or created until it is used)."""
    url = settings.queue_url or settings.resolved_database_url()
    common: dict[str, Any] = {"results": False, "utc": True}
    if url.startswith("redis"):
        return RedisHuey("modelyard", url=url, **common)
    if url.startswith("postgresql"):
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresHuey("modelyard", dsn=dsn, table_prefix="huey", **common)
    if url.startswith("sqlite"):
        # Its own file: the queue's writes never wait for the catalog's write lock (or hold it).
        path = url.split("///", 1)[1] if settings.queue_url else str(settings.data_dir / "queue.db")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("modelyard", filename=path, **common)
    raise ValueError(f"Unsupported queue URL {url!r}: use sqlite:///..., postgresql://... or redis://...")


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer in threads of a process that owns its signals (the web server)."""

    def _set_signal_handlers(self) -> None:
        pass  # SIGINT/SIGTERM stay uvicorn's: it stops the consumer in its shutdown


class Jobs:
    """The queue of one process, its event job, and (in servers) its consumer and sweeper."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._queue: Huey | None = None
        self._handle: Any = None
        self._scan: Any = None
        self._consumer: EmbeddedConsumer | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    @property
    def queue(self) -> Huey:
        with self._lock:
            if self._queue is None:
                queue = open_queue(self._hub.settings)
                self._handle = queue.task(
                    retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF, name="handle_event",
                )(self._run_event)
                self._scan = queue.task(
                    retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF, name="scan_files",
                )(self._run_scans)
                self._queue = queue
            return self._queue

    def enqueue(self, event_id: int) -> None:
        """Queue the job of an event whose transaction has committed (best effort: the sweeper
        enqueues it later if this fails)."""
        try:
            _ = self.queue
            self._handle(event_id)
        except Exception:
            log.exception("could not enqueue event %s; the sweeper will", event_id)

    def enqueue_scans(self, keys: list[str]) -> None:
        """Queue the scans of these contents (``services/scans.py``), best effort like ``enqueue``:
        a scan whose job is lost is enqueued again by the sweeper once its lease has passed."""
        try:
            _ = self.queue
            self._scan(keys)
        except Exception:
            log.exception("could not enqueue %s scans; the sweeper will", len(keys))

    def _run_scans(self, keys: list[str]) -> None:
        from modelyard.services.scans import run_scans

        lower_priority()
        run_scans(self._hub, keys)

    def _run_event(self, event_id: int) -> None:
        from modelyard.services.events import handle_event

        lower_priority()  # background work yields the CPU to requests (services/pools.py)
        handle_event(self._hub, event_id)

    # -- consuming (servers) ------------------------------------------------------------------

    def start(self) -> None:
        """Consume the queue in this process (threads) and sweep lost events now and then."""
        settings = self._hub.settings
        if self._consumer is not None or settings.job_threads <= 0:
            return
        consumer = EmbeddedConsumer(
            self.queue, workers=settings.job_threads, worker_type="thread", periodic=False,
            initial_delay=0.05, backoff=1.5, max_delay=settings.job_poll_interval, check_worker_health=True,
        )
        consumer.start()
        self._consumer = consumer
        self._hub.webhook_sender.start()  # posts the deliveries the event jobs make
        self._stop.clear()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="modelyard-sweeper", daemon=True)
        self._sweeper.start()
        self._start_mirror_timer()

    def _start_mirror_timer(self) -> None:
        """Scheduled syncs of mirrors (``upstream_sync_interval``), as ``mirror`` events on this queue."""
        settings = self._hub.settings
        if settings.upstream_url is None or settings.upstream_sync_interval <= 0:
            return
        threading.Thread(target=self._mirror_loop, name="modelyard-mirror-timer", daemon=True).start()

    def _mirror_loop(self) -> None:
        from modelyard.services.mirror import schedule_syncs

        while not self._stop.wait(self._hub.settings.upstream_sync_interval):
            try:
                schedule_syncs(self._hub)
            except Exception:
                log.exception("scheduling mirror syncs failed; retrying later")

    def run_forever(self) -> None:
        """``modelyard worker``: consume until interrupted (signals handled by huey)."""
        settings = self._hub.settings
        consumer = Consumer(self.queue, workers=max(1, settings.job_threads), worker_type="thread",
                            periodic=False, initial_delay=0.05, backoff=1.5, max_delay=settings.job_poll_interval)
        self._stop.clear()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="modelyard-sweeper", daemon=True)
        self._sweeper.start()
        self._start_mirror_timer()
        self._hub.webhook_sender.start()
        try:
            consumer.run()
        finally:
            self._stop.set()
            self._hub.webhook_sender.close()

    def sweep(self) -> int:
        """Enqueue again the events (and file scans) whose job should have finished by now; how many."""
        from modelyard.services.hub import utcnow

        with self._hub.db.write() as conn:
            stale = events_q.claim_stale(conn, utcnow(), timedelta(seconds=self._hub.settings.job_lease))
        for event_id in stale:
            self.enqueue(event_id)
        from modelyard.services.scans import sweep as sweep_scans

        return len(stale) + sweep_scans(self._hub)

    def _sweep_loop(self) -> None:
        interval = self._hub.settings.job_sweep_interval
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:
                log.exception("sweeping lost events failed; retrying later")

    def close(self) -> None:
        self._stop.set()
        self._hub.webhook_sender.close()
        if self._sweeper is not None:
            self._sweeper.join(10)
            self._sweeper = None
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        if self._queue is not None:
            self._queue.storage.close()
