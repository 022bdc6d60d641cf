"""Repo CRUD, settings, info and listing."""

from __future__ import annotations

from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    follows_moves,
    json_body,
    json_response,
    repo_id,
    repo_type,
    repo_url,
)
from modelyard.ids import parse_repo_type
from modelyard.services import buckets
from modelyard.services import repos as repos_svc
from modelyard.services.auth import require_writer


async def create(ctx: Ctx) -> Response:
    await ctx.call(require_writer)
    body = await json_body(ctx)
    name, org = body.get("name"), body.get("organization")
    if not isinstance(name, str) or (org is not None and not isinstance(org, str)):
        raise InvalidInputError("'name' (and optionally 'organization') must be strings")
    rtype = parse_repo_type(body.get("type"))
    private = repos_svc.requested_private(body)
    if "/" in name and org is None:
        org, name = name.split("/", 1)
    base = ctx.base_url()
    sdk = body.get("sdk") if rtype == "space" else None
    repo = await ctx.call(
        repos_svc.create_repo, rtype, org, name, private, lambda t, rid: repo_url(base, t, rid), sdk,
        body.get("resourceGroupId"),
    )
    return json_response({"url": repo_url(base, rtype, repo.repo_id), "name": repo.repo_id,
                          "id": f"{repo.id:024x}"})


async def delete(ctx: Ctx) -> Response:
    principal = await ctx.call(require_writer)
    body = await json_body(ctx)
    name, org = body.get("name"), body.get("organization")
    if not isinstance(name, str) or (org is not None and not isinstance(org, str)):
        raise InvalidInputError("'name' (and optionally 'organization') must be strings")
    rtype = parse_repo_type(body.get("type"))
    await ctx.call(repos_svc.delete_repo, rtype, repos_svc.qualified_id(principal, org, name))
    return Response(b"", status_code=200)


async def move(ctx: Ctx) -> Response:
    await ctx.call(require_writer)
    body = await json_body(ctx)
    src, dst = body.get("fromRepo"), body.get("toRepo")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise InvalidInputError("'fromRepo' and 'toRepo' are required")
    if body.get("type") == "bucket":
        await ctx.call(buckets.move, src, dst)
        return Response(b"", status_code=200)
    rtype = parse_repo_type(body.get("type"))
    await ctx.call(repos_svc.move_repo, rtype, src, dst)
    return Response(b"", status_code=200)


async def settings(ctx: Ctx) -> Response:
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), "admin")
    body = await json_body(ctx)
    await ctx.call(repos_svc.update_settings, repo_type(ctx.params), repo_id(ctx.params), body)
    return json_response({})


async def auth_check(ctx: Ctx) -> Response:
    need = "write" if ctx.params.get("write") is not None else "read"
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), need)
    return json_response({})


def register(router: Router) -> None:
    router.add("POST", r"/api/repos/create", create)
    router.add("DELETE", r"/api/repos/delete", delete)
    router.add("POST", r"/api/repos/move", move)
    router.add("PUT", rf"{API_REPO}/settings", settings)
    router.add("GET", rf"{API_REPO}/auth-check", follows_moves(auth_check))
    router.add("GET", rf"{API_REPO}/auth-check(?P<write>/write)", auth_check)
