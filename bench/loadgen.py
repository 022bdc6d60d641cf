"""A small closed-loop HTTP/1.1 load generator for bodiless requests (HEAD), run as its own process.

wrk 4.1 waits for a body after a HEAD response that carries Content-Length, so it cannot time
HEAD requests. This client keeps ``--connections`` keep-alive connections, each sending its next
request as soon as the previous response's headers have arrived, for ``--duration`` seconds after
a short warm-up, and prints JSON: requests, errors, requests/s and latency percentiles (ms).

``--rotate 'Name: value'`` (repeatable) gives connection *i* the *i*-th value modulo their count
(say, one of several tokens), on top of the ``--header`` lines every connection sends.

``--until-signal``: print ``recording`` on stderr when the warm-up is over, then record until
SIGUSR1 arrives (``--duration`` is then only an upper bound): the caller times whatever it does in
the meantime.

    python -m bench.loadgen --url http://127.0.0.1:8000/x --connections 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from functools import partial
from typing import cast
from urllib.parse import urlsplit

import uvloop


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same request in a closed loop."""

    def __init__(self, request: bytes, stats: _Stats) -> None:
        self.request, self.stats = request, stats
        self.buffer = b""
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.stats.stopping:
            self.transport.close()
            return
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            ok = head.startswith(b"HTTP/1.1 200 ") or head.startswith(b"HTTP/1.1 302 ")
            self.stats.record(time.perf_counter_ns() - self.sent_at, ok)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stats.stopping:
            self.stats.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


class _Stats:
    def __init__(self) -> None:
        self.recording = False
        self.stopping = False
        self.latencies_ns: list[int] = []
        self.errors = 0
        self.answered = 0  # responses of the whole run, warm-up included

    def record(self, latency_ns: int, ok: bool) -> None:
        self.answered += 1
        if not self.recording:
            return
        if ok:
            self.latencies_ns.append(latency_ns)
        else:
            self.errors += 1


def percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index] / 1e6


async def run(url: str, connections: int, duration: float, warmup: float, method: str,
              headers: list[str], rotate: list[str] | None = None, until_signal: bool = False) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{h}\r\n" for h in headers)
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
    requests = [(head + (f"{one}\r\n" if one else "") + "\r\n").encode() for one in rotate or [""]]
    stats = _Stats()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if until_signal:
        loop.add_signal_handler(signal.SIGUSR1, stop.set)
    conns = []
    for i in range(connections):
        request = requests[i % len(requests)]
        _transport, proto = await loop.create_connection(partial(_Connection, request, stats), host, port)
        conns.append(proto)
    await asyncio.sleep(warmup)
    stats.recording = True
    start = time.perf_counter()
    if until_signal:
        print("recording", file=sys.stderr, flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=duration)
    stats.recording = False
    elapsed = time.perf_counter() - start
    stats.stopping = True
    await asyncio.wait([c.closed for c in conns], timeout=10)
    lat = sorted(stats.latencies_ns)
    return {
        "connections": connections,
        "stopped_by_signal": stop.is_set(),
        "seconds": elapsed,
        "requests": len(lat),
        "answered": stats.answered,
        "errors": stats.errors,
        "rps": len(lat) / elapsed,
        "p50_ms": percentile(lat, 0.50),
        "p90_ms": percentile(lat, 0.90),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": lat[-1] / 1e6 if lat else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--method", default="HEAD")
    parser.add_argument("--header", action="append", default=[], help="extra 'Name: value' header")
    parser.add_argument("--rotate", action="append", default=[],
                        help="'Name: value' header that connection i takes the i-th of (modulo)")
    parser.add_argument("--until-signal", action="store_true",
                        help="record from 'recording' (on stderr) until SIGUSR1, at most --duration s")
    args = parser.parse_args()
    result = uvloop.run(run(args.url, args.connections, args.duration, args.warmup, args.method, args.header,
                            args.rotate, args.until_signal))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
