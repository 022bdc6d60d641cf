"""Users and organizations: overviews, members, followers, follows, storage per repo, avatars."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import iso, json_response, link_next
from modelyard.services import people
from modelyard.services.people import Overview, Person

#: The most items a page of these listings holds (the client follows ``Link`` for the rest).
MAX_PAGE = 100
NAME = r"(?P<who>[^/]+)"


def avatar_url(name: str) -> str:
    """Where an account's picture is: on this hub, path-only, as the Hub gives its default ones."""
    return f"/avatars/{name}.svg"


def page_params(ctx: Ctx, default: int = MAX_PAGE) -> tuple[int, int]:
    """``(offset, size)`` from ``cursor`` and ``limit`` (a larger limit is served in pages)."""
    q = ctx.request.query_params
    try:
        offset = int(q.get("cursor") or 0)
        size = int(q.get("limit") or default)
    except ValueError as exc:
        raise InvalidInputError("cursor and limit must be integers") from exc
    if offset < 0 or size < 1:
        raise InvalidInputError("cursor must be >= 0 and limit >= 1")
    return offset, min(size, MAX_PAGE)


def paged(ctx: Ctx, items: list[Any], path: str, offset: int, size: int, more: bool) -> Response:
    """A page with an absolute ``Link`` to the next one when ``more``."""
    headers = {}
    if more:
        query = [(k, v) for k, v in ctx.request.query_params.multi_items() if k != "cursor"]
        query.append(("cursor", str(offset + size)))
        headers = link_next(f"{ctx.base_url()}{path}?{urlencode(query)}")
    return json_response(items, headers=headers)


def _page_of(ctx: Ctx, items: list[Any], path: str) -> Response:
    offset, size = page_params(ctx)
    return paged(ctx, items[offset : offset + size], path, offset, size, offset + size < len(items))


def person_json(person: Person) -> dict[str, Any]:
    """A ``User`` as listings carry it."""
    out: dict[str, Any] = {
        "_id": f"{person.id:024x}", "user": person.name, "fullname": person.fullname,
        "avatarUrl": avatar_url(person.name), "type": person.kind, "isPro": False,
    }
    if person.role is not None:
        out["role"] = person.role
    return out


def _counts(view: Overview) -> dict[str, Any]:
    return {"numModels": view.repos.get("model", 0), "numDatasets": view.repos.get("dataset", 0),
            "numSpaces": view.repos.get("space", 0), "numFollowers": view.followers, "numPapers": 0}


async def user_overview(ctx: Ctx) -> Response:
    view = await ctx.call(people.user_overview, ctx.params["who"])
    user = view.account
    out: dict[str, Any] = {
        "_id": f"{user.id:024x}", "user": user.name, "fullname": user.fullname, "avatarUrl": avatar_url(user.name),
        "type": "user", "isPro": False, "details": "", "createdAt": iso(user.created_at),
        **_counts(view), "numFollowing": view.following, "numLikes": view.likes,
        "numDiscussions": view.discussions, "numUpvotes": 0,
        "orgs": [{"_id": f"{o.id:024x}", "name": o.name, "fullname": o.fullname, "avatarUrl": avatar_url(o.name),
                  "type": "org"} for o in view.orgs],
    }
    if view.is_following is not None:
        out["isFollowing"] = view.is_following
    return json_response(out)


async def org_overview(ctx: Ctx) -> Response:
    view = await ctx.call(people.org_overview, ctx.params["who"])
    org = view.account
    out: dict[str, Any] = {
        "_id": f"{org.id:024x}", "name": org.name, "fullname": org.fullname, "avatarUrl": avatar_url(org.name),
        "type": "org", "details": "", "isVerified": False, "createdAt": iso(org.created_at),
        **_counts(view), "numUsers": view.members,
    }
    if view.is_following is not None:
        out["isFollowing"] = view.is_following
    return json_response(out)


async def org_members(ctx: Ctx) -> Response:
    found = await ctx.call(people.members, ctx.params["who"])
    return _page_of(ctx, [person_json(p) for p in found], f"/api/organizations/{ctx.params['who']}/members")


async def org_followers(ctx: Ctx) -> Response:
    found = await ctx.call(people.followers, ctx.params["who"], "org")
    return _page_of(ctx, [person_json(p) for p in found], f"/api/organizations/{ctx.params['who']}/followers")


async def user_followers(ctx: Ctx) -> Response:
    found = await ctx.call(people.followers, ctx.params["who"], "user")
    return _page_of(ctx, [person_json(p) for p in found], f"/api/users/{ctx.params['who']}/followers")


async def user_following(ctx: Ctx) -> Response:
    found = await ctx.call(people.following, ctx.params["who"])
    return _page_of(ctx, [person_json(p) for p in found], f"/api/users/{ctx.params['who']}/following")


async def follow_user(ctx: Ctx) -> Response:
    """``POST`` follows, ``DELETE`` unfollows (the client has no method for it; see compatibility.md)."""
    await ctx.call(people.follow, ctx.params["who"], "user", ctx.request.method == "POST")
    return json_response({})


async def follow_org(ctx: Ctx) -> Response:
    """The same for an organization."""
    await ctx.call(people.follow, ctx.params["who"], "org", ctx.request.method == "POST")
    return json_response({})


async def settings_repositories(ctx: Ctx) -> Response:
    namespace = ctx.params.get("who")
    offset, size = page_params(ctx)
    page = await ctx.call(people.repo_storage, namespace, offset, size)
    items = [
        {"id": f"{ns}/{name}", "type": rtype, "updatedAt": iso(updated),
         "visibility": "private" if private else "public", "storage": storage,
         "storagePercent": round(100 * storage / page.total, 2) if page.total else 0}
        for rtype, ns, name, updated, private, storage in page.repos
    ]
    path = f"/api/organizations/{namespace}/settings/repositories" if namespace else "/api/settings/repositories"
    return paged(ctx, items, path, offset, size, page.more)


#: Avatars are served as inert images: no script may run, even if the SVG is opened on its own.
AVATAR_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=86400",
}


async def avatar(ctx: Ctx) -> Response:
    svg = people.avatar_svg(ctx.params["who"])
    return Response(svg, media_type="image/svg+xml", headers=AVATAR_HEADERS)


def register(router: Router) -> None:
    router.add("GET", rf"/api/users/{NAME}/overview", user_overview)
    router.add("GET", rf"/api/organizations/{NAME}/overview", org_overview)
    router.add("GET", rf"/api/organizations/{NAME}/members", org_members)
    router.add("GET", rf"/api/organizations/{NAME}/followers", org_followers)
    router.add("GET", rf"/api/users/{NAME}/followers", user_followers)
    router.add("GET", rf"/api/users/{NAME}/following", user_following)
    router.add("POST DELETE", rf"/api/users/{NAME}/follow", follow_user)
    router.add("POST DELETE", rf"/api/organizations/{NAME}/follow", follow_org)
    router.add("GET", r"/api/settings/repositories", settings_repositories)
    router.add("GET", rf"/api/organizations/{NAME}/settings/repositories", settings_repositories)
    router.add("GET", r"/avatars/(?P<who>[^/]+)\.svg", avatar)
