"""Repo CRUD, settings, info and listing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from modelyard.catalog.repos import Repo
from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    REV,
    TYPES,
    flag,
    iso,
    json_body,
    json_response,
    link_next,
    repo_id,
    repo_type,
    repo_url,
)
from modelyard.ids import parse_repo_type
from modelyard.services import repos as repos_svc
from modelyard.services.auth import Principal, check_write
from modelyard.services.files import FileEntry, list_tree
from modelyard.services.hub import Hub
from modelyard.services.repos import RepoSnapshot


async def create(ctx: Ctx) -> Response:
    body = await json_body(ctx.request)
    name, org = body.get("name"), body.get("organization")
    if not isinstance(name, str) or (org is not None and not isinstance(org, str)):
        raise InvalidInputError("'name' (and optionally 'organization') must be strings")
    rtype = parse_repo_type(body.get("type"))
    visibility = body.get("visibility")
    private = body.get("private")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise InvalidInputError("visibility must be 'public' or 'private'")
        private = visibility == "private"
    elif private is not None and not isinstance(private, bool):
        raise InvalidInputError("private must be a boolean")
    if "/" in name and org is None:
        org, name = name.split("/", 1)
    base = ctx.base_url()
    repo = await ctx.call(
        repos_svc.create_repo, rtype, org, name, private, lambda t, rid: repo_url(base, t, rid)
    )
    return json_response({"url": repo_url(base, rtype, repo.repo_id), "name": repo.repo_id,
                          "id": f"{repo.id:024x}"})


def _target(body: dict[str, Any]) -> tuple[str, str]:
    name, org = body.get("name"), body.get("organization")
    if not isinstance(name, str):
        raise InvalidInputError("'name' is required")
    if org is None:
        raise InvalidInputError("'organization' is required")
    return parse_repo_type(body.get("type")), f"{org}/{name}"


async def delete(ctx: Ctx) -> Response:
    body = await json_body(ctx.request)
    rtype, rid = _target(body)
    await ctx.call(repos_svc.delete_repo, rtype, rid)
    return Response(b"", status_code=200)


async def move(ctx: Ctx) -> Response:
    body = await json_body(ctx.request)
    src, dst = body.get("fromRepo"), body.get("toRepo")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise InvalidInputError("'fromRepo' and 'toRepo' are required")
    rtype = parse_repo_type(body.get("type"))
    await ctx.call(repos_svc.move_repo, rtype, src, dst)
    return Response(b"", status_code=200)


async def settings(ctx: Ctx) -> Response:
    body = await json_body(ctx.request)
    await ctx.call(repos_svc.update_settings, repo_type(ctx.params), repo_id(ctx.params), body)
    return json_response({})


def sibling(entry: FileEntry, blobs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": entry.path}
    if blobs:
        out["size"] = entry.size
        out["blobId"] = entry.oid
        if entry.lfs_sha256 is not None:
            out["lfs"] = {"size": entry.lfs_size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
    return out


def base_fields(repo: Repo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "_id": f"{repo.id:024x}",
        "id": repo.repo_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": repo.tags,
        "createdAt": iso(repo.created_at),
        "trendingScore": repo.trending_score,
    }
    if repo.type == "model":
        out["modelId"] = repo.repo_id
        out["library_name"] = repo.library_name
        out["pipeline_tag"] = repo.pipeline_tag
    return out


def info_json(
    snap: RepoSnapshot, entries: list[FileEntry] | None, blobs: bool, expand: list[str]
) -> dict[str, Any]:
    repo = snap.repo
    out = base_fields(repo)
    out.update({
        "sha": snap.commit.oid,
        "lastModified": iso(snap.commit.date),
        "usedStorage": repo.used_storage,
        "downloadsAllTime": repo.downloads_all_time,
    })
    if repo.card_data is not None:
        out["cardData"] = repo.card_data
    if entries is not None:
        out["siblings"] = [sibling(e, blobs) for e in entries if not e.is_dir]
    if expand:
        keep = set(expand) | {"id", "_id"}
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _info(
    hub: Hub, principal: Principal | None, rtype: str, rid: str, rev: str
) -> tuple[RepoSnapshot, list[FileEntry]]:
    return list_tree(hub, principal, rtype, rid, rev, "", recursive=True)


async def info(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    expand = q.getlist("expand") + q.getlist("expand[]")
    blobs = flag(q.get("blobs"))
    if expand and (blobs or flag(q.get("securityStatus"))):
        raise InvalidInputError("'expand' cannot be combined with 'blobs' or 'securityStatus'")
    rev = ctx.params.get("rev", "main")
    snap, entries = await ctx.call(_info, repo_type(ctx.params), repo_id(ctx.params), rev)
    return json_response(info_json(snap, entries, blobs, expand))


async def auth_check(ctx: Ctx) -> Response:
    write = ctx.params.get("write") is not None

    def run(hub: Hub, principal: Principal | None, rtype: str, rid: str) -> None:
        with hub.db.read() as conn:
            repo = repos_svc.find_repo(conn, principal, rtype, rid)
        if write:
            check_write(principal, repo)

    await ctx.call(run, repo_type(ctx.params), repo_id(ctx.params))
    return json_response({})


def _list_page(
    hub: Hub, principal: Principal | None, rtype: str, opts: dict[str, Any], full: bool,
) -> tuple[list[dict[str, Any]], str | None]:
    rows, cursor = repos_svc.list_repos(hub, principal, rtype, **opts)
    items = []
    for repo in rows:
        item = base_fields(repo)
        item["lastModified"] = iso(repo.last_modified)
        if repo.card_data is not None:
            item["cardData"] = repo.card_data
        if full:
            snap, entries = list_tree(hub, principal, rtype, repo.repo_id, "main", "", recursive=True)
            item["sha"] = snap.commit.oid
            item["siblings"] = [sibling(e, False) for e in entries if not e.is_dir]
            item["usedStorage"] = repo.used_storage
        items.append(item)
    return items, cursor


async def list_repos(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    rtype = repo_type(ctx.params)
    limit_raw = q.get("limit")
    try:
        limit = int(limit_raw) if limit_raw else None
    except ValueError as exc:
        raise InvalidInputError("limit must be an integer") from exc
    filters = q.getlist("filter")
    for key in ("pipeline_tag", "library", "language", "license"):
        if q.get(key):
            value = q[key]
            filters.append(value if key in ("pipeline_tag", "library", "language") else f"license:{value}")
    opts = {
        "search": q.getlist("search"), "author": q.get("author"), "filters": filters,
        "sort": q.get("sort"), "limit": limit, "cursor": q.get("cursor"),
    }
    expand = q.getlist("expand") + q.getlist("expand[]")
    full = flag(q.get("full")) or bool(expand and "siblings" in expand)
    items, cursor = await ctx.call(_list_page, rtype, opts, full)
    card = flag(q.get("cardData")) or flag(q.get("full")) or "cardData" in expand
    if not card:
        for item in items:
            item.pop("cardData", None)
    if expand:
        keep = set(expand) | {"id", "_id"}
        items = [{k: v for k, v in item.items() if k in keep} for item in items]
    headers = {}
    if cursor is not None:
        params = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", cursor)]
        headers = link_next(f"{ctx.base_url()}/api/{ctx.params['types']}?{urlencode(params)}")
    return json_response(items, headers=headers)


def register(router: Router) -> None:
    router.add("POST", r"/api/repos/create", create)
    router.add("DELETE", r"/api/repos/delete", delete)
    router.add("POST", r"/api/repos/move", move)
    router.add("GET", rf"/api/{TYPES}", list_repos)
    router.add("GET", API_REPO, info)
    router.add("GET", rf"{API_REPO}/revision/{REV}", info)
    router.add("PUT", rf"{API_REPO}/settings", settings)
    router.add("GET", rf"{API_REPO}/auth-check(?P<write>/write)?", auth_check)
