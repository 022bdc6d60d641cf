"""A proxy in front of a live hub that misbehaves on demand: the upstream a mirror test points
its edge at, to play an upstream that fails, hangs, cuts or alters what it sends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
       "content-length", "host"}


class TamperProxy:
    """``mode`` decides what happens to file downloads (``/resolve/`` GETs): ``pass`` forwards
    them, ``flip`` changes one byte in the middle, ``cut`` sends half the body then closes,
    ``hang`` never answers; ``error`` answers every request with a 502."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.mode = "pass"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _forward(self) -> None:
                mode = proxy.mode
                if mode == "error":
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                file_get = self.command == "GET" and "/resolve/" in self.path
                if file_get and mode == "hang":
                    time.sleep(3600)
                    return
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                with httpx.Client(timeout=120) as client, client.stream(
                    self.command, proxy.target + self.path, headers=headers, content=body or None
                ) as response:
                    data = response.read()
                    if file_get and mode == "flip" and len(data) > 2:
                        mid = len(data) // 2
                        data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
                    self.send_response(response.status_code)
                    for k, v in response.headers.multi_items():
                        if k.lower() not in HOP and k.lower() != "content-encoding":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command == "HEAD":
                        return
                    if file_get and mode == "cut":
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.connection.close()
                        return
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def tamper_proxy(target: str) -> Iterator[TamperProxy]:
    proxy = TamperProxy(target)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
