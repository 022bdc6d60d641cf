"""Git LFS batch API, self-authorising upload URLs, multipart parts and completion."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import RepoNotFoundError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    PREFIX,
    REPO,
    iterate,
    json_body,
    json_response,
    moved,
    read_body,
    repo_id,
    repo_type,
    repo_url,
)
from modelyard.http.routes.files import _stream
from modelyard.services import lfs as lfs_svc
from modelyard.services import repos as repos_svc
from modelyard.services.lfs import BlobWriter

LFS_JSON = "application/vnd.git-lfs+json"
#: Body bytes handed to a worker thread at a time: few thread hops per GiB (each costs more
#: than hashing a MiB), two batches held per upload.
WRITE_BATCH = 16 * 1024 * 1024


async def batch(ctx: Ctx) -> Response:
    base = ctx.base_url()
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    try:
        await ctx.call(repos_svc.authorize, rtype, rid)  # uploads also need write: checked with the body
    except RepoNotFoundError as missing:
        # A moved repo's old id: downloads are redirected (307 keeps the body), uploads are not.
        new_id = await ctx.call(repos_svc.moved_to, rtype, rid)
        if new_id is None or (await json_body(ctx)).get("operation") != "download":
            raise missing
        raise moved(ctx, new_id) from None
    body = await json_body(ctx)
    transfer, objects = await ctx.call(lfs_svc.batch, rtype, rid, body, base, repo_url(base, rtype, rid))
    out = []
    for obj in objects:
        item: dict[str, object] = {"oid": obj.oid, "size": obj.size}
        if obj.actions:
            item["authenticated"] = True
            item["actions"] = obj.actions
        if obj.error:
            item["error"] = obj.error
        out.append(item)
    return json_response({"transfer": transfer, "objects": out, "hash_algo": "sha256"}, media_type=LFS_JSON)


async def verify(ctx: Ctx) -> Response:
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params))
    body = await json_body(ctx)
    await ctx.call(lfs_svc.verify, repo_type(ctx.params), repo_id(ctx.params), body)
    return json_response({"message": "ok"}, media_type=LFS_JSON)


def _write_pieces(writer: BlobWriter, pieces: list[bytes], also: Any = None) -> None:
    for piece in pieces:
        writer.write(piece)
        if also is not None:  # a multipart object's running sha256 (services/lfs.py part_chain)
            also.update(piece)


async def _receive_into(ctx: Ctx, writer: BlobWriter, also: Any = None) -> None:
    """Stream the request body into ``writer`` in ``WRITE_BATCH`` batches; abort it on any failure.

    One batch is hashed and written (in a worker thread; the pieces as received, not joined)
    while the next is received, so the socket is not left idle meanwhile; at most two batches
    are held.
    """
    pending: list[bytes] = []
    pending_size = 0
    writing: asyncio.Task[None] | None = None
    try:
        async for chunk in ctx.request.stream():
            if not chunk:
                continue
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= WRITE_BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(run_in_threadpool(_write_pieces, writer, pending, also))
                pending, pending_size = [], 0
        if writing is not None:
            await writing
        if pending:
            await run_in_threadpool(_write_pieces, writer, pending, also)
    except BaseException:
        if writing is not None:
            # A thread cannot be interrupted: let its write finish before the file goes away.
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()  # retrieved; the error being raised is the one that matters
        await run_in_threadpool(writer.abort)
        raise


async def upload(ctx: Ctx) -> Response:
    """A basic-transfer PUT: the URL itself authorises it (clients send no token here)."""
    hub = ctx.hub
    target = await run_in_threadpool(lfs_svc.upload_target, hub, ctx.params["token"])
    writer = hub.blobs.writer(max_size=target.size)
    await _receive_into(ctx, writer)
    await run_in_threadpool(
        lfs_svc.finish_upload, hub, writer, target.repo_pk, target.sha256, target.size, target.repo_uid
    )
    return Response(b"", status_code=200)


async def upload_part(ctx: Ctx) -> Response:
    hub = ctx.hub
    target = await run_in_threadpool(lfs_svc.part_target, hub, ctx.params["token"])
    writer = await run_in_threadpool(lfs_svc.part_writer, hub, target)
    chain = lfs_svc.part_chain(target.upload_id, target.part)
    await _receive_into(ctx, writer, chain)
    etag = await run_in_threadpool(lfs_svc.finish_part, hub, target, writer, chain)
    return Response(b"", status_code=200, headers={"ETag": f'"{etag}"'})


async def complete(ctx: Ctx) -> Response:
    target = await run_in_threadpool(lfs_svc.complete_target, ctx.hub, ctx.params["token"])
    body = await json_body(ctx)
    await ctx.bulk(lfs_svc.complete_multipart, ctx.hub, target, body)
    return json_response({"message": "ok"}, media_type=LFS_JSON)


async def download(ctx: Ctx) -> Response:
    target = await run_in_threadpool(lfs_svc.download_target, ctx.hub, ctx.params["token"])
    headers = {"X-Content-Type-Options": "nosniff"}
    if target.xet_hash is not None:  # uploaded through Xet: rebuilt from its xorbs
        from modelyard.services.xet import read_range, stored_file

        stored = await run_in_threadpool(stored_file, ctx.hub, target.xet_hash)
        return StreamingResponse(
            iterate(read_range(ctx.hub, stored, 0, stored.size)),
            headers={**headers, "Content-Length": str(stored.size)}, media_type="application/octet-stream",
        )
    size = await run_in_threadpool(ctx.hub.blobs.size, target.key)
    if size is None:
        from modelyard.errors import NotFoundError

        raise NotFoundError("LFS object missing from storage")
    return StreamingResponse(
        _stream(ctx.hub, target.key, 0, size), headers={**headers, "Content-Length": str(size)},
        media_type="application/octet-stream",
    )


async def staged(ctx: Ctx) -> Response:
    """The verify step of an upload that went straight to the store: the URL authorises itself;
    the hub reads the staged bytes back (seconds per GiB, in the bulk pool) before publishing them."""
    await read_body(ctx, 64 * 1024, "verify body")  # {"oid", "size"}: the token already names both
    await ctx.bulk(lfs_svc.publish_staged, ctx.hub, ctx.params["token"])
    return json_response({"message": "ok"}, media_type=LFS_JSON)


async def staged_parts(ctx: Ctx) -> Response:
    """The completion of a multipart upload straight into the store (the URL authorises itself)."""
    body = await json_body(ctx)
    await ctx.bulk(lfs_svc.finish_staged_parts, ctx.hub, ctx.params["token"], body)
    return json_response({"message": "ok"}, media_type=LFS_JSON)


def register(router: Router) -> None:
    lfs_base = rf"/{PREFIX}{REPO}\.git/info/lfs/objects"
    router.add("POST", rf"{lfs_base}/batch", batch)
    router.add("POST", rf"{lfs_base}/verify", verify)
    router.add("PUT", r"/_lfs/upload/(?P<token>[^/]+)", upload)
    router.add("PUT", r"/_lfs/parts/(?P<token>[^/]+)", upload_part)
    router.add("POST", r"/_lfs/complete/(?P<token>[^/]+)", complete)
    router.add("GET", r"/_lfs/objects/(?P<token>[^/]+)", download)
    router.add("POST", r"/_lfs/staged/(?P<token>[^/]+)", staged)
    router.add("POST", r"/_lfs/staged-parts/(?P<token>[^/]+)", staged_parts)

