"""Sends webhook deliveries: one asyncio loop in a thread, one lane per webhook.

The ``webhook_deliveries`` rows are the durable truth (``catalog/webhooks.py``); this sender is
only the hands. A huey job fans an event out into rows and calls ``wake``; the loop also looks
for due work every ``webhook_poll_interval`` seconds, which is what picks up retries whose time
has come, deliveries fanned out by another process (``modelyard worker``), and deliveries a dead
process had leased (its lease expires). Each webhook gets at most one lane (an asyncio task): it
claims the webhook's oldest due deliveries, posts them in order over one keep-alive connection,
and records the attempts in one batch. A receiver therefore gets a webhook's events in order, and
a receiver that hangs or refuses only holds up its own lane: others go on, and no request or huey
thread ever waits on a target. A failed attempt is retried after ``retry_delay * 2**n`` seconds
(capped), up to ``webhook_max_attempts``; later deliveries of that webhook wait behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from modelyard.catalog import webhooks as webhooks_q
from modelyard.catalog.webhooks import Attempt, Delivery, LeaseLostError, Target
from modelyard.services.webhook_http import Http1Connection, WebhookHttpError

if TYPE_CHECKING:
    from modelyard.services.hub import Hub

log = logging.getLogger("modelyard.webhooks")
BATCH = 100
USER_AGENT = "modelyard-webhooks/1"


def backoff(settings_delay: float, cap: float, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (1, 2, 4 ... capped)."""
    return float(min(cap, settings_delay * 2 ** max(0, attempts - 1)))


class WebhookSender:
    """The process's delivery loop (started by servers and workers, see ``Jobs.start``)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._lanes: dict[int, asyncio.Task[None]] = {}

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(ready,), name="modelyard-webhooks", daemon=True)
        self._thread.start()
        ready.wait(10)

    def wake(self) -> None:
        """New deliveries are in the database: look now rather than at the next poll."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def close(self) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    # -- the loop -----------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        assert self._wake is not None
        poll = self._hub.settings.webhook_poll_interval
        while not self._stopping:
            try:
                await self._start_lanes()
            except Exception:
                log.exception("looking for webhook deliveries failed; retrying later")
            with contextlib.suppress(TimeoutError):  # a timeout is the poll
                await asyncio.wait_for(self._wake.wait(), poll)
            self._wake.clear()
        lanes = list(self._lanes.values())
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)

    async def _start_lanes(self) -> None:
        from modelyard.services.hub import utcnow

        def busy() -> list[int]:
            with self._hub.db.read() as conn:
                return webhooks_q.busy_webhooks(conn, utcnow())

        for webhook_id in await asyncio.to_thread(busy):
            if webhook_id not in self._lanes:
                task = asyncio.create_task(self._lane(webhook_id))
                self._lanes[webhook_id] = task
                task.add_done_callback(self._lane_ended)

    def _lane_ended(self, task: asyncio.Task[None]) -> None:
        for webhook_id, lane in list(self._lanes.items()):
            if lane is task:
                del self._lanes[webhook_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("a webhook delivery lane failed; the next poll starts it again", exc_info=task.exception())

    async def _lane(self, webhook_id: int) -> None:
        """Send the webhook's due deliveries in order until none is due; then the lane ends."""
        # One kept-alive connection per lane through a client made for this (webhook_http.py):
        # the sender's one thread is what bounds the throughput of every lane.
        client: Http1Connection | None = None
        client_url = ""
        try:
            while not self._stopping:
                claimed = await asyncio.to_thread(self._claim, webhook_id)
                if claimed is None:
                    return
                target, batch = claimed
                if not batch:
                    return
                if client is None or client_url != target.url:
                    if client is not None:
                        client.close()
                    client, client_url = Http1Connection(target.url, USER_AGENT), target.url
                await self._send_batch(client, target, batch)
        finally:
            if client is not None:
                client.close()

    def _lease(self) -> timedelta:
        return timedelta(seconds=2 * self._hub.settings.webhook_timeout + 5)

    def _claim(self, webhook_id: int) -> tuple[Target, list[Delivery]] | None:
        from modelyard.services.hub import utcnow

        try:
            with self._hub.db.write() as conn:
                target = webhooks_q.target(conn, webhook_id)
                if target is None:
                    return None
                taken, _next = webhooks_q.claim(conn, webhook_id, utcnow(), self._lease(), BATCH)
                return target, taken
        except LeaseLostError:
            return None

    async def _send_batch(self, client: Http1Connection, target: Target, batch: list[Delivery]) -> None:
        """Post the batch in order; stop at the first failure (its retry keeps the order)."""
        from modelyard.services.hub import utcnow

        settings = self._hub.settings
        attempts: list[Attempt] = []
        outcomes: dict[int, tuple[str, datetime | None]] = {}
        renewed = time.monotonic()
        done = 0
        for delivery in batch:
            if self._stopping:
                break
            if time.monotonic() - renewed > self._lease().total_seconds() / 2:
                rest = [d.id for d in batch[done:]]
                await asyncio.to_thread(self._renew, rest)
                renewed = time.monotonic()
            attempt = await self._post(client, target, delivery)
            attempts.append(attempt)
            done += 1
            number = delivery.attempts + 1
            ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
            if ok:
                outcomes[delivery.id] = ("succeeded", None)
                continue
            if number >= settings.webhook_max_attempts:
                outcomes[delivery.id] = ("failed", None)
                continue  # given up: the next one may go
            wait = backoff(settings.webhook_retry_delay, settings.webhook_retry_cap, number)
            outcomes[delivery.id] = ("pending", utcnow() + timedelta(seconds=wait))
            break
        unsent = [d.id for d in batch[done:]]
        await asyncio.to_thread(self._record, attempts, outcomes, unsent)
        for status, when in outcomes.values():
            if status == "pending" and when is not None:
                self._retry_later(when)

    def _retry_later(self, when: datetime) -> None:
        """Wake the loop when a retry falls due (sooner than the next poll, if it is)."""
        from modelyard.services.hub import utcnow

        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - utcnow()).total_seconds())
        loop.call_later(delay + 0.01, self.wake)

    def _renew(self, delivery_ids: list[int]) -> None:
        from modelyard.services.hub import utcnow

        with self._hub.db.write() as conn:
            webhooks_q.renew(conn, delivery_ids, utcnow() + self._lease())

    def _record(
        self, attempts: list[Attempt], outcomes: dict[int, tuple[str, datetime | None]], unsent: list[int],
    ) -> None:
        from modelyard.services.hub import utcnow

        with self._hub.db.write() as conn:
            webhooks_q.record(conn, attempts, outcomes, utcnow())
            webhooks_q.release(conn, unsent)

    async def _post(self, client: Http1Connection, target: Target, delivery: Delivery) -> Attempt:
        """One attempt: the address is resolved and checked again now (DNS may have changed since
        creation), and the connection goes to the address that was checked."""
        from modelyard.services.hub import utcnow

        started_at = utcnow()
        start = time.monotonic()
        status: int | None = None
        error: str | None = None
        settings = self._hub.settings
        try:
            address, why = await self._address(client.host)
            if why or address is None:
                error = f"refused: {why}"
            else:
                headers = {"Content-Type": "application/json"}
                if target.secret:
                    headers["X-Webhook-Secret"] = target.secret
                code, content = await asyncio.wait_for(  # the whole attempt, however the target trickles
                    client.post(address, delivery.payload.encode(), headers), settings.webhook_timeout)
                status = code
                if not 200 <= code < 300:
                    error = f"HTTP {code}: {content[:200].decode(errors='replace')}"
        except TimeoutError:
            client.close()  # the answer may still come: never read it as the next one's
            error = f"timeout: no answer within {settings.webhook_timeout:g} s"
        except (OSError, asyncio.IncompleteReadError, WebhookHttpError, ValueError) as exc:
            client.close()
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency = int((time.monotonic() - start) * 1000)
        return Attempt(delivery.id, delivery.attempts + 1, started_at, status, latency, error)

    async def _address(self, host: str) -> tuple[str | None, str | None]:
        """(the address to connect to, None) or (None, why it is refused)."""
        try:
            infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
                                           self._hub.settings.webhook_connect_timeout)
        except (OSError, TimeoutError) as exc:
            return None, f"{host} does not resolve: {exc}"
        addresses = [str(info[4][0]).split("%", 1)[0] for info in infos]
        if not addresses:
            return None, f"{host} does not resolve"
        if not self._hub.settings.webhook_allow_private_targets:
            for text in addresses:
                address = ipaddress.ip_address(text)
                if not address.is_global or address.is_multicast:
                    return None, f"{host} resolves to {address}, a loopback, link-local or private address"
        return addresses[0], None
