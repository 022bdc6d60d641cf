"""Prometheus metrics of one server process, served at ``GET /metrics`` (the text format).

Per request: counts by route, method and status; latency by route; bytes in and out by route; the
uploads in flight. At each scrape, read from the shared database and queue: the events whose jobs
have not finished, the queue's waiting jobs, and the bytes the blob store holds (LFS objects and
Xet xorbs and shards). A route is named by its handler (``files.resolve``), never by its path, so
the series stay few whatever the repos are called.

Each process keeps its own counters: run one worker per server (``MODELYARD_WORKERS=1``, as a
cluster behind a load balancer does) and scrape every server, or the counts of a multi-worker
server are those of whichever worker answered the scrape (docs/operations.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelyard.services import health
from modelyard.services.hub import Hub

log = logging.getLogger("modelyard.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Routes whose requests carry a file's bytes (or parts of them) into the hub.
UPLOAD_ROUTES = frozenset({
    "lfs.upload", "lfs.upload_part", "lfs.complete", "lfs.staged", "lfs.staged_parts", "xet.upload_xorb",
    "xet.upload_shard", "xet.shard_v2", "commits.commit", "git.receive_pack", "contribute_pages.upload",
})

#: Latency buckets (seconds): most API calls take milliseconds, uploads and clones seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@functools.lru_cache(maxsize=1024)
def route_name(handler: Any) -> str:
    """``module.function`` of a route's handler (wrapped handlers carry the original's name)."""
    return f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"


class _Shared(Collector):
    """Gauges read from the database and the queue when scraped (every server reports the
    same shared values: take one server's, or the max, in queries)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            facts = health.shared_facts(self._hub)
        except Exception:  # a scrape must not fail because the database is away: /readyz says so
            log.exception("could not read the shared metrics")
            return
        yield GaugeMetricFamily("modelyard_events_pending", "Events whose background job has not finished",
                                value=facts.events_pending)
        yield GaugeMetricFamily("modelyard_queue_depth", "Jobs waiting in the background job queue",
                                value=facts.queue_depth)
        stored = GaugeMetricFamily("modelyard_storage_bytes", "Bytes the blob store holds, by kind",
                                   labels=["kind"])
        for kind, size in facts.storage.items():
            stored.add_metric([kind], size)
        yield stored


class Metrics:
    """The metrics of one app (its own registry: several apps in one test process never clash)."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("modelyard_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("modelyard_http_request_duration_seconds", "Time to answer, body included",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.bytes_in = Counter("modelyard_http_request_bytes", "Request body bytes received", ["route"], registry=r)
        self.bytes_out = Counter("modelyard_http_response_bytes", "Response body bytes sent", ["route"], registry=r)
        self.in_flight = Gauge("modelyard_http_requests_in_flight", "Requests being answered", ["route"], registry=r)
        self.uploads = Gauge("modelyard_uploads_in_flight", "Upload requests being received or stored",
                             ["route"], registry=r)
        r.register(_Shared(hub))

    def observe(self, route: str, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if received:
            self.bytes_in.labels(route).inc(received)
        if sent:
            self.bytes_out.labels(route).inc(sent)

    def render(self) -> bytes:
        return generate_latest(self.registry)
