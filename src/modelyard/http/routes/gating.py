"""Access requests to gated repos (``/api/{types}/{repo}/user-access-request/...``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import API_REPO, iso, json_body, json_response, repo_id, repo_type
from modelyard.http.routes.people import page_params, paged
from modelyard.services import gating as gating_svc
from modelyard.services import repos as repos_svc
from modelyard.services.gating import AccessRequest

BASE = rf"{API_REPO}/user-access-request"


def request_json(found: AccessRequest) -> dict[str, Any]:
    """One request as ``HfApi.list_*_access_requests`` reads it."""
    user: dict[str, Any] = {"user": found.user, "fullname": found.fullname}
    if found.email:
        user["email"] = found.email
    out: dict[str, Any] = {
        "user": user, "requestId": f"{found.id:024x}", "status": found.status, "timestamp": iso(found.created_at),
    }
    if found.fields:
        out["fields"] = found.fields
    if found.rejection_reason:
        out["rejectionReason"] = found.rejection_reason
    return out


async def listing(ctx: Ctx) -> Response:
    offset, size = page_params(ctx)
    page = await ctx.call(
        gating_svc.list_requests, repo_type(ctx.params), repo_id(ctx.params), ctx.params["status"], offset, size
    )
    return paged(ctx, [request_json(r) for r in page.items], ctx.request.url.path, offset, size, page.more)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"'{key}' must be a string")
    return value


async def handle(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(repos_svc.authorize, rtype, rid, "write")
    body = await json_body(ctx)
    status = _optional_str(body, "status")
    if status is None:
        raise InvalidInputError("'status' is required: 'accepted', 'rejected' or 'pending'")
    await ctx.call(
        gating_svc.handle_request, rtype, rid, _optional_str(body, "user"), _optional_str(body, "requestId"),
        status, _optional_str(body, "rejectionReason"),
    )
    return json_response({})


async def grant(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(repos_svc.authorize, rtype, rid, "write")
    body = await json_body(ctx)
    user = _optional_str(body, "user")
    if user is None:
        raise InvalidInputError("'user' is required")
    await ctx.call(gating_svc.grant_access, rtype, rid, user)
    return json_response({})


async def ask(ctx: Ctx) -> Response:
    """The caller asks for access (what the Hub's web form posts): ``{"fields": {...}}``."""
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(gating_svc.authorize_request, rtype, rid)
    body = await json_body(ctx, required=False)
    status = await ctx.call(gating_svc.request_access, rtype, rid, body.get("fields"))
    return json_response({"status": status})


def register(router: Router) -> None:
    router.add("GET", rf"{BASE}/(?P<status>pending|accepted|rejected)", listing)
    router.add("POST", rf"{BASE}/handle", handle)
    router.add("POST", rf"{BASE}/grant", grant)
    router.add("POST", BASE, ask)
