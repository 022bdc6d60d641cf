"""Repo info, listing and search, tags, likes, lineage and leaderboards."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    REV,
    TYPES,
    flag,
    follows_moves,
    iso,
    json_response,
    link_next,
    repo_id,
    repo_type,
)
from modelyard.services import discovery, groups
from modelyard.services import scans as scans_svc
from modelyard.services.discovery import Repo, RepoFacts
from modelyard.services.files import FileEntry


def sibling(entry: FileEntry, blobs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": entry.path}
    if blobs:
        out["size"] = entry.size
        out["blobId"] = entry.oid
        if entry.lfs_sha256 is not None:
            out["lfs"] = {"size": entry.lfs_size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
    return out


def summary(repo: Repo, facts: RepoFacts) -> dict[str, Any]:
    """The fields every listing item and info response carries."""
    out: dict[str, Any] = {
        "_id": f"{repo.id:024x}",
        "id": repo.repo_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": facts.tags,
        "createdAt": iso(repo.created_at),
        "trendingScore": repo.trending_score,
    }
    if repo.type == "model":
        out["modelId"] = repo.repo_id
        out["library_name"] = facts.library_name
        out["pipeline_tag"] = facts.pipeline_tag
    elif repo.type == "space":
        out["sdk"] = (facts.card_data or {}).get("sdk")  # the card's, as on the Hub (SpaceInfo.sdk)
    return out


def details(repo: Repo, facts: RepoFacts, bases: list[tuple[str, str]], children: int) -> dict[str, Any]:
    """Fields that info responses carry, and listings on request (``full``, ``expand``)."""
    out: dict[str, Any] = {"usedStorage": repo.used_storage, "downloadsAllTime": repo.downloads_all_time}
    if repo.upstream is not None:  # modelyard's own field: a read-only copy (services/mirror.py, bundles.py)
        out["mirror"] = {"upstream": repo.upstream}
    if facts.card_data is not None:
        out["cardData"] = facts.card_data
    if repo.type == "model":
        for key, value in (("safetensors", facts.safetensors), ("gguf", facts.gguf), ("config", facts.config),
                           ("transformersInfo", facts.transformers_info)):
            if value is not None:
                out[key] = value
        if bases:
            relation = bases[0][1] if len({r for _, r in bases}) == 1 else "merge"
            out["baseModels"] = {"relation": relation, "models": [{"id": b} for b, _ in bases]}
        out["childrenModelCount"] = children
    return out


def _select(item: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    keep = set(expand) | {"id", "_id"}
    return {k: v for k, v in item.items() if k in keep}


async def info(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    expand = q.getlist("expand") + q.getlist("expand[]")
    blobs = flag(q.get("blobs"))
    if expand and (blobs or flag(q.get("securityStatus"))):
        raise InvalidInputError("'expand' cannot be combined with 'blobs' or 'securityStatus'")
    view = await ctx.call(
        discovery.repo_info, repo_type(ctx.params), repo_id(ctx.params), ctx.params.get("rev", "main")
    )
    repo = view.snap.repo
    out = summary(repo, view.facts)
    out.update({"sha": view.snap.commit.oid, "lastModified": iso(view.snap.commit.date)})
    out.update(details(repo, view.facts, view.bases, view.children))
    out["siblings"] = [sibling(e, blobs) for e in view.entries if not e.is_dir]
    if repo.resource_group_id is not None:
        out["resourceGroup"] = await run_in_threadpool(groups.repo_summary, ctx.hub, repo.resource_group_id)
    if flag(q.get("securityStatus")):
        out["securityRepoStatus"] = await run_in_threadpool(scans_svc.repo_status, ctx.hub, view.entries)
    return json_response(_select(out, expand) if expand else out)


def listed(item: discovery.ListedRepo) -> dict[str, Any]:
    out = summary(item.repo, item.facts)
    out["lastModified"] = iso(item.repo.last_modified)
    return out


async def list_repos(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    limit_raw = q.get("limit")
    try:
        limit = int(limit_raw) if limit_raw else None
    except ValueError as exc:
        raise InvalidInputError("limit must be an integer") from exc
    filters = q.getlist("filter")
    for key in ("library", "language"):
        filters += q.getlist(key)
    filters += [f"license:{v}" for v in q.getlist("license")]
    params = discovery.ListParams(
        search=q.getlist("search"), author=q.get("author"), filters=filters, pipeline_tag=q.get("pipeline_tag"),
        num_parameters=q.get("num_parameters"), gated=q.get("gated"), sort=q.get("sort"), limit=limit,
        cursor=q.get("cursor"),
    )
    expand = q.getlist("expand") + q.getlist("expand[]")
    if expand and (flag(q.get("full")) or flag(q.get("cardData")) or flag(q.get("config"))):
        raise InvalidInputError("'expand' cannot be combined with 'full', 'cardData' or 'config'")
    full = flag(q.get("full")) or "siblings" in expand or "sha" in expand
    wants = {"cardData", "config", "safetensors", "gguf", "transformersInfo", "baseModels",
             "childrenModelCount", "usedStorage", "downloadsAllTime"}
    extra = full or flag(q.get("cardData")) or flag(q.get("config")) or bool(wants & set(expand))
    page, cursor = await ctx.call(discovery.list_page, repo_type(ctx.params), params, full, extra)
    items = []
    for entry in page:
        item = listed(entry)
        if extra:
            item.update(details(entry.repo, entry.facts, entry.bases, entry.children))
        if full:
            item["sha"] = entry.sha
            item["siblings"] = [{"rfilename": path} for path in entry.files or []]
        items.append(item)
    if expand:
        items = [_select(item, expand) for item in items]
    else:
        for item in items:
            if not (flag(q.get("cardData")) or flag(q.get("full"))):
                item.pop("cardData", None)
            if not flag(q.get("config")):
                item.pop("config", None)
    headers = {}
    if cursor is not None:
        query = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", cursor)]
        headers = link_next(f"{ctx.base_url()}/api/{ctx.params['types']}?{urlencode(query)}")
    return json_response(items, headers=headers)


async def tags_by_type(ctx: Ctx) -> Response:
    rtype = "dataset" if ctx.params["kind"] == "datasets" else "model"
    return json_response(await ctx.call(lambda hub, _p: discovery.tags_by_type(hub, rtype)))


async def like(ctx: Ctx) -> Response:
    liked = ctx.request.method == "POST"
    await ctx.call(discovery.like, repo_type(ctx.params), repo_id(ctx.params), liked)
    return json_response({})


def _page(ctx: Ctx, items: list[Any], path: str) -> Response:
    """Offset pages for short listings (likers, likes, children) with an absolute ``Link``."""
    q = ctx.request.query_params
    try:
        offset = int(q.get("cursor") or 0)
        size = int(q.get("limit") or 100)
    except ValueError as exc:
        raise InvalidInputError("cursor and limit must be integers") from exc
    if offset < 0 or not 1 <= size <= 1000:
        raise InvalidInputError("Invalid cursor or limit")
    chunk = items[offset : offset + size]
    headers = {}
    if offset + size < len(items):
        query = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", str(offset + size))]
        headers = link_next(f"{ctx.base_url()}{path}?{urlencode(query)}")
    return json_response(chunk, headers=headers)


async def likers(ctx: Ctx) -> Response:
    found = await ctx.call(discovery.likers, repo_type(ctx.params), repo_id(ctx.params))
    items = [{"user": name, "fullname": fullname, "avatarUrl": f"/avatars/{name}.svg"} for name, fullname in found]
    return _page(ctx, items, f"/api/{ctx.params['types']}/{repo_id(ctx.params)}/likers")


async def user_likes(ctx: Ctx) -> Response:
    found = await ctx.call(discovery.liked_by, ctx.params["user"])
    items = [{"createdAt": iso(when), "repo": {"name": repo.repo_id, "type": repo.type}} for repo, when in found]
    return _page(ctx, items, f"/api/users/{ctx.params['user']}/likes")


async def children(ctx: Ctx) -> Response:
    relation = ctx.request.query_params.get("relation")
    found = await ctx.call(discovery.children, repo_id(ctx.params), relation)
    items = [{**summary(r, discovery.facts_of(r)), "relation": rel, "lastModified": iso(r.last_modified)}
             for r, rel in found]
    return _page(ctx, items, f"/api/models/{repo_id(ctx.params)}/children")


async def leaderboard(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    try:
        limit = int(q.get("limit") or 50)
    except ValueError as exc:
        raise InvalidInputError("limit must be an integer") from exc
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidInputError("order must be asc or desc")
    entries = await ctx.call(
        discovery.leaderboard, q.get("task", ""), q.get("dataset", ""), q.get("metric", ""), limit, order == "asc"
    )
    return json_response([
        {"rank": i + 1, "id": e.repo.repo_id, "value": e.value, "verified": e.verified,
         "dataset_name": e.dataset_name, "metric_name": e.metric_name}
        for i, e in enumerate(entries)
    ])


def register(router: Router) -> None:
    router.add("GET", rf"/api/{TYPES}", list_repos)
    router.add("GET", r"/api/(?P<kind>models|datasets)-tags-by-type", tags_by_type)
    router.add("GET", r"/api/leaderboard", leaderboard)
    router.add("GET", r"/api/users/(?P<user>[^/]+)/likes", user_likes)
    router.add("GET", API_REPO, follows_moves(info))
    router.add("GET", rf"{API_REPO}/revision/{REV}", follows_moves(info))
    router.add("POST DELETE", rf"{API_REPO}/like", like)
    router.add("GET", rf"{API_REPO}/likers", follows_moves(likers))
    router.add("GET", r"/api/models/(?P<ns>[^/]+)/(?P<name>[^/]+)/children", children)
