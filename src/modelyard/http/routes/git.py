"""git smart HTTP at ``/NS/NAME[.git]`` (and ``/datasets/…``, ``/spaces/…``): ``info/refs``,
``git-upload-pack`` (clone, fetch) and ``git-receive-pack`` (push). The protocol runs in a worker
thread (``services/git.py``); a pack is streamed to the client as it is written, with at most a
few pieces held, so memory does not grow with the repo."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO

from dulwich.errors import GitProtocolError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import AuthenticationError, InvalidInputError, PayloadTooLargeError, RepoNotFoundError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import PREFIX, REPO, bounded_stream, moved, repo_id, repo_type
from modelyard.services import git as git_svc
from modelyard.services import repos as repos_svc
from modelyard.services.auth import Principal

log = logging.getLogger("modelyard.git")

#: Pieces of a pack queued between the thread writing it and the response sending it.
QUEUED_PIECES = 16


def _repo_id(ctx: Ctx) -> str:
    """The repo id in the URL, without the ``.git`` a clone URL may end with."""
    name = ctx.params["name"]
    return repo_id({**ctx.params, "name": name.removesuffix(".git")})


def _challenge(exc: AuthenticationError) -> Response:
    """git asks for credentials (or its credential helper) only when offered Basic."""
    return Response(f"{exc.message}\n", status_code=401, media_type="text/plain",
                    headers={"WWW-Authenticate": 'Basic realm="modelyard"'})


def _text(status: int, message: str) -> Response:
    return Response(f"{message}\n", status_code=status, media_type="text/plain")


async def info_refs(ctx: Ctx) -> Response:
    service = ctx.request.query_params.get("service", "")
    if service not in git_svc.SERVICES:
        return _text(403, "The dumb git protocol is not served: use a git client that speaks smart HTTP")
    rtype, rid = repo_type(ctx.params), _repo_id(ctx)
    pieces: list[bytes] = []
    try:
        await ctx.call(git_svc.advertise, rtype, rid, service, pieces.append)
    except (AuthenticationError, RepoNotFoundError) as exc:
        # A moved repo's old id: git follows the redirect of its first request and goes on at
        # the new URL (for who may read the repo; pushes then need its write access as ever).
        try:
            new_id = await ctx.call(repos_svc.moved_to, rtype, rid)
        except AuthenticationError as bad_token:
            return _challenge(bad_token)
        if new_id is not None:
            raise moved(ctx, new_id) from None
        if isinstance(exc, AuthenticationError):
            return _challenge(exc)
        raise
    return Response(b"".join(pieces), media_type=f"application/x-{service}-advertisement",
                    headers={"Cache-Control": "no-cache"})


async def _spool_body(ctx: Ctx, limit: int) -> IO[bytes]:
    """The request body in a temporary file (inflated if the client gzipped it), bounded."""
    encoding = ctx.request.headers.get("content-encoding", "").lower()
    if encoding not in ("", "identity", "gzip"):
        raise InvalidInputError(f"Content-Encoding {encoding!r} is not accepted")
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024, prefix="modelyard-git-")  # noqa: SIM115
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    size = 0
    pending: list[bytes] = []  # written to the file a MiB at a time, in a thread: never on the event loop
    held = 0
    try:
        async for chunk in bounded_stream(ctx, limit, "git request"):
            data = chunk
            while data:
                if inflater is None:
                    out, data = data, b""
                else:
                    try:
                        out = inflater.decompress(data, 1024 * 1024)
                    except zlib.error as exc:
                        raise InvalidInputError(f"The gzipped request is corrupt: {exc}") from exc
                    data = inflater.unconsumed_tail
                size += len(out)
                if size > limit:
                    raise PayloadTooLargeError(f"The git request may hold at most {limit} bytes")
                pending.append(out)
                held += len(out)
                if held >= 1024 * 1024:
                    await run_in_threadpool(spool.write, b"".join(pending))
                    pending, held = [], 0
        await run_in_threadpool(spool.write, b"".join(pending))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


class _Pipe:
    """Bytes from the protocol thread to the response: a bounded queue (the thread waits while
    it is full), closed from either end."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED_PIECES)
        self.gone = False

    def write(self, data: bytes) -> None:  # in the protocol thread
        while not self._room.acquire(timeout=1.0):
            if self.gone:
                break
        if self.gone:
            raise GitProtocolError("The client went away")
        self._loop.call_soon_threadsafe(self._queue.put_nowait, data)

    def finish(self, error: BaseException | None) -> None:  # in the protocol thread
        self._loop.call_soon_threadsafe(self._queue.put_nowait, error)

    async def pieces(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    # The status line is sent: the client sees the pack end early.
                    if not isinstance(item, GitProtocolError):
                        log.error("a git pack stopped midway", exc_info=item)
                    return
                self._room.release()
                yield item
        finally:
            self.gone = True
            self._room.release()


async def _run_streaming(ctx: Ctx, service: str, work: Callable[[Callable[[bytes], None]], None]) -> Response:
    """Start ``work`` in a git thread; answer with what it writes as it writes it. An error
    before the first byte is answered as an error; after it, the stream just ends."""
    loop = asyncio.get_running_loop()
    pipe = _Pipe(loop)
    first: asyncio.Future[BaseException | None] = loop.create_future()

    def signal(value: BaseException | None) -> None:
        if not first.done():
            first.set_result(value)

    def write(data: bytes) -> None:
        loop.call_soon_threadsafe(signal, None)
        pipe.write(data)

    def run() -> None:
        error: BaseException | None = None
        try:
            work(write)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop
            error = exc
        loop.call_soon_threadsafe(signal, error)
        pipe.finish(error)

    task = loop.run_in_executor(ctx.app.git_executor() if ctx.app else None, run)
    failed = await first
    if failed is not None:
        await task
        raise failed
    return StreamingResponse(pipe.pieces(), media_type=f"application/x-{service}-result",
                             headers={"Cache-Control": "no-cache"})


@dataclass
class _Call:
    """A POST that may go on: the repo it names, its body (spooled), who sends it."""

    rtype: str
    rid: str
    body: IO[bytes]
    principal: Principal | None


async def _accept(ctx: Ctx, service: str, limit: int) -> _Call | Response:
    """Everything decided before the protocol runs: the content type, the caller's right to the
    service (from the URL and the token, before a byte of the body is read), then the body."""
    if ctx.request.headers.get("content-type", "") != f"application/x-{service}-request":
        return _text(415, f"Expected Content-Type application/x-{service}-request")
    rtype, rid = repo_type(ctx.params), _repo_id(ctx)
    try:
        await ctx.call(git_svc.authorize, rtype, rid, service)
    except AuthenticationError as exc:
        return _challenge(exc)
    body = await _spool_body(ctx, limit)
    return _Call(rtype, rid, body, await ctx.principal())


async def upload_pack(ctx: Ctx) -> Response:
    call = await _accept(ctx, git_svc.UPLOAD, ctx.hub.settings.git_max_fetch_request)
    if isinstance(call, Response):
        return call
    address = ctx.client_address()

    def work(write: Callable[[bytes], None]) -> None:
        with call.body:
            git_svc.upload_pack(ctx.hub, call.principal, call.rtype, call.rid, call.body, write, address)

    try:
        return await _run_streaming(ctx, git_svc.UPLOAD, work)
    except GitProtocolError as exc:
        log.info("git-upload-pack refused for %s: %s", call.rid, exc, exc_info=exc.__cause__ is not None)
        return _text(400, f"git protocol error: {exc}")


async def receive_pack(ctx: Ctx) -> Response:
    """The push is decided whole before its answer (a few lines) is sent."""
    call = await _accept(ctx, git_svc.RECEIVE, ctx.hub.settings.git_max_push_size)
    if isinstance(call, Response):
        return call
    pieces: list[bytes] = []

    def work() -> None:
        with call.body:
            git_svc.receive_pack(ctx.hub, call.principal, call.rtype, call.rid, call.body, pieces.append)

    try:
        await asyncio.get_running_loop().run_in_executor(ctx.app.git_executor() if ctx.app else None, work)
    except GitProtocolError as exc:
        log.info("git-receive-pack refused for %s: %s", call.rid, exc, exc_info=exc.__cause__ is not None)
        return _text(400, f"git protocol error: {exc}")
    return Response(b"".join(pieces), media_type=f"application/x-{git_svc.RECEIVE}-result",
                    headers={"Cache-Control": "no-cache"})


def register(router: Router) -> None:
    base = rf"/{PREFIX}{REPO}"
    router.add("GET", rf"{base}/info/refs", info_refs)
    router.add("POST", rf"{base}/git-upload-pack", upload_pack)
    router.add("POST", rf"{base}/git-receive-pack", receive_pack)
