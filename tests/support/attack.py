"""Tools for the hostile-request tests: raw sockets, the server's memory, a latency probe."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.support.server import LiveServer


def rss_bytes(server: LiveServer) -> int:
    """Resident memory of the server process (one worker: uvicorn runs in it)."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def connect(server: LiveServer, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, path: str, headers: dict[str, str], host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_status(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    """The status code and head of the first response on ``sock`` (within ``timeout`` seconds)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += piece
    head = data.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), head


@dataclass
class Probe:
    """Latencies of a cheap request sent every ``interval`` seconds from another thread."""

    url: str
    interval: float = 0.05
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: Answers taken before the block under test started (the connection's setup among them).
    warmup: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    r = client.get(self.url)
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - start)
                self._stop.wait(self.interval)

    @property
    def worst(self) -> float:
        """The slowest answer while the block under test ran."""
        return max(self.latencies[self.warmup :] or self.latencies)


@contextmanager
def probing(url: str) -> Iterator[Probe]:
    """A ``Probe`` running for the block, its connection open and answered once before the block
    starts; at least a few samples are taken."""
    probe = Probe(url)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not probe.latencies and time.monotonic() < deadline:
            time.sleep(0.01)
        probe.warmup = len(probe.latencies)
        yield probe
        deadline = time.monotonic() + 5
        while len(probe.latencies) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        probe._stop.set()
        thread.join(60)
    assert probe.latencies, "the probe got no answer at all"
