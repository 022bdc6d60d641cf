"""Downloads (``/resolve``), tree listings and paths-info."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from modelyard.errors import InvalidInputError, RangeNotSatisfiableError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    PREFIX,
    REPO,
    REV,
    entry_json,
    flag,
    follows_moves,
    iterate,
    json_body,
    json_response,
    link_next,
    read_body,
    repo_id,
    repo_type,
)
from modelyard.ranges import parse_range
from modelyard.services import files as files_svc
from modelyard.services import repos as repos_svc
from modelyard.services import scans as scans_svc
from modelyard.services.auth import Principal
from modelyard.services.hub import Hub

MAX_PATHS = 1000
TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50


def file_window(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` a download's ``Range`` asks for; None for the whole file."""
    try:
        wanted = parse_range(header)
    except InvalidInputError as exc:
        raise RangeNotSatisfiableError(exc.message, size) from exc
    return None if wanted is None else wanted.window(size)


def _stream(hub: Hub, key: str, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
    return iterate(files_svc.blob_pieces(hub, key, start, end))


#: Types a browser would run or render as a document from the hub's origin: served as plain text.
ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl",
    "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript",
    "text/ecmascript", "application/wasm", "application/pdf", "text/css", "application/x-shockwave-flash",
    "text/cache-manifest", "application/manifest+json", "text/vtt",
})


def safe_media_type(filename: str) -> str:
    """The Content-Type a user's file is served with: never one a browser would execute."""
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if guessed in ACTIVE_TYPES or guessed.endswith(("+xml", "script")):
        return "text/plain; charset=utf-8"
    return guessed


async def resolve(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    counting = None
    head = ctx.request.method == "HEAD"
    if head and "x-hf-download-counter" in ctx.request.headers:
        counting = ctx.client_address()
    resolved = await ctx.call(
        files_svc.resolve_file, rtype, rid, ctx.params["rev"], ctx.params["path"], counting, not head
    )
    entry = resolved.entry
    size = entry.size
    filename = entry.path.rsplit("/", 1)[-1]
    headers = {
        "X-Repo-Commit": resolved.commit,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "private, max-age=0, must-revalidate",
        # Uploaded bytes never run as active content on the hub's origin (docs/security.md).
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if entry.lfs_sha256 is not None:
        headers["ETag"] = f'"{entry.lfs_sha256}"'
        headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
        headers["X-Linked-Size"] = str(size)
        if entry.xet_hash is not None:  # Xet clients download through the CAS (hub-api.md §8.4)
            types = {"model": "models", "dataset": "datasets"}.get(rtype, "spaces")
            refresh = f"{ctx.base_url()}/api/{types}/{rid}/xet-read-token/{resolved.commit}"
            headers["X-Xet-Hash"] = entry.xet_hash
            headers["Link"] = f'<{refresh}>; rel="xet-auth"'
    else:
        headers["ETag"] = f'"{entry.oid}"'
    media_type = safe_media_type(filename)
    location = files_svc.direct_url(ctx.hub, resolved, filename, media_type)
    if location is not None:  # the store sends the bytes; the client reads the metadata from here
        headers["Location"] = location
        return Response(b"", status_code=302, headers=headers)
    return await send_file(ctx, resolved, headers, media_type)


async def send_file(ctx: Ctx, resolved: files_svc.ResolvedFile, headers: dict[str, str], media_type: str) -> Response:
    """A resolved file (or the ``Range`` asked for) with ``headers``: streamed, never buffered whole."""
    entry = resolved.entry
    size = entry.size
    window = None if resolved.whole else file_window(ctx.request.headers.get("range"), size)
    status = 200
    start, end = 0, size
    if window is not None:
        start, end = window
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if ctx.request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type=media_type)
    if resolved.inline is not None:
        return Response(resolved.inline[start:end], status_code=status, headers=headers, media_type=media_type)
    if resolved.upstream is not None:  # a mirror's file not held yet: streamed as it arrives
        from modelyard.services import mirror as mirror_svc

        flight = await run_in_threadpool(mirror_svc.flight, ctx.hub, resolved.upstream)
        if end > start:  # a failure before the first byte is an error answer, not a cut body
            await flight.wait_past(start)
        return StreamingResponse(flight.pieces(start, end), status_code=status, headers=headers,
                                 media_type=media_type)
    if resolved.blob_key is None:  # a Xet file: rebuilt from its xorbs as it streams
        from modelyard.services.xet import read_range, stored_file

        assert entry.xet_hash is not None
        stored = await run_in_threadpool(stored_file, ctx.hub, entry.xet_hash)
        return StreamingResponse(
            iterate(read_range(ctx.hub, stored, start, end)), status_code=status, headers=headers,
            media_type=media_type,
        )
    return StreamingResponse(
        _stream(ctx.hub, resolved.blob_key, start, end), status_code=status, headers=headers,
        media_type=media_type,
    )


def _tree(
    hub: Hub, principal: Principal | None, rtype: str, rid: str, rev: str, path: str, recursive: bool,
    expand: bool, offset: int,
) -> tuple[str, list[dict[str, Any]], int | None]:
    snap, entries = files_svc.list_tree(hub, principal, rtype, rid, rev, path, recursive)
    page = TREE_PAGE_EXPANDED if expand else TREE_PAGE
    chunk = entries[offset : offset + page]
    lasts = (
        files_svc.last_commits(hub, snap.commit.oid, [e.path for e in chunk]) if expand and chunk else {}
    )
    security = scans_svc.file_statuses(hub, chunk) if expand else {}
    items = [entry_json(e, lasts.get(e.path), security.get(e.path)) for e in chunk]
    following = offset + page if offset + page < len(entries) else None
    return snap.commit.oid, items, following


async def tree(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    recursive, expand = flag(q.get("recursive")), flag(q.get("expand"))
    try:
        offset = int(q.get("cursor") or 0)
    except ValueError as exc:
        raise InvalidInputError("Invalid pagination cursor") from exc
    if offset < 0:
        raise InvalidInputError("Invalid pagination cursor")
    path = ctx.params.get("path", "")
    commit, items, following = await ctx.call(
        _tree, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], path, recursive, expand, offset,
    )
    headers = {}
    if following is not None:
        # Later pages are pinned to the commit, so a branch moving meanwhile cannot shift them.
        qs = urlencode({"recursive": str(recursive).lower(), "expand": str(expand).lower(), "cursor": following})
        suffix = f"/{quote(path, safe='')}" if path else ""
        headers = link_next(
            f"{ctx.base_url()}/api/{ctx.params['types']}/{repo_id(ctx.params)}/tree/{commit}{suffix}?{qs}"
        )
    return json_response(items, headers=headers)


def _paths_info(
    hub: Hub, principal: Principal | None, rtype: str, rid: str, rev: str, paths: list[str], expand: bool,
) -> list[dict[str, Any]]:
    snap, entries = files_svc.paths_info(hub, principal, rtype, rid, rev, paths)
    lasts = files_svc.last_commits(hub, snap.commit.oid, [e.path for e in entries]) if expand else {}
    security = scans_svc.file_statuses(hub, entries) if expand else {}
    return [entry_json(e, lasts.get(e.path), security.get(e.path)) for e in entries]


async def paths_info(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(repos_svc.authorize, rtype, rid)
    content_type = ctx.request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await json_body(ctx)
        paths, expand = body.get("paths", []), bool(body.get("expand"))
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InvalidInputError("'paths' must be a list of strings")
    else:
        raw = await read_body(ctx, ctx.hub.settings.max_json_body, "form body")
        try:
            form = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=MAX_PATHS + 8)
        except UnicodeDecodeError as exc:
            raise InvalidInputError("The form body is not UTF-8") from exc
        except ValueError as exc:
            raise InvalidInputError(f"At most {MAX_PATHS} paths per request") from exc
        paths = form.get("paths", [])
        expand = flag((form.get("expand") or [""])[0])
    if len(paths) > MAX_PATHS:
        raise InvalidInputError(f"At most {MAX_PATHS} paths per request")
    items = await ctx.call(_paths_info, rtype, rid, ctx.params["rev"], paths, expand)
    return json_response(items)


def register(router: Router) -> None:
    router.add("GET", rf"/{PREFIX}{REPO}/resolve/{REV}/(?P<path>.+)", follows_moves(resolve))
    router.add("GET", rf"{API_REPO}/tree/{REV}(?:/(?P<path>.+))?", follows_moves(tree))
    router.add("POST", rf"{API_REPO}/paths-info/{REV}", follows_moves(paths_info))
