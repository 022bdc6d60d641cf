"""Buckets (``/api/buckets/...`` and ``/buckets/{id}/resolve/...``), as huggingface_hub's bucket
API calls them (docs/research/buckets-client.md). The rules are in ``services/buckets.py``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import flag, iso, iterate, json_body, json_response, link_next, read_body
from modelyard.http.routes.files import file_window
from modelyard.services import buckets
from modelyard.services.buckets import BucketFile, BucketView, Folder

NS = r"(?P<ns>[^/]+)"
BUCKET = rf"{NS}/(?P<name>[^/]+)"
API = rf"/api/buckets/{BUCKET}"
MAX_BATCH_BODY = 16 * 1024 * 1024


def _id(ctx: Ctx) -> str:
    return f"{ctx.params['ns']}/{ctx.params['name']}"


def bucket_json(view: BucketView) -> dict[str, Any]:
    b = view.bucket
    return {"id": b.repo_id, "name": b.name, "author": b.namespace, "private": b.private,
            "createdAt": iso(b.created_at), "updatedAt": iso(b.last_modified), "size": view.size,
            "totalFiles": view.files}


def entry_json(entry: BucketFile | Folder) -> dict[str, Any]:
    if isinstance(entry, Folder):
        return {"type": "directory", "path": entry.path, "uploadedAt": iso(entry.uploaded_at)}
    out: dict[str, Any] = {"type": "file", "path": entry.path, "size": entry.size, "xetHash": entry.xet_hash,
                           "uploadedAt": iso(entry.uploaded_at)}
    if entry.mtime is not None:
        out["mtime"] = buckets.iso_ms(entry.mtime)
    if entry.content_type:
        out["contentType"] = entry.content_type
    return out


def bucket_url(ctx: Ctx, bucket_id: str) -> str:
    return f"{ctx.base_url()}/buckets/{bucket_id}"


async def list_buckets(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    found = await ctx.call(buckets.list_buckets, ctx.params["ns"], q.get("search"), q.get("cursor"),
                           buckets.PAGE + 1)
    headers = {}
    if len(found) > buckets.PAGE:
        found = found[: buckets.PAGE]
        query = urlencode([*([("search", q["search"])] if q.get("search") else []),
                           ("cursor", found[-1].bucket.repo_id.lower())])
        headers = link_next(f"{ctx.base_url()}{ctx.request.url.path}?{query}")
    return json_response([bucket_json(v) for v in found], headers=headers)


async def create(ctx: Ctx) -> Response:
    body = await json_body(ctx, required=False)
    made = await ctx.call(buckets.create, ctx.params["ns"], ctx.params["name"], body,
                          lambda bucket_id: bucket_url(ctx, bucket_id))
    return json_response({"url": bucket_url(ctx, made.repo_id), "id": made.repo_id, "name": made.name})


async def info(ctx: Ctx) -> Response:
    return json_response(bucket_json(await ctx.call(buckets.info, _id(ctx))))


async def delete(ctx: Ctx) -> Response:
    await ctx.call(buckets.delete, _id(ctx))
    return json_response({})


async def settings(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    await ctx.call(buckets.update_settings, _id(ctx), body)
    return json_response({})


async def tree(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    recursive = flag(q.get("recursive"))
    prefix = ctx.params.get("prefix") or ""
    entries, cursor = await ctx.call(buckets.tree, _id(ctx), prefix, recursive, q.get("cursor"))
    headers = {}
    if cursor is not None:
        query = urlencode({"recursive": "true" if recursive else "false", "cursor": cursor})
        headers = link_next(f"{ctx.base_url()}{ctx.request.url.path}?{query}")
    return json_response([entry_json(e) for e in entries], headers=headers)


async def paths_info(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    found = await ctx.call(buckets.paths_info, _id(ctx), body.get("paths"))
    return json_response([entry_json(f) for f in found])


async def batch(ctx: Ctx) -> Response:
    # Who may write is checked before the body is read.
    await ctx.call(buckets.check_writer, _id(ctx))
    raw = await read_body(ctx, MAX_BATCH_BODY, "batch")
    items = await ctx.heavy(buckets.parse_lines, raw)
    result = await ctx.call(buckets.batch, _id(ctx), items)
    ok = result.processed - len(result.failed)
    status = 422 if result.failed and ok == 0 else 200
    return json_response({"success": not result.failed, "processed": result.processed, "succeeded": ok,
                          "failed": result.failed}, status=status)


async def xet_token(ctx: Ctx) -> Response:
    found = await ctx.call(buckets.xet_token, _id(ctx), ctx.params["mode"], ctx.base_url())
    headers = {"X-Xet-Cas-Url": found.cas_url, "X-Xet-Access-Token": found.access_token,
               "X-Xet-Token-Expiration": str(found.exp)}
    return json_response({"accessToken": found.access_token, "exp": found.exp, "casUrl": found.cas_url},
                         headers=headers)


async def resolve(ctx: Ctx) -> Response:
    """A bucket file's bytes (``Range`` too), with what ``get_bucket_file_metadata`` reads."""
    bucket, f = await ctx.call(buckets.file_meta, _id(ctx), ctx.params["path"])
    refresh = f"{ctx.base_url()}/api/buckets/{quote(bucket.repo_id)}/xet-read-token"
    headers = {"X-Xet-Hash": f.xet_hash, "X-Linked-Size": str(f.size), "ETag": f'"{f.xet_hash}"',
               "Link": f'<{refresh}>; rel="xet-auth"', "Accept-Ranges": "bytes",
               "X-Content-Type-Options": "nosniff"}
    window = file_window(ctx.request.headers.get("range"), f.size)
    status, start, end = 200, 0, f.size
    if window is not None:
        start, end = window
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
    headers["Content-Length"] = str(end - start)
    media = "application/octet-stream"  # never rendered by a browser from the hub's origin
    if ctx.request.method == "HEAD" or end == start:
        return Response(b"", status_code=status, headers=headers, media_type=media)
    stored = await run_in_threadpool(buckets.stored, ctx.hub, f.xet_hash)
    return StreamingResponse(iterate(buckets.read(ctx.hub, stored, start, end)), status_code=status,
                             headers=headers, media_type=media)


def register(router: Router) -> None:
    router.add("GET", rf"/api/buckets/{NS}", list_buckets)
    router.add("POST", API, create)
    router.add("GET", API, info)
    router.add("DELETE", API, delete)
    router.add("PUT", rf"{API}/settings", settings)
    router.add("GET", rf"{API}/tree(?:/(?P<prefix>.*))?", tree)
    router.add("POST", rf"{API}/paths-info", paths_info)
    router.add("POST", rf"{API}/batch", batch)
    router.add("GET", rf"{API}/xet-(?P<mode>read|write)-token", xet_token)
    router.add("GET HEAD", rf"/buckets/{BUCKET}/resolve/(?P<path>.+)", resolve)
