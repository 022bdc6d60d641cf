"""LFS file management: ``list_lfs_files`` and ``permanently_delete_lfs_files`` (hub-api.md §9.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    flag,
    iso,
    json_body,
    json_response,
    link_next,
    repo_id,
    repo_type,
)
from modelyard.services import lfs_files as lfs_files_svc
from modelyard.services.lfs_files import LfsFile


def item_json(f: LfsFile) -> dict[str, Any]:
    """The fields ``LFSFileInfo`` reads (``fileOid``, ``filename``, ``oid``, ``pushedAt``, ``size``
    required; ``ref`` optional) and ``xetHash`` for files that came through Xet, as the Hub sends."""
    out: dict[str, Any] = {"fileOid": f.sha256, "oid": f.sha256, "size": f.size, "pushedAt": iso(f.pushed_at),
                           "filename": f.filename}
    if f.ref is not None:
        out["ref"] = f.ref
    if f.xet_hash is not None:
        out["xetHash"] = f.xet_hash
    return out


async def list_files(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    try:
        limit = int(q.get("limit") or lfs_files_svc.PAGE)
    except ValueError as exc:
        raise InvalidInputError("'limit' must be an integer") from exc
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    files, following = await ctx.call(lfs_files_svc.list_lfs_files, rtype, rid, q.get("cursor") or None, limit)
    headers = {}
    if following is not None:
        qs = urlencode({"cursor": following, "limit": limit})
        headers = link_next(f"{ctx.base_url()}/api/{ctx.params['types']}/{rid}/lfs-files?{qs}")
    return json_response([item_json(f) for f in files], headers=headers)


async def delete_batch(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(lfs_files_svc.authorize_purge, rtype, rid)  # before a byte of the body
    body = await json_body(ctx)
    deletions = body.get("deletions")
    if not isinstance(deletions, dict):
        raise InvalidInputError("The body must be {'deletions': {'sha': [...], 'rewriteHistory': bool}}")
    rewrite = deletions.get("rewriteHistory", True)
    if not isinstance(rewrite, bool):
        raise InvalidInputError("'deletions.rewriteHistory' must be a boolean")
    report = await ctx.call(lfs_files_svc.permanently_delete, rtype, rid, deletions.get("sha"), rewrite)
    return json_response({"deleted": report.deleted})


async def delete_one(ctx: Ctx) -> Response:
    """``DELETE lfs-files/{sha}[?rewriteHistory=...]``: the Hub's single deletion (no client calls it)."""
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    rewrite = flag(ctx.request.query_params.get("rewriteHistory", "true"))
    report = await ctx.call(lfs_files_svc.permanently_delete, rtype, rid, [ctx.params["sha"]], rewrite)
    return json_response({"deleted": report.deleted})


def register(router: Router) -> None:
    router.add("GET", rf"{API_REPO}/lfs-files", list_files)
    router.add("POST", rf"{API_REPO}/lfs-files/batch", delete_batch)
    router.add("DELETE", rf"{API_REPO}/lfs-files/(?P<sha>[^/]+)", delete_one)
