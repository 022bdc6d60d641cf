"""Xet: the Hub token routes and the CAS endpoints that ``hf_xet`` calls, under ``/xet``.

CAS calls carry ``Authorization: Bearer <Xet token>``, except the xorb range fetches, whose
URLs sign themselves. Answers are never compressed (the client sends no Accept-Encoding).
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import NotFoundError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    bounded_stream,
    declared_length,
    flag,
    follows_moves,
    json_response,
    read_body,
    repo_id,
    repo_type,
)
from modelyard.http.routes.files import _stream
from modelyard.services import xet as xet_svc
from modelyard.services.grants import Grant

HASH = r"(?P<hash>[^/]+)"  # validated by the service: a bad hash is a 400, not a 404
PFX = r"(?P<prefix>[^/]+)"


async def token(ctx: Ctx) -> Response:
    """``xet-read-token`` / ``xet-write-token``: the JSON body for hf_xet, headers for huggingface_hub."""
    found = await ctx.call(
        xet_svc.issue_token, repo_type(ctx.params), repo_id(ctx.params), ctx.params["mode"], ctx.base_url(),
        ctx.params["rev"], flag(ctx.request.query_params.get("create_pr")),
    )
    headers = {
        "X-Xet-Cas-Url": found.cas_url,
        "X-Xet-Access-Token": found.access_token,
        "X-Xet-Token-Expiration": str(found.exp),
    }
    return json_response({"accessToken": found.access_token, "exp": found.exp, "casUrl": found.cas_url},
                         headers=headers)


async def _scope(ctx: Ctx, write: bool) -> Grant:
    return await run_in_threadpool(xet_svc.cas_scope, ctx.hub, ctx.token, write)


#: Xorb bodies are received into reused buffers: a fresh 64 MiB buffer costs a page fault per
#: 4 KiB, several times the copy itself. A process keeps at most this many (the largest), so up
#: to 2 x MAX_XORB_BODY stays with a process that has received xorbs.
KEEP_BUFFERS = 2


class _Buffers:
    """The idle xorb buffers of one event loop (only that loop's thread touches them)."""

    def __init__(self) -> None:
        self.free: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        """An idle buffer of at least ``size`` bytes, else a new, empty one that grows as the
        body arrives: memory follows the bytes received, never a ``Content-Length`` claim."""
        fits = [b for b in self.free if len(b) >= size]
        if not fits:
            return bytearray()
        buf = min(fits, key=len)
        self.free.remove(buf)
        return buf

    def give(self, buf: bytearray) -> None:
        self.free.append(buf)
        if len(self.free) > KEEP_BUFFERS:
            self.free.remove(min(self.free, key=len))


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Buffers] = weakref.WeakKeyDictionary()


async def _pooled_body(ctx: Ctx, limit: int, what: str) -> tuple[bytearray, int, _Buffers]:
    """The body in a reused (or growing) buffer: (buffer, length, pool to give it back to)."""
    pool = _POOLS.setdefault(asyncio.get_running_loop(), _Buffers())
    buf = pool.take(min(declared_length(ctx) or 0, limit))
    pos = 0
    try:
        async for chunk in bounded_stream(ctx, limit, what):
            end = pos + len(chunk)
            if end <= len(buf):
                buf[pos:end] = chunk
            else:
                del buf[pos:]
                buf += chunk
            pos = end
    except BaseException:
        pool.give(buf)
        raise
    return buf, pos, pool


async def upload_xorb(ctx: Ctx) -> Response:
    grant = await _scope(ctx, write=True)
    buf, size, pool = await _pooled_body(ctx, xet_svc.MAX_XORB_BODY, "xorb")
    try:
        with memoryview(buf) as whole, whole[:size] as view:
            # The service keeps no reference to the body once it returns (stores copy or write it).
            inserted = await run_in_threadpool(
                xet_svc.upload_xorb, ctx.hub, grant.repo.id, ctx.params["prefix"], ctx.params["hash"], view
            )
    finally:
        pool.give(buf)
    return json_response({"was_inserted": inserted})


async def no_grants(ctx: Ctx) -> Response:
    """Upload grants are not offered: exactly 404 makes hf_xet use ``POST /v1/xorbs``."""
    await _scope(ctx, write=True)
    raise NotFoundError("Xorb upload grants are not offered here; use POST /v1/xorbs")


async def shard_v2(ctx: Ctx) -> Response:
    """The streaming shard API is not offered: 404 makes hf_xet fall back to ``/v1/shards``."""
    raise NotFoundError("Use POST /v1/shards")


async def upload_shard(ctx: Ctx) -> Response:
    grant = await _scope(ctx, write=True)
    body = await read_body(ctx, xet_svc.MAX_SHARD_BYTES, "shard")
    result = await ctx.bulk(xet_svc.upload_shard, ctx.hub, grant, body)
    return json_response({"result": result})


async def reconstruction(ctx: Ctx) -> Response:
    grant = await _scope(ctx, write=False)
    version = 2 if ctx.params["v"] == "2" else 1
    answer = await run_in_threadpool(
        xet_svc.reconstruction, ctx.hub, grant, ctx.params["hash"], ctx.request.headers.get("range"),
        ctx.base_url(), version,
    )
    return json_response(answer)


async def fetch(ctx: Ctx) -> Response:
    """A byte range of a stored xorb, authorised by the signed URL itself (no Authorization)."""
    key, start, end = await run_in_threadpool(
        xet_svc.fetch_target, ctx.hub, ctx.params["token"], ctx.request.headers.get("range")
    )
    headers = {"Content-Length": str(end - start), "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}
    status = 200
    if ctx.request.headers.get("range"):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/*"
    if ctx.request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(_stream(ctx.hub, key, start, end), status_code=status, headers=headers,
                             media_type="application/octet-stream")


async def dedup(ctx: Ctx) -> Response:
    grant = await _scope(ctx, write=False)
    shard = await run_in_threadpool(xet_svc.dedup_query, ctx.hub, grant, ctx.params["prefix"], ctx.params["hash"])
    return Response(shard, media_type="application/octet-stream")


async def telemetry(ctx: Ctx) -> Response:
    await read_body(ctx, 64 * 1024, "telemetry body")
    return Response(b"", status_code=200)


def register(router: Router) -> None:
    router.add("GET", rf"{API_REPO}/xet-(?P<mode>read)-token/(?P<rev>.+)", follows_moves(token))
    router.add("GET", rf"{API_REPO}/xet-(?P<mode>write)-token/(?P<rev>.+)", token)
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
