"""Collections (``/api/collections``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import iso, json_body, json_response
from modelyard.http.routes.people import avatar_url, page_params, paged
from modelyard.services import collections
from modelyard.services.collections import CollectionView, ItemView, slug_of

SLUG = r"(?P<owner>[^/]+)/(?P<slug>[^/]+)"
#: Collections per page of ``/api/collections`` (the client reads on with ``Link``).
PAGE = 20


def _slug(ctx: Ctx) -> str:
    return f"{ctx.params['owner']}/{ctx.params['slug']}"


def item_json(view: ItemView) -> dict[str, Any]:
    item = view.item
    out: dict[str, Any] = {"_id": item.oid, "type": item.item_type, "position": item.position}
    if view.repo is not None:
        repo = view.repo
        out.update({"id": repo.repo_id, "author": repo.namespace, "private": repo.private,
                    "likes": repo.likes, "downloads": repo.downloads, "lastModified": iso(repo.last_modified),
                    "repoType": repo.type})
    elif view.target is not None:
        target = view.target
        # The client takes ``slug`` as the item's id for collections.
        out.update({"id": target.oid, "slug": slug_of(target), "title": target.title, "private": target.private,
                    "lastUpdated": iso(target.updated_at)})
    if item.note:
        out["note"] = {"text": item.note}
    return out


def collection_json(view: CollectionView, listed: bool = False) -> dict[str, Any]:
    """A ``Collection``. In listings without ``position``: the client passes its own (the index)
    next to the item's keys, so a ``position`` key there would be a duplicate argument."""
    c = view.collection
    out: dict[str, Any] = {
        "_id": c.oid, "slug": view.slug, "title": c.title, "description": c.description or "",
        "owner": {"_id": f"{c.owner_id:024x}", "name": c.owner_name, "fullname": c.owner_fullname,
                  "type": c.owner_kind, "avatarUrl": avatar_url(c.owner_name)},
        "items": [item_json(i) for i in view.items], "lastUpdated": iso(c.updated_at), "private": c.private,
        "theme": c.theme, "upvotes": c.upvotes, "isUpvotedByUser": False,
    }
    if not listed:
        out["position"] = c.position
    return out


async def list_collections(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    offset, size = page_params(ctx, PAGE)
    found, more = await ctx.call(
        collections.list_collections, q.getlist("owner"), q.getlist("item"), q.get("sort"), offset, size
    )
    return paged(ctx, [collection_json(v, listed=True) for v in found], "/api/collections", offset, size, more)


async def get_collection(ctx: Ctx) -> Response:
    return json_response(collection_json(await ctx.call(collections.get_collection, _slug(ctx))))


async def create_collection(ctx: Ctx) -> Response:
    await ctx.call(collections.authorize_create)
    body = await json_body(ctx)
    return json_response(collection_json(await ctx.call(collections.create_collection, body)))


async def update_collection(ctx: Ctx) -> Response:
    await ctx.call(collections.authorize_write, _slug(ctx))
    body = await json_body(ctx)
    view = await ctx.call(collections.update_collection, _slug(ctx), body)
    return json_response({"success": True, "data": collection_json(view)})


async def delete_collection(ctx: Ctx) -> Response:
    await ctx.call(collections.delete_collection, _slug(ctx))
    return json_response({})


async def resource_group(ctx: Ctx) -> Response:
    await ctx.call(collections.authorize_write, _slug(ctx))
    body = await json_body(ctx)
    await ctx.call(collections.set_resource_group, _slug(ctx), body)
    return json_response({})


async def add_item(ctx: Ctx) -> Response:
    await ctx.call(collections.authorize_write, _slug(ctx))
    body = await json_body(ctx)
    return json_response(collection_json(await ctx.call(collections.add_item, _slug(ctx), body)))


async def update_item(ctx: Ctx) -> Response:
    await ctx.call(collections.authorize_write, _slug(ctx))
    body = await json_body(ctx)
    await ctx.call(collections.update_item, _slug(ctx), ctx.params["item"], body)
    return json_response({})


async def delete_item(ctx: Ctx) -> Response:
    await ctx.call(collections.delete_item, _slug(ctx), ctx.params["item"])
    return json_response({})


def register(router: Router) -> None:
    router.add("GET", r"/api/collections", list_collections)
    router.add("POST", r"/api/collections", create_collection)
    router.add("GET", rf"/api/collections/{SLUG}", get_collection)
    router.add("PATCH", rf"/api/collections/{SLUG}", update_collection)
    router.add("DELETE", rf"/api/collections/{SLUG}", delete_collection)
    router.add("POST", rf"/api/collections/{SLUG}/resource-group", resource_group)
    router.add("POST", rf"/api/collections/{SLUG}/items", add_item)
    router.add("PATCH", rf"/api/collections/{SLUG}/items/(?P<item>[^/]+)", update_item)
    router.add("DELETE", rf"/api/collections/{SLUG}/items/(?P<item>[^/]+)", delete_item)
