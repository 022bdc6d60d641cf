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
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.services.hub import Hub, utcnow

log = logging.getLogger("modelyard.events")
DEFAULT_REF = "refs/heads/main"
#: Pending events of a repo fanned out into webhook deliveries together (services/webhooks.py).
FAN_OUT_BATCH = 200


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
    """Do what an event calls for, then mark it done; raises (so the queue retries) on failure.
    Webhook deliveries are made in the transaction that marks it done."""
    # A job handles its repo's pending events together, so the jobs queued for the others often
    # find them done: a read says so without waiting for the write lock. (Not cached by id: a
    # deleted repo's events go with it and SQLite may hand their ids out again.)
    with hub.db.read() as conn:
        seen = events_q.get(conn, event_id)
    if seen is None or seen.done_at is not None:
        return
    with hub.db.write() as conn:
        event = events_q.get(conn, event_id)
        if event is None or event.done_at is not None:
            return  # done already, or its repo was deleted
        indexing = _indexing(event)
        if not indexing:  # webhooks only (and scans queued): the whole job is this one transaction
            hooked, scans = _deliver(hub, conn, event)
        else:
            events_q.started(conn, event_id, utcnow(), timedelta(seconds=hub.settings.job_lease))
    if not indexing:
        _after(hub, hooked, scans)
        return
    from modelyard.services.commits import refresh_used_storage
    from modelyard.services.git import make_clone_pack
    from modelyard.services.indexer import index_repo

    try:
        if event.kind == "pack":
            make_clone_pack(hub, event.repo_id)
        elif event.kind == "mirror":  # a scheduled sync of a mirror with its upstream
            from modelyard.services.mirror import sync_job

            sync_job(hub, event.repo_id)
        else:
            index_repo(hub, event.repo_id, force=event.kind == "repo")
            refresh_used_storage(hub, event.repo_id)
    except Exception:
        log.warning("event %s of repo %s: refreshing the catalog failed (attempt %s); it is retried",
                    event_id, event.repo_id, event.attempts + 1, exc_info=True)
        raise
    with hub.db.write() as conn:
        hooked, scans = _deliver(hub, conn, event)
    _after(hub, hooked, scans)


def _after(hub: Hub, hooked: bool, scans: list[str]) -> None:
    """Once the transaction that finished events has committed: post their deliveries, run the
    scans they queued."""
    if hooked:
        hub.webhook_sender.wake()
    if scans:
        from modelyard.services.scans import enqueue

        enqueue(hub, scans)


def _indexing(event: events_q.Event) -> bool:
    """Whether the event calls for more than webhooks (the catalog; a clone pack)."""
    return event.kind in ("repo", "pack", "mirror") or event.ref == DEFAULT_REF


def _deliver(hub: Hub, conn: Connection, event: events_q.Event) -> tuple[bool, list[str]]:
    """The webhook deliveries of ``event`` and, in the same go, of its repo's other pending events
    (oldest first, so every webhook gets them in order): fan-out costs a few statements per batch
    rather than per event. The event is marked done, and so are the pending events that call for
    nothing but webhooks (their own jobs then find them done): a kind that gets more work here
    must be added to ``_indexing``. The files the finished events' ref moves bring in are queued
    for scanning. Whether deliveries were made (wake the sender after commit), and the scans queued."""
    from modelyard.services.scans import queue_for_events
    from modelyard.services.webhooks import fan_out_events

    # The repo's row lock first, as its deletion takes it: the two never fan out one event at once.
    refs_q.lock(conn, event.repo_id)
    repo = repos_q.get_by_id(conn, event.repo_id)
    batch = events_q.pending_for_repo(conn, event.repo_id, FAN_OUT_BATCH)
    if event.id not in {e.id for e in batch}:
        batch.append(event)
    hooked = repo is not None and fan_out_events(hub, conn, repo, batch)
    finished = [e for e in batch if e.id == event.id or not _indexing(e)]
    events_q.done_many(conn, [e.id for e in finished], utcnow())
    moves = [(e.old, e.new) for e in finished if e.kind == "ref"]
    if any(e.kind == "repo" for e in finished):  # a new repo's first commit has no ref event
        moves.append((None, refs_q.get(conn, event.repo_id, DEFAULT_REF)))
    scans = [] if repo is None else queue_for_events(hub, conn, repo.id, moves)
    return hooked, scans
