"""What follows an event: the job body, run by ``services/jobs.py`` on the queue.

A ref change of the default branch, a new repo or a renamed one refreshes the repo's catalog
entry (cards, tags, parameters, lineage, search text) and its storage accounting. Both are
recomputed from the repo as it is when the job runs, so running a job twice, late, or after a
newer event's job is harmless, and the last job to run leaves the entry matching the head.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from modelyard.catalog import events as events_q
from modelyard.services.hub import Hub, utcnow

log = logging.getLogger("modelyard.events")
DEFAULT_REF = "refs/heads/main"


def new_event(
    hub: Hub, conn: Connection, repo_id: int, kind: str, ref: str | None = None, old: str | None = None,
    new: str | None = None, actor_id: int | None = None, data: dict[str, Any] | None = None,
) -> int:
    """Record an event in the writer's transaction (then ``record_and_enqueue`` after it commits);
    ``data`` is what the event's jobs need beyond the ref (JSON-serialisable)."""
    lease = timedelta(seconds=hub.settings.job_lease)
    return events_q.record(conn, repo_id, kind, utcnow(), ref, old, new, actor_id, retry_after=lease, data=data)


def record_and_enqueue(hub: Hub, event_id: int | None) -> None:
    """After the transaction that recorded ``event_id`` has committed: queue its job."""
    if event_id is not None:
        hub.jobs.enqueue(event_id)


def handle_event(hub: Hub, event_id: int) -> None:
    """Do what an event calls for, then mark it done; raises (so the queue retries) on failure."""
    with hub.db.write() as conn:
        event = events_q.get(conn, event_id)
        if event is None or event.done_at is not None:
            return  # done already, or its repo was deleted
        events_q.started(conn, event_id, utcnow(), timedelta(seconds=hub.settings.job_lease))
    if event.kind == "repo" or event.ref == DEFAULT_REF:
        from modelyard.services.commits import refresh_used_storage
        from modelyard.services.indexer import index_repo

        try:
            index_repo(hub, event.repo_id, force=event.kind == "repo")
            refresh_used_storage(hub, event.repo_id)
        except Exception:
            log.warning("event %s of repo %s: refreshing the catalog failed (attempt %s); it is retried",
                        event_id, event.repo_id, event.attempts + 1, exc_info=True)
            raise
    from modelyard.services.webhooks import deliver_event

    deliver_event(hub, event)  # webhook deliveries: idempotent (one per event and webhook)
    with hub.db.write() as conn:
        events_q.done(conn, event_id, utcnow())
