"""Xet: the Hub token routes and the CAS endpoints that ``hf_xet`` calls, under ``/xet``.

CAS calls carry ``Authorization: Bearer <Xet token>``, except the xorb range fetches, whose
URLs sign themselves. Answers are never compressed (the client sends no Accept-Encoding).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import NotFoundError, PayloadTooLargeError
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


async def upload_xorb(ctx: Ctx) -> Response:
    repo_pk = await _scope(ctx, write=True)
    body = await _body(ctx, MAX_XORB_BODY, "xorb")
    inserted = await run_in_threadpool(
        xet_svc.upload_xorb, ctx.hub, repo_pk, ctx.params["prefix"], ctx.params["hash"], body
    )
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


async def iterate(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive a blocking iterator from the thread pool, one piece per hop."""
    sentinel = b""
    while True:
        piece = await run_in_threadpool(next, pieces, sentinel)
        if not piece:
            return
        yield piece


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
