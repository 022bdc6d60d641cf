"""Rate limits per token (or per address, for anonymous callers), shared across servers.

Three groups with a limit each (``MODELYARD_RATE_LIMIT_API``, ``_RESOLVE``, ``_UPLOADS``: a
``limits`` string such as ``1000/minute``, or ``none``): ``/api`` routes, file downloads
(``/resolve``), and the routes that receive uploads (LFS, Xet, commits, git pushes). Counting is
the ``limits`` library's sliding-window counter in its storage (``MODELYARD_RATE_LIMIT_STORAGE``:
``memory://`` for one process, ``redis://host:port/db`` to share the counts between worker
processes and servers; each process then counts a busy caller's requests a batch at a time, one
round trip per batch, see ``RateLimiter._batch``). A request past its group's limit gets 429 with
``Retry-After`` (which huggingface_hub waits for, then retries) and the draft-standard
``RateLimit`` headers.

Who is counted: the request's credentials (a hash of its ``Authorization`` header), else its
network address: the peer, or behind a trusted proxy (``MODELYARD_TRUST_PROXY_HEADERS``) the
last ``X-Forwarded-For`` hop, the one the proxy itself added; hops before it are the client's
own words and are never used. If the storage fails, requests are let through (and the failure
logged): limits protect the hub, they must not take it down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from modelyard.config import Settings
from modelyard.errors import InvalidInputError

log = logging.getLogger("modelyard.ratelimit")
GROUPS = ("api", "resolve", "uploads")
#: Seconds between two log lines about a failing storage.
FAILURE_LOG_INTERVAL = 30.0
#: With a shared storage (Redis), a process counts up to MAX_BATCH requests of a caller in one
#: round trip (a limit's amount / BATCH_DIVISOR, so limits under 200 are counted one by one) and
#: lets that many through within HOLD_SECONDS; unused ones stay counted (stricter, never looser).
MAX_BATCH = 20
BATCH_DIVISOR = 100
HOLD_SECONDS = 1.0
MAX_HELD = 100_000


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: its group, the limit, and when to come back."""

    group: str
    limit: RateLimitItem
    retry_after: int

    @property
    def message(self) -> str:
        return (f"Rate limit reached: {self.limit.amount} {self.group} requests per "
                f"{self.limit.multiples} {self.limit.GRANULARITY.name}(s); retry in {self.retry_after} s")

    def headers(self) -> dict[str, str]:
        window = self.limit.get_expiry()
        return {
            "Retry-After": str(self.retry_after),
            "RateLimit": f'"{self.group}";r=0;t={self.retry_after}',
            "RateLimit-Policy": f'"sliding window";"{self.group}";q={self.limit.amount};w={window}',
        }


def parse_limit(value: str, setting: str) -> RateLimitItem | None:
    if value.strip().lower() in ("", "none", "off"):
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInputError(f"{setting}: {value!r} is not a rate limit such as '1000/minute'") from exc


def client_address(peer: str, forwarded_for: str | None, trust_proxy: bool) -> str:
    """The caller's network address: the peer, or behind a trusted proxy the last
    ``X-Forwarded-For`` hop (the one the proxy added; earlier hops are the client's own words).
    What rate limits, the audit log and download counts know a caller by."""
    if trust_proxy and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return peer


def key_for(authorization: str | None, address: str) -> str:
    """Whom a request counts against: its credentials, else its address."""
    if authorization:
        return "t:" + hashlib.sha256(authorization.strip().encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return "a:" + address


def caller_key(authorization: str | None, peer: str, forwarded_for: str | None, trust_proxy: bool) -> str:
    """``key_for`` from the request's raw parts."""
    return key_for(authorization, client_address(peer, forwarded_for, trust_proxy))


class RateLimiter:
    """The limits of one server process. Made once per process; its storage binds to the event
    loop of the first request (async storages), so ``check`` must be awaited on that loop."""

    def __init__(self, settings: Settings) -> None:
        self.limits: dict[str, RateLimitItem] = {}
        for group in GROUPS:
            item = parse_limit(getattr(settings, f"rate_limit_{group}"), f"MODELYARD_RATE_LIMIT_{group.upper()}")
            if item is not None:
                self.limits[group] = item
        self._url = settings.rate_limit_storage
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._failed_at = 0.0
        #: ``(group, key) -> (requests already counted in the storage, until when they may be used)``
        self._held: dict[tuple[str, str], tuple[int, float]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.limits)

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._strategy is None:
            url = self._url if self._url.startswith("async+") else f"async+{self._url}"
            options: dict[str, Any] = {"implementation": "redispy"} if "redis" in url else {}
            self._strategy = SlidingWindowCounterRateLimiter(storage_from_string(url, **options))
        return self._strategy

    async def check(self, group: str, key: str) -> Refusal | None:
        """Count one request of ``key`` in ``group``; a Refusal when it is past the limit."""
        item = self.limits.get(group)
        if item is None:
            return None
        batch = self._batch(item)
        now = time.monotonic()
        if batch > 1:
            held = self._held.get((group, key))
            if held is not None and held[0] > 0 and held[1] > now:
                self._held[(group, key)] = (held[0] - 1, held[1])
                return None
        limiter = self._limiter()
        try:
            if batch > 1 and await limiter.hit(item, group, key, cost=batch):
                self._hold(group, key, batch - 1, now)
                return None
            if await limiter.hit(item, group, key):
                return None
            stats = await limiter.get_window_stats(item, group, key)
        except Exception:  # the storage is down: let the request through, say so now and then
            if now - self._failed_at > FAILURE_LOG_INTERVAL:
                self._failed_at = now
                log.warning("rate limit storage %s failed; requests are not limited meanwhile", self._url,
                            exc_info=True)
            return None
        return Refusal(group, item, max(1, math.ceil(stats.reset_time - time.time())))

    async def close(self) -> None:
        """Close the storage's connections (Redis), on the loop that opened them."""
        client = getattr(getattr(getattr(self._strategy, "storage", None), "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()
        self._strategy = None

    def _batch(self, item: RateLimitItem) -> int:
        """Requests counted per round trip to a shared storage: one for small limits (exact), up
        to ``MAX_BATCH`` for large ones; in memory every request is counted on its own."""
        if self._url.startswith(("memory", "async+memory")):
            return 1
        return max(1, min(MAX_BATCH, item.amount // BATCH_DIVISOR))

    def _hold(self, group: str, key: str, count: int, now: float) -> None:
        if len(self._held) >= MAX_HELD:  # forget the stalest callers first
            for stale in [k for k, (_n, until) in self._held.items() if until <= now] or list(self._held)[:1024]:
                self._held.pop(stale, None)
        self._held[(group, key)] = (count, now + HOLD_SECONDS)
