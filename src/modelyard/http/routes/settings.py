"""The API of the settings pages (a modelyard extension: the public Hub keeps these to its site):
the caller's profile, new organizations, an organization's profile and its members' roles.
The rules are in ``services/settings.py``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import iso, json_body, json_response, link_next
from modelyard.http.routes.people import NAME, avatar_url
from modelyard.services import accounts, audit, settings
from modelyard.services.settings import Account


def account_json(account: Account) -> dict[str, Any]:
    return {"name": account.name, "fullname": account.fullname, "type": account.kind,
            "avatarUrl": avatar_url(account.name), "createdAt": iso(account.created_at),
            **({"email": account.email} if account.kind == "user" else {})}


async def get_profile(ctx: Ctx) -> Response:
    return json_response(account_json(await ctx.call(settings.profile)))


async def update_profile(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    return json_response(account_json(await ctx.call(settings.update_profile, body.get("fullname"),
                                                     body.get("email"))))


async def create_org(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    org = await ctx.call(settings.create_org, body.get("name"), body.get("fullname"))
    return json_response(account_json(org), status=201)


async def org_settings(ctx: Ctx) -> Response:
    found = await ctx.call(settings.org_settings, ctx.params["who"])
    return json_response({**account_json(found.org), "members": [
        {"user": p.name, "fullname": p.fullname, "role": p.role} for p in found.members]})


async def _audit_log(ctx: Ctx, name: str | None) -> Response:
    """A page of an account's audit log (None: the caller's own), newest first; ``Link`` names
    the next page."""
    q = ctx.request.query_params
    actions = q.getlist("action") or None
    events = await ctx.call(audit.account_log, name, actions, q.get("cursor"), q.get("limit"))
    headers = {}
    limit = int(q.get("limit") or 100)
    if len(events) == limit:
        query = urlencode([*(("action", a) for a in actions or []), ("limit", limit), ("cursor", events[-1].id)])
        headers = link_next(f"{ctx.base_url()}{ctx.request.url.path}?{query}")
    return json_response([audit.as_json(e) for e in events], headers=headers)


async def org_audit_log(ctx: Ctx) -> Response:
    return await _audit_log(ctx, ctx.params["who"])


async def create_token(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    return json_response(await ctx.call(accounts.new_api_token, body), status=201)


async def my_audit_log(ctx: Ctx) -> Response:
    return await _audit_log(ctx, None)


async def update_org(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    return json_response(account_json(await ctx.call(settings.update_org, ctx.params["who"], body.get("fullname"))))


async def set_role(ctx: Ctx) -> Response:
    body = await json_body(ctx)
    await ctx.call(settings.set_role, ctx.params["who"], ctx.params["member"], body.get("role"))
    return json_response({})


async def remove_member(ctx: Ctx) -> Response:
    await ctx.call(settings.remove_member, ctx.params["who"], ctx.params["member"])
    return json_response({})


def register(router: Router) -> None:
    router.add("GET", r"/api/settings/profile", get_profile)
    router.add("PUT", r"/api/settings/profile", update_profile)
    router.add("POST", r"/api/organizations", create_org)
    router.add("GET", rf"/api/organizations/{NAME}/settings", org_settings)
    router.add("GET", rf"/api/organizations/{NAME}/audit-log", org_audit_log)
    router.add("GET", r"/api/settings/audit-log", my_audit_log)
    router.add("POST", r"/api/settings/tokens", create_token)
    router.add("PUT", rf"/api/organizations/{NAME}/settings", update_org)
    router.add("PUT", rf"/api/organizations/{NAME}/members/(?P<member>[^/]+)", set_role)
    router.add("DELETE", rf"/api/organizations/{NAME}/members/(?P<member>[^/]+)", remove_member)
