"""The webhook sender's HTTP client: one kept-alive HTTP/1.1 connection per webhook lane.

A delivery is one small JSON POST whose answer only matters by its status, and the sender's one
thread bounds the throughput of every lane, so the client is as small as that job: it writes the
request in one piece and reads the status line, the headers and at most ``MAX_BODY`` bytes of the
answer (a longer or unframed answer closes the connection). It connects to the address the
caller resolved and checked, never resolving the host again, so a name cannot point the check at
a public address and the connection at a private one. Timeouts are the caller's (``wait_for``).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

#: The most of an answer's headers and body that is read (the log keeps 200 characters).
MAX_HEAD = 16 * 1024
MAX_BODY = 4 * 1024


class WebhookHttpError(Exception):
    """The target answered something that is not HTTP/1.x, or closed the connection early."""


class Http1Connection:
    """POSTs to one URL over a connection kept open between requests."""

    def __init__(self, url: str, user_agent: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default = self.port == (443 if self._tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._authority = host if default else f"{host}:{self.port}"
        self._user_agent = user_agent
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._address: str | None = None

    async def post(self, address: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` to the URL at ``address`` (an IP the caller checked); (status, start of
        the answer's body). A kept connection that the target closed meanwhile is replaced once."""
        reused = self._writer is not None and self._address == address
        try:
            return await self._exchange(address, body, headers)
        except (ConnectionError, asyncio.IncompleteReadError, WebhookHttpError):
            self.close()
            if not reused:
                raise
        return await self._exchange(address, body, headers)

    async def _exchange(self, address: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._writer is None or self._address != address:
            self.close()
            context = ssl.create_default_context() if self._tls else None
            self._reader, self._writer = await asyncio.open_connection(
                address, self.port, ssl=context, server_hostname=self.host if self._tls else None, limit=MAX_HEAD)
            self._address = address
        assert self._reader is not None and self._writer is not None
        lines = [f"POST {self._path} HTTP/1.1", f"Host: {self._authority}", f"User-Agent: {self._user_agent}",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise WebhookHttpError("the answer's headers are too long") from exc
        status, fields = _parse_head(head)
        content, keep = await self._read_body(fields)
        if not keep:
            self.close()
        return status, content

    async def _read_body(self, fields: dict[str, str]) -> tuple[bytes, bool]:
        """The answer's body (at most MAX_BODY bytes) and whether the connection can be kept."""
        assert self._reader is not None
        keep = fields.get("connection", "").lower() != "close"
        if "transfer-encoding" in fields:  # chunked and such: not worth parsing for a status
            return b"", False
        length = fields.get("content-length")
        if length is None:
            return await self._reader.read(MAX_BODY), False
        if not length.isdigit():
            raise WebhookHttpError(f"bad Content-Length {length[:40]!r}")
        size = int(length)
        if size > MAX_BODY:
            return await self._reader.read(MAX_BODY), False
        return await self._reader.readexactly(size), keep

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._address = None


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise WebhookHttpError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return int(code), fields
