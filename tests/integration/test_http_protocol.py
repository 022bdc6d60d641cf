"""The request-body path of ``BufferedHttpToolsProtocol`` under uvicorn, over raw loopback sockets.

An ASGI app reports what it received (sha256, size, how many messages); the requests are written
byte by byte where it matters: fixed-length and chunked bodies, 100-continue, keep-alive and
pipelined requests, and a client that goes away mid-body.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.http.protocol import MESSAGE_SIZE, BufferedHttpToolsProtocol
from tests.support.inthread import uvicorn_in_thread

seen: list[dict[str, Any]] = []
#: Body bytes the app has received so far, by path (updated as each message arrives).
received: dict[str, int] = {}


async def report_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    digest, size, sizes, disconnected = hashlib.sha256(), 0, [], False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected = True
            break
        digest.update(message["body"])
        size += len(message["body"])
        sizes.append(len(message["body"]))
        received[scope["path"]] = size
        if not message.get("more_body"):
            break
    report = {"sha256": digest.hexdigest(), "size": size, "sizes": sizes, "disconnected": disconnected,
              "path": scope["path"]}
    seen.append(report)
    if disconnected:
        return
    body = json.dumps(report).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with uvicorn_in_thread(report_app, BufferedHttpToolsProtocol) as free:
        yield free


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket, buffered: bytearray) -> tuple[int, dict[str, Any]]:
    """One response from ``sock`` (``buffered`` holds bytes already read past the previous one)."""
    while b"\r\n\r\n" not in buffered:
        data = sock.recv(65536)
        assert data, "connection closed before a response"
        buffered += data
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        assert data, "connection closed inside a response body"
        rest += data
    buffered[:] = rest[length:]
    return status, json.loads(rest[:length]) if length else {}


def put(path: str, body: bytes, extra: str = "") -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_large_body_arrives_whole_in_few_messages(port: int) -> None:
    body = os.urandom(5 * MESSAGE_SIZE + 12345)
    with connect(port) as sock:
        sock.sendall(put("/large", body))
        status, report = read_response(sock, bytearray())
    assert status == 200
    assert report["sha256"] == hashlib.sha256(body).hexdigest() and report["size"] == len(body)
    # Woken once per MESSAGE_SIZE, not once per socket read (up to 256 KiB each).
    assert all(size >= MESSAGE_SIZE for size in report["sizes"][:-1]), report["sizes"]
    assert len(report["sizes"]) <= 6


def test_small_body_and_empty_body(port: int) -> None:
    with connect(port) as sock:
        buffered = bytearray()
        sock.sendall(put("/small", b"hello"))
        status, report = read_response(sock, buffered)
        assert status == 200 and report["size"] == 5 and report["sizes"] == [5]
        sock.sendall(b"GET /empty HTTP/1.1\r\nHost: t\r\n\r\n")
        status, report = read_response(sock, buffered)
        assert status == 200 and report["size"] == 0 and report["sizes"] == [0]


def test_chunked_body_in_many_small_chunks(port: int) -> None:
    body = os.urandom(MESSAGE_SIZE + 300_000)
    pieces = [body[i : i + 7919] for i in range(0, len(body), 7919)]
    encoded = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    with connect(port) as sock:
        sock.sendall(b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(encoded), 100_000):  # several socket writes, split mid-chunk
            sock.sendall(encoded[i : i + 100_000])
        status, report = read_response(sock, bytearray())
    assert status == 200
    assert report["sha256"] == hashlib.sha256(body).hexdigest() and report["size"] == len(body)


def test_expect_100_continue(port: int) -> None:
    body = os.urandom(MESSAGE_SIZE // 2)
    with connect(port) as sock:
        sock.sendall(f"PUT /continue HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        sock.sendall(body)
        status, report = read_response(sock, bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]))
    assert status == 200 and report["sha256"] == hashlib.sha256(body).hexdigest()


def test_pipelined_requests_on_one_connection(port: int) -> None:
    bodies = [os.urandom(n) for n in (MESSAGE_SIZE + 1, 10, 3 * MESSAGE_SIZE)]
    with connect(port) as sock:
        sock.sendall(b"".join(put(f"/pipe{i}", body) for i, body in enumerate(bodies)))
        buffered = bytearray()
        reports = [read_response(sock, buffered) for _ in bodies]
    for (status, report), body, i in zip(reports, bodies, range(3), strict=True):
        assert status == 200 and report["path"] == f"/pipe{i}"
        assert report["sha256"] == hashlib.sha256(body).hexdigest() and report["size"] == len(body)


def test_client_gone_mid_body_is_a_disconnect(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(f"PUT /gone HTTP/1.1\r\nHost: t\r\nContent-Length: {4 * MESSAGE_SIZE}\r\n\r\n".encode())
        sock.sendall(os.urandom(MESSAGE_SIZE + 1000))
        # The app has part of the body (a first message) before the client goes: mid-body, provably.
        deadline = time.monotonic() + 10
        while received.get("/gone", 0) < MESSAGE_SIZE:
            assert time.monotonic() < deadline, "the app never received the first part of the body"
            time.sleep(0.005)
    deadline = time.monotonic() + 10
    while not any(r["path"] == "/gone" for r in seen):
        assert time.monotonic() < deadline, "the app never saw the disconnect"
        time.sleep(0.02)
    report = next(r for r in seen if r["path"] == "/gone")
    assert report["disconnected"] and MESSAGE_SIZE <= report["size"] < 4 * MESSAGE_SIZE
