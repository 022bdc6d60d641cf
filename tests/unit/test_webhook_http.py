"""The webhook sender's HTTP/1.1 client against real servers on loopback (raw asyncio sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from modelyard.services.webhook_http import MAX_BODY, Http1Connection, WebhookHttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


def run(handler: Handler, client_side: Callable[[Http1Connection], Awaitable[None]], path: str = "/hook?x=1") -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Http1Connection(f"http://localhost:{port}{path}", "test-agent")
        try:
            await asyncio.wait_for(client_side(client), 10)
        finally:
            client.close()
            server.close()
            await asyncio.sleep(0.2)  # the handlers see the client go and close their side

    asyncio.run(main())


def test_posts_reuse_one_connection_and_send_what_the_receiver_reads() -> None:
    connections: list[int] = []
    requests: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def client_side(client: Http1Connection) -> None:
        for i in range(3):
            status, body = await client.post("127.0.0.1", f'{{"n":{i}}}'.encode(), {"X-Webhook-Secret": "s"})
            assert (status, body) == (200, b"ok")

    run(handler, client_side)
    assert len(connections) == 1 and len(requests) == 3
    head, body = requests[2]
    assert head.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and body == b'{"n":2}'
    assert b"\r\nHost: localhost:" in head and b"\r\nX-Webhook-Secret: s\r\n" in head


def test_a_connection_the_receiver_closed_is_replaced_once() -> None:
    served: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        served.append(1)
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()  # closes without saying so: the client finds out on its next request

    async def client_side(client: Http1Connection) -> None:
        assert (await client.post("127.0.0.1", b"{}", {}))[0] == 204
        await asyncio.sleep(0.1)
        assert (await client.post("127.0.0.1", b"{}", {}))[0] == 204

    run(handler, client_side)
    assert len(served) == 2


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"])
def test_answers_that_are_not_http_are_errors(answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async def client_side(client: Http1Connection) -> None:
        with pytest.raises(WebhookHttpError):
            await client.post("127.0.0.1", b"{}", {})

    run(handler, client_side)


def test_huge_headers_and_bodies_are_cut_and_the_connection_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"big-headers" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000\r\n\r\n" + b"e" * 1_000_000)
        await writer.drain()

    async def client_side(client: Http1Connection) -> None:
        status, body = await client.post("127.0.0.1", b"{}", {})
        assert status == 500 and body == b"e" * len(body) and 0 < len(body) <= MAX_BODY
        assert client._writer is None  # not kept: the rest of the body was never read
        with pytest.raises(WebhookHttpError):
            await client.post("127.0.0.1", b"{}", {"X-Case": "big-headers"})

    run(handler, client_side)


def test_connection_close_and_chunked_answers_are_not_kept() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"chunked" in head:
            writer.write(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def client_side(client: Http1Connection) -> None:
        assert (await client.post("127.0.0.1", b"{}", {}))[0] == 200
        assert client._writer is None
        assert (await client.post("127.0.0.1", b"{}", {"X-Case": "chunked"}))[0] == 202
        assert client._writer is None

    run(handler, client_side)


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        Http1Connection("ftp://example.com/x", "agent")
