"""``HttpLimits`` of ``BufferedHttpToolsProtocol`` under uvicorn, over raw loopback sockets.

Hostile clients: too many or too large headers (or chunked trailers), headers or a body that
trickle or stall, connections that never send anything, more connections than allowed. And the
clients these limits must leave alone: a body that flows slowly but steadily, an application that
reads slowly or late (100-continue), an idle keep-alive connection. The last test runs the real
``modelyard serve`` with two workers and the limits set through ``MODELYARD_*`` variables.
"""

from __future__ import annotations

import asyncio
import pickle
import select
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from modelyard.http.protocol import MESSAGE_SIZE, HttpLimits, limited_protocol
from tests.support.inthread import uvicorn_in_thread
from tests.support.server import LiveServer

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SLACK = 2.0  # how much later than its timeout a connection may close
LIMITS = HttpLimits(max_header_bytes=64 * 1024, max_headers=100, header_timeout=HEADER_TIMEOUT,
                    body_timeout=BODY_TIMEOUT, max_connections=1000)

seen: dict[str, dict[str, Any]] = {}
started: set[str] = set()


async def report_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body (``?before=s`` sleeps before the first ``receive``, ``?after_first=s`` after it)."""
    if scope["type"] != "http":
        return
    started.add(scope["path"])
    query = dict(parse_qsl(scope["query_string"].decode()))
    if "before" in query:
        await asyncio.sleep(float(query["before"]))
    size, messages, disconnected = 0, 0, False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected = True
            break
        size += len(message["body"])
        messages += 1
        if messages == 1 and "after_first" in query:
            await asyncio.sleep(float(query["after_first"]))
        if not message.get("more_body"):
            break
    seen[scope["path"]] = {"size": size, "disconnected": disconnected,
                           "headers": len(scope["headers"])}
    if disconnected:
        return
    body = b"%d" % size
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def running(limits: HttpLimits) -> AbstractContextManager[int]:
    """A uvicorn server in a thread with ``limits``; yields its port."""
    return uvicorn_in_thread(report_app, limited_protocol(limits), timeout_keep_alive=5)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with running(LIMITS) as free:
        yield free


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after ``limit`` seconds."""
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"connection still open after {limit} s; got {data[:80]!r}")
    return data


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response; got {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return int(head.split()[1]), body


def get(port: int, path: str = "/", extra: bytes = b"", host: bytes = b"t") -> tuple[int, bytes]:
    with connect(port) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra + b"\r\n")
        return read_response(sock)


def wait_for_report(path: str, limit: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while path not in seen:
        assert time.monotonic() < deadline, f"the app never finished {path}"
        time.sleep(0.02)
    return seen[path]


# -- header size and count --


def test_70_kib_of_headers_get_431_and_close(port: int) -> None:
    fields = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70))  # 70 fields: under the count
    with connect(port) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:200]
    assert b"\r\nconnection: close\r\n" in data
    assert "/big" not in seen


def test_a_header_that_never_ends_is_cut_at_the_limit(port: int) -> None:
    # httptools reports a field only once it is complete, so this is counted as raw bytes read.
    with connect(port) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 8 * 1024 * 1024:
                sock.sendall(b"a" * 8192)
                sent += 8192
                time.sleep(0.001)
        except OSError:
            pass  # the server closed: the rest of what we sent got a reset
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert sent < 8 * 1024 * 1024


def test_150_headers_get_431(port: int) -> None:
    fields = b"".join(b"X-H-%d: v\r\n" % i for i in range(150))
    with connect(port) as sock:
        sock.sendall(b"GET /many HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert "/many" not in seen


def test_50_headers_of_1_kib_are_fine(port: int) -> None:
    fields = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1024) for i in range(50))
    assert get(port, "/fifty", fields) == (200, b"0")
    assert seen["/fifty"]["headers"] == 51


def test_trailer_fields_count_with_the_headers(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /trailers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                     + b"".join(b"X-T-%d: v\r\n" % i for i in range(150)) + b"\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert wait_for_report("/trailers")["disconnected"]


def test_an_endless_trailer_is_cut_at_the_limit(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /endless-trailer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nX-Trailer: ")
        time.sleep(0.05)
        try:
            for _ in range(1024):
                sock.sendall(b"a" * 8192)
                time.sleep(0.001)
        except OSError:
            pass
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert wait_for_report("/endless-trailer")["disconnected"]


# -- header timeout --


def test_slow_headers_get_408_and_close_while_others_are_served(port: int) -> None:
    request = b"GET /slowloris HTTP/1.1\r\nHost: t\r\n" + b"X-Slow: " + b"a" * 100
    start = time.monotonic()
    other_took = None
    with connect(port) as sock:
        for i, byte in enumerate(request):
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if i == 3:  # meanwhile, another connection is answered at once
                t0 = time.monotonic()
                assert get(port, "/meanwhile") == (200, b"0")
                other_took = time.monotonic() - t0
        data = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data[:200]
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + SLACK, elapsed
    assert other_took is not None and other_took < 0.5, other_took
    assert "/slowloris" not in seen


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    start = time.monotonic()
    with connect(port) as sock:
        data = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert data == b""  # no request was begun, so none is answered
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + SLACK, elapsed


def test_bare_line_breaks_after_a_response_do_not_hold_the_connection(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock) == (200, b"0")
        start = time.monotonic()
        try:
            while not select.select([sock], [], [], 0.2)[0]:
                sock.sendall(b"\r\n")
                assert time.monotonic() - start < HEADER_TIMEOUT + SLACK, "still open"
        except OSError:
            pass
        data = read_until_closed(sock)
    assert data == b""
    assert time.monotonic() - start < HEADER_TIMEOUT + SLACK


def test_idle_keep_alive_connection_outlives_the_header_timeout(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /keep1 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock) == (200, b"0")
        time.sleep(HEADER_TIMEOUT + 0.6)  # under uvicorn's timeout_keep_alive (5 s) instead
        sock.sendall(b"GET /keep2 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock) == (200, b"0")


# -- body timeout --


def test_stalled_body_is_closed_and_the_app_sees_a_disconnect(port: int) -> None:
    start = time.monotonic()
    with connect(port) as sock:
        sock.sendall(b"PUT /stalled HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        data = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert BODY_TIMEOUT - 0.1 < elapsed < BODY_TIMEOUT + SLACK, elapsed
    assert wait_for_report("/stalled", 2)["disconnected"]


def test_slow_but_steady_body_is_not_cut_off(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"PUT /steady HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
        for _ in range(10):  # 3 s in all, three times the body timeout
            time.sleep(0.3)
            sock.sendall(b"x")
        assert read_response(sock) == (200, b"10")


def test_app_that_reads_slowly_is_not_the_clients_fault(port: int) -> None:
    # The app sleeps after its first MESSAGE_SIZE: reading stays paused for 2.5 body timeouts.
    size = 4 * MESSAGE_SIZE
    with connect(port) as sock:
        sock.sendall(b"PUT /slow-app?after_first=2.5 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        sock.sendall(b"x" * size)
        assert read_response(sock) == (200, b"%d" % size)
    assert seen["/slow-app"] == {"size": size, "disconnected": False, "headers": 2}


def test_client_waiting_for_100_continue_is_not_cut_off(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"PUT /late-app?before=2.5 HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"x" * 100)
        assert read_response(sock) == (200, b"100")


# -- connections --


def test_connections_beyond_the_limit_get_503() -> None:
    limits = HttpLimits(max_header_bytes=64 * 1024, max_headers=100, header_timeout=10, body_timeout=10,
                        max_connections=3)
    with running(limits) as free:
        holders = [connect(free) for _ in range(3)]
        for i, sock in enumerate(holders):  # each mid-request: its app waits for the rest of the body
            sock.sendall(b"PUT /hold%d HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" % i + b"x" * 10)
            deadline = time.monotonic() + 5
            while f"/hold{i}" not in started:
                assert time.monotonic() < deadline, "the holder's request did not start"
                time.sleep(0.01)
        with connect(free) as fourth:
            fourth.sendall(b"GET /fourth HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until_closed(fourth)
        assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), data[:200]
        assert b"connection: close" in data
        holders.pop().close()  # two holders and the next connection make three: served
        assert retry_get(free, "/third") == (200, b"0")
        for sock in holders:
            sock.close()
        assert retry_get(free, "/after") == (200, b"0")
    assert wait_for_report("/hold0")["disconnected"]


def retry_get(port: int, path: str) -> tuple[int, bytes]:
    """``get``, again while the server has not yet noticed closed connections (503)."""
    deadline = time.monotonic() + 3
    while True:
        status, body = get(port, path)
        if status != 503 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.05)


# -- the real server --


def test_the_limits_survive_the_pickling_into_worker_processes() -> None:
    # uvicorn --workers pickles its Config, ``http=`` included, into processes started with spawn.
    factory = pickle.loads(pickle.dumps(limited_protocol(LIMITS)))
    assert factory.keywords == {"limits": LIMITS}


def test_serve_applies_the_limits_in_every_worker(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "hub", None, "sqlite", extra_env={
        "MODELYARD_WORKERS": "2",
        "MODELYARD_HEADER_TIMEOUT": "1",
        "MODELYARD_BODY_TIMEOUT": "1",
        "MODELYARD_MAX_HEADERS": "20",
        "MODELYARD_MAX_HEADER_BYTES": "4096",
    })
    with live.running():
        # Many at once, so that both workers (which accept from one listening socket) get some: a few
        # connections opened one by one all go to one worker, 100 split about evenly (checked with ss).
        start = time.monotonic()
        idle = [connect(live.port) for _ in range(48)]
        stalled = [connect(live.port) for _ in range(16)]
        for sock in stalled:
            sock.sendall(b"PUT /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nxx")
        deadline = start + 1 + SLACK
        for sock in idle:  # nothing begun, nothing answered
            assert read_until_closed(sock, max(0.01, deadline - time.monotonic())) == b""
        for sock in stalled:  # closed in time, answered 408 or whatever the endpoint answered first
            read_until_closed(sock, max(0.01, deadline - time.monotonic()))
        for sock in idle + stalled:
            sock.close()
        for count, size in ((30, 10), (5, 5000)):
            fields = b"".join(b"X-H-%d: %s\r\n" % (i, b"v" * size) for i in range(count))
            for _ in range(4):
                with connect(live.port) as sock:
                    sock.sendall(b"GET /api/agent-harnesses HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n")
                    assert read_until_closed(sock).startswith(b"HTTP/1.1 431 ")
        status, _ = get(live.port, "/api/agent-harnesses", b"X-Fine: yes\r\n", b"127.0.0.1")
        assert status == 200
