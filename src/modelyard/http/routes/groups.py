"""Resource groups: ``/api/organizations/{org}/resource-groups`` (list, create, read, update,
delete, members) and ``/api/{type}s/{id}/resource-group`` (move a repo in or out). The rules
are in ``services/groups.py``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import API_REPO, iso, json_body, json_response, repo_id, repo_type
from modelyard.http.routes.people import NAME
from modelyard.services import groups
from modelyard.services.groups import GroupView

GROUP = r"(?P<group>[0-9a-f]{24})"


def group_json(view: GroupView) -> dict[str, Any]:
    return {
        "id": view.group.uid,
        "name": view.group.name,
        "description": view.group.description,
        "organization": view.org.name,
        "createdAt": iso(view.group.created_at),
        "users": [{"user": m.name, "fullname": m.fullname, "role": m.role} for m in view.users],
        "repos": [{"type": t, "name": f"{ns}/{n}", "private": p} for t, ns, n, p in view.repos],
    }


async def list_groups(ctx: Ctx) -> Response:
    return json_response([group_json(v) for v in await ctx.call(groups.list_groups, ctx.params["who"])])


async def create_group(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    return json_response(group_json(await ctx.call(groups.create_group, ctx.params["who"], body)), status=201)


async def get_group(ctx: Ctx) -> Response:
    return json_response(group_json(await ctx.call(groups.get_group, ctx.params["who"], ctx.params["group"])))


async def update_group(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    view = await ctx.call(groups.update_group, ctx.params["who"], ctx.params["group"], body)
    return json_response(group_json(view))


async def delete_group(ctx: Ctx) -> Response:
    await ctx.call(groups.delete_group, ctx.params["who"], ctx.params["group"])
    return json_response({})


async def add_users(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    view = await ctx.call(groups.add_users, ctx.params["who"], ctx.params["group"], body.get("users"))
    return json_response(group_json(view))


async def set_user_role(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    view = await ctx.call(groups.set_user_role, ctx.params["who"], ctx.params["group"], ctx.params["member"],
                          body.get("role"))
    return json_response(group_json(view))


async def remove_user(ctx: Ctx) -> Response:
    await ctx.call(groups.remove_user, ctx.params["who"], ctx.params["group"], ctx.params["member"])
    return json_response({})


async def move_repo(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    found = await ctx.call(groups.move_repo, repo_type(ctx.params), repo_id(ctx.params), body.get("resourceGroupId"))
    return json_response({"resourceGroup": found})


def register(router: Router) -> None:
    base = rf"/api/organizations/{NAME}/resource-groups"
    router.add("GET", base, list_groups)
    router.add("POST", base, create_group)
    router.add("GET", rf"{base}/{GROUP}", get_group)
    router.add("PATCH", rf"{base}/{GROUP}", update_group)
    router.add("DELETE", rf"{base}/{GROUP}", delete_group)
    router.add("POST", rf"{base}/{GROUP}/users", add_users)
    router.add("PATCH", rf"{base}/{GROUP}/users/(?P<member>[^/]+)", set_user_role)
    router.add("DELETE", rf"{base}/{GROUP}/users/(?P<member>[^/]+)", remove_user)
    router.add("POST", rf"{API_REPO}/resource-group", move_repo)
