"""Xet: the Hub token routes and the CAS endpoints that ``hf_xet`` calls, under ``/xet``.

CAS calls carry ``Authorization: Bearer <Xet token>``, except the xorb range fetches, whose
URLs sign themselves. Answers are never compressed (the client sends no Accept-Encoding).
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import API_REPO, json_response, repo_id, repo_type
from modelyard.http.routes.files import _stream
from modelyard.services import xet as xet_svc
from modelyard.xet.shard import MAX_SHARD_BYTES
from modelyard.xet.xorb import MAX_XORB_BODY

HASH = r"(?P<hash>[^/]+)"  # validated by the service: a bad hash is a 400, not a 404
PFX = r"(?P<prefix>[^/]+)"


async def token(ctx: Ctx) -> Response:
    """``xet-read-token`` / ``xet-write-token``: the JSON body for hf_xet, headers for huggingface_hub."""
    found = await ctx.call(
        xet_svc.issue_token, repo_type(ctx.params), repo_id(ctx.params), ctx.params["mode"], ctx.base_url()
    )
    headers = {
        "X-Xet-Cas-Url": found.cas_url,
        "X-Xet-Access-Token": found.access_token,
        "X-Xet-Token-Expiration": str(found.exp),
    }
    return json_response({"accessToken": found.access_token, "exp": found.exp, "casUrl": found.cas_url},
                         headers=headers)


async def _scope(ctx: Ctx, write: bool) -> int:
    return await run_in_threadpool(xet_svc.cas_scope, ctx.hub, ctx.token, write)


async def _body(ctx: Ctx, limit: int, what: str) -> bytearray:
    """The request body, refused as soon as it passes ``limit`` bytes (one buffer, no join copy)."""
    declared = ctx.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"A {what} may hold at most {limit} bytes")
    body = bytearray()
    async for chunk in ctx.request.stream():
        if len(body) + len(chunk) > limit:
            raise PayloadTooLargeError(f"A {what} may hold at most {limit} bytes")
        body += chunk
    return body


#: Xorb bodies are received into at most this many reused buffers per process (receiving and
#: validating/storing overlap with two); a fresh 64 MiB buffer costs a page fault per 4 KiB,
#: several times the copy itself. So up to 2 x MAX_XORB_BODY stays with a process that has
#: received xorbs.
KEEP_BUFFERS = 2
#: An upload waits at most this long for a reused buffer, then gets a fresh one (so a client that
#: trickles a body cannot hold the others back).
BUFFER_WAIT = 2.0


class _Buffers:
    """The reused xorb buffers of one event loop (only that loop's thread touches them)."""

    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(KEEP_BUFFERS)
        self.free: list[bytearray] = []


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Buffers] = weakref.WeakKeyDictionary()


async def _take(size: int, limit: int) -> tuple[bytearray, _Buffers | None]:
    """A buffer of at least ``size`` bytes, and the pool it must go back to (None: a fresh one)."""
    pool = _POOLS.setdefault(asyncio.get_running_loop(), _Buffers())
    try:
        await asyncio.wait_for(pool.slots.acquire(), BUFFER_WAIT)
    except TimeoutError:
        return bytearray(size), None
    fits = [b for b in pool.free if len(b) >= size]
    if not fits:  # with room to spare, so that the next, slightly larger xorb fits too
        return bytearray(min(limit, size + size // 8)), pool
    buf = min(fits, key=len)
    pool.free.remove(buf)
    return buf, pool


def _give(buf: bytearray, pool: _Buffers | None) -> None:
    if pool is None:
        return
    pool.free.append(buf)
    if len(pool.free) > KEEP_BUFFERS:
        pool.free.remove(min(pool.free, key=len))
    pool.slots.release()


async def _pooled_body(ctx: Ctx, limit: int, what: str) -> tuple[bytearray, int, _Buffers | None] | None:
    """The body read into a reused buffer when Content-Length declares its size: (buffer, length, pool)."""
    declared = ctx.request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        return None
    size = int(declared)
    if size > limit:
        raise PayloadTooLargeError(f"A {what} may hold at most {limit} bytes")
    buf, pool = await _take(size, limit)
    pos = 0
    try:
        with memoryview(buf) as view:
            async for chunk in ctx.request.stream():
                if pos + len(chunk) > size:
                    raise InvalidInputError(f"The {what} body is longer than its Content-Length")
                view[pos : pos + len(chunk)] = chunk
                pos += len(chunk)
    except BaseException:
        _give(buf, pool)
        raise
    return buf, pos, pool


async def upload_xorb(ctx: Ctx) -> Response:
    repo_pk = await _scope(ctx, write=True)
    pooled = await _pooled_body(ctx, MAX_XORB_BODY, "xorb")
    if pooled is None:
        body = await _body(ctx, MAX_XORB_BODY, "xorb")
        inserted = await run_in_threadpool(
            xet_svc.upload_xorb, ctx.hub, repo_pk, ctx.params["prefix"], ctx.params["hash"], body
        )
        return json_response({"was_inserted": inserted})
    buf, size, pool = pooled
    try:
        with memoryview(buf) as whole, whole[:size] as view:
            # The service keeps no reference to the body once it returns (stores copy or write it).
            inserted = await run_in_threadpool(
                xet_svc.upload_xorb, ctx.hub, repo_pk, ctx.params["prefix"], ctx.params["hash"], view
            )
    finally:
        _give(buf, pool)
    return json_response({"was_inserted": inserted})


async def no_grants(ctx: Ctx) -> Response:
    """Upload grants are not offered: exactly 404 makes hf_xet use ``POST /v1/xorbs``."""
    await _scope(ctx, write=True)
    raise NotFoundError("Xorb upload grants are not offered here; use POST /v1/xorbs")


async def shard_v2(ctx: Ctx) -> Response:
    """The streaming shard API is not offered: 404 makes hf_xet fall back to ``/v1/shards``."""
    raise NotFoundError("Use POST /v1/shards")


async def upload_shard(ctx: Ctx) -> Response:
    repo_pk = await _scope(ctx, write=True)
    body = await _body(ctx, MAX_SHARD_BYTES, "shard")
    result = await run_in_threadpool(xet_svc.upload_shard, ctx.hub, repo_pk, body)
    return json_response({"result": result})


async def reconstruction(ctx: Ctx) -> Response:
    repo_pk = await _scope(ctx, write=False)
    version = 2 if ctx.params["v"] == "2" else 1
    answer = await run_in_threadpool(
        xet_svc.reconstruction, ctx.hub, repo_pk, ctx.params["hash"], ctx.request.headers.get("range"),
        ctx.base_url(), version,
    )
    return json_response(answer)


async def fetch(ctx: Ctx) -> Response:
    """A byte range of a stored xorb, authorised by the signed URL itself (no Authorization)."""
    key, start, end = await run_in_threadpool(
        xet_svc.fetch_target, ctx.hub, ctx.params["token"], ctx.request.headers.get("range")
    )
    headers = {"Content-Length": str(end - start), "Accept-Ranges": "bytes"}
    status = 200
    if ctx.request.headers.get("range"):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/*"
    if ctx.request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(_stream(ctx.hub, key, start, end), status_code=status, headers=headers,
                             media_type="application/octet-stream")


async def dedup(ctx: Ctx) -> Response:
    await _scope(ctx, write=False)
    shard = await run_in_threadpool(xet_svc.dedup_query, ctx.hub, ctx.params["prefix"], ctx.params["hash"])
    return Response(shard, media_type="application/octet-stream")


async def telemetry(ctx: Ctx) -> Response:
    await ctx.request.body()
    return Response(b"", status_code=200)


def register(router: Router) -> None:
    router.add("GET", rf"{API_REPO}/xet-(?P<mode>read|write)-token/(?P<rev>.+)", token)
    cas = xet_svc.CAS_PATH
    router.add("POST", rf"{cas}/v1/xorbs/{PFX}/{HASH}", upload_xorb)
    router.add("POST", rf"{cas}/v1/xorb-grants/{PFX}/{HASH}", no_grants)
    router.add("POST", rf"{cas}/v1/xorb-commits/.*", no_grants)
    router.add("POST", rf"{cas}/v2/shards", shard_v2)
    router.add("POST", rf"{cas}/v1/shards", upload_shard)
    router.add("GET", rf"{cas}/v(?P<v>[12])/reconstructions/{HASH}", reconstruction)
    router.add("GET", rf"{cas}/v1/chunks/{PFX}/{HASH}", dedup)
    router.add("GET", rf"{cas}/fetch/(?P<token>[A-Za-z0-9_.-]+)", fetch)
    router.add("POST", rf"(?:{cas})?/v1/telemetry", telemetry)
