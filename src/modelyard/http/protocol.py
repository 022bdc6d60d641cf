"""uvicorn's httptools protocol with a cheaper request-body path and limits on hostile connections.

Stock uvicorn appends every piece the socket delivers (up to 256 KiB) to a ``bytearray``, wakes
the application for each piece and hands it over as ``bytes(bytearray)``: two copies and one
event-loop round trip per piece. Receiving 1 GiB that way costs about 0.9 s of CPU on this
machine's cores, as much as hashing it. Here the pieces are kept as they arrive in a list and the
application is woken once ``MESSAGE_SIZE`` bytes are buffered (or the body is complete), then
gets them joined in one copy: about 0.2 s of CPU per GiB (``bench/bench_upload.py``).

Flow control is unchanged in kind: reading pauses once a message's worth is buffered and resumes
when the application asks for more, so a connection holds at most ``MESSAGE_SIZE`` plus one read
of body in memory. Everything else (headers, responses, keep-alive, pipelining, 100-continue,
disconnects) is uvicorn's own code.

Stock uvicorn also lets a client hold a connection open forever and make it buffer any amount of
headers. ``HttpLimits`` bounds that (``tests/integration/test_http_limits.py``):

* header block: more than ``max_header_bytes`` (request target + fields, or raw bytes received
  while the block is incomplete: httptools gathers a field whole before reporting it) or more
  than ``max_headers`` fields -> 431 and close. Chunked trailers count with the headers.
* ``header_timeout``: from the first byte of a request (or from the connection's start) to the end
  of its headers -> 408 if a request was begun, then close. Idle keep-alive connections between
  requests stay under uvicorn's ``timeout_keep_alive``.
* ``body_timeout``: no body bytes for that long -> 408 if nothing was answered yet, then close;
  the application's ``receive()`` returns ``http.disconnect``.
* Neither clock runs while the server keeps reading paused (the application is slow to read, or a
  pipelined request waits) or while the client waits for ``100 Continue``; both restart when the
  server asks for more.
* ``max_connections``: uvicorn's own concurrency check (``limit_concurrency``), which answers a
  request with 503 and closes when this many other connections or requests are open. Connections
  beyond it are accepted and cost at most ``header_timeout`` each.
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from modelyard.config import Settings
from modelyard.http.request_ids import fresh, log_request

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent
    from uvicorn.config import Config
    from uvicorn.server import ServerState

#: Body bytes buffered per connection before the application is woken and reading pauses.
MESSAGE_SIZE = 1024 * 1024


@dataclass(frozen=True)
class HttpLimits:
    """What one connection may cost the server; the fields mean what ``Settings``' fields of that name say."""

    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(settings.max_header_bytes, settings.max_headers, settings.header_timeout,
                   settings.body_timeout, settings.max_connections)


#: ``Settings``' defaults (``model_construct`` reads no environment).
DEFAULT_LIMITS = HttpLimits.from_settings(Settings.model_construct())


def limited_protocol(limits: HttpLimits) -> type[asyncio.Protocol]:
    """``BufferedHttpToolsProtocol`` with ``limits``, for ``uvicorn.run(http=...)``.

    A ``functools.partial``, not a new class: uvicorn only calls it (with keywords), and with
    ``--workers`` it pickles the config into processes it starts with ``spawn``, where a partial
    arrives whole (the class by reference, ``limits`` by value) and a class made here would not.
    """
    return cast("type[asyncio.Protocol]", functools.partial(BufferedHttpToolsProtocol, limits=limits))


class _FieldsTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a header block over the limits."""


class _ReadFlow(FlowControl):
    """``FlowControl`` that notes when the server last asked for more, so waiting for it never counts
    against the client."""

    def __init__(self, transport: asyncio.Transport, clock: Callable[[], float]) -> None:
        super().__init__(transport)
        self._clock = clock
        self.resumed_at = clock()

    def resume_reading(self) -> None:
        self.resumed_at = self._clock()
        super().resume_reading()


class _BufferedCycle(RequestResponseCycle):
    """A request whose body pieces are listed rather than appended to one growing buffer."""

    chunks: list[bytes]
    buffered: int

    async def receive(self) -> ASGIReceiveEvent:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks, self.buffered = [], 0
        return {"type": "http.request", "body": body, "more_body": self.more_body}


class BufferedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests use ``_BufferedCycle`` and whose connections obey ``HttpLimits``.

    Pass as ``uvicorn.run(http=limited_protocol(limits))``, or the class itself for the defaults.
    """

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, limits: HttpLimits = DEFAULT_LIMITS) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # uvicorn answers 503 once ``limit_concurrency`` connections (this one included) or requests are open.
        cap = limits.max_connections + 1
        self.limit_concurrency = cap if self.limit_concurrency is None else min(self.limit_concurrency, cap)
        self._awaiting_headers = True  # from the end of a request (or the connection's start) to the next headers
        self._request_begun = False  # the parser has seen the first byte of the awaited request
        self._counting_raw = True  # inside a header block (or chunked trailers), so every byte read is one of it
        self._raw_header_bytes = 0
        self._header_size = 0  # target + fields reported by the parser, 4 bytes of framing per field
        self._header_count = 0
        self._too_large = False
        self._headers_since = 0.0
        self._last_read = 0.0
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    # -- connection --

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _ReadFlow(transport, self.loop.time)
        self._last_read = self.loop.time()
        self._arm_header_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._body_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._abort_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's ``data_received``, plus the raw count of an incomplete header block and the 431.
        self._unset_keepalive_if_required()
        self._last_read = self.loop.time()
        if self._awaiting_headers and self._header_timer is None:
            self._arm_header_timer()  # bytes after a response, even bare CRLFs, start the clock
        if self._counting_raw:
            self._raw_header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._give_up(431)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # Still inside the block after this read, so all of it belongs to the block.
        if self._counting_raw and self._raw_header_bytes > self.limits.max_header_bytes:
            self._give_up(431)

    def handle_websocket_upgrade(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None
        super().handle_websocket_upgrade()

    # -- parser callbacks --

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_fields(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_fields(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = self._counting_raw = False
        self._raw_header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is previous:
            return  # a WebSocket upgrade: the connection passes to the WebSocket protocol
        # The request's task is created but has not run yet, so it will call our ``receive``.
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = _BufferedCycle
            assert isinstance(cycle, _BufferedCycle)
            cycle.chunks, cycle.buffered = [], 0
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timer_fired)

    def on_chunk_header(self) -> None:
        # Maybe the last chunk, after which trailer fields come: httptools gathers them like headers.
        self._counting_raw = True

    def on_body(self, body: bytes) -> None:
        self._counting_raw = False
        self._raw_header_bytes = 0
        cycle = self.cycle
        if not isinstance(cycle, _BufferedCycle):
            super().on_body(body)
            return
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.chunks.append(body)
        cycle.buffered += len(body)
        if cycle.buffered >= MESSAGE_SIZE:
            self.flow.pause_reading()
            cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._awaiting_headers = self._counting_raw = True
        self._request_begun = False
        self._raw_header_bytes = self._header_size = self._header_count = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -- limits --

    def _count_fields(self, size: int, count: int) -> None:
        self._header_size += size
        self._header_count += count
        if self._header_size > self.limits.max_header_bytes or self._header_count > self.limits.max_headers:
            self._too_large = True
            raise _FieldsTooLarge

    def _arm_header_timer(self) -> None:
        self._headers_since = self.loop.time()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timer_fired)

    def _header_timer_fired(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers or self.transport.is_closing():
            return
        left = self._time_left(self._headers_since, self.limits.header_timeout)
        if left > 0:
            self._header_timer = self.loop.call_later(left, self._header_timer_fired)
        else:
            self._give_up(408)

    def _body_timer_fired(self) -> None:
        self._body_timer = None
        if self._awaiting_headers or self.transport.is_closing():
            return
        left = self._time_left(self._last_read, self.limits.body_timeout)
        if left > 0:
            self._body_timer = self.loop.call_later(left, self._body_timer_fired)
        else:
            self._give_up(408)

    def _time_left(self, since: float, timeout: float) -> float:
        """Seconds the client has left, counting only time in which the server waited for it."""
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            return timeout
        assert isinstance(self.flow, _ReadFlow)
        return max(since, self.flow.resumed_at) + timeout - self.loop.time()

    def _give_up(self, status: int) -> None:
        """Answer ``status`` if the client is owed no other answer first, and close.

        The request in flight, if any, is marked disconnected first, so its ``receive()`` returns
        ``http.disconnect`` and its ``send()`` writes nothing more.
        """
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if self._awaiting_headers:
            owed = self._request_begun and (cycle is None or cycle.response_complete)
        else:
            owed = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if owed and not self.pipeline and not transport.get_write_buffer_size():
            transport.write(self._error_response(status))
        transport.close()
        # close() waits for the write buffer to drain; a client that does not read gets a reset.
        self._abort_timer = self.loop.call_later(self.limits.header_timeout, transport.abort)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser refused, in the hub's error envelope."""
        self.transport.write(self._error_response(400, msg))
        self.transport.close()

    def _error_response(self, status: int, message: str | None = None) -> bytes:
        """A closing answer in the hub's error envelope (JSON body, ``X-Error-Code``/``-Message``),
        named by a fresh request id (the request was not parsed far enough to carry the client's)."""
        phrase = http.HTTPStatus(status).phrase
        text = (message or phrase).encode("ascii", "replace")
        rid = fresh()
        client = getattr(self, "client", None)
        log_request(rid, str(client[0]) if client else "-", "-", "-", status, 0.0)
        body = json.dumps({"error": text.decode(), "requestId": rid}).encode()
        content = [STATUS_LINE[status], b"x-request-id: " + rid.encode() + b"\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: application/json\r\n",
                        b"x-error-code: " + phrase.replace(" ", "").encode() + b"\r\n",
                        b"x-error-message: " + text + b"\r\n",
                        b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body])
        return b"".join(content)
