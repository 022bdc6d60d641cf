"""Incidental endpoints: agent detection, telemetry, identity, card validation."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.errors import AuthenticationError, InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.openapi import document
from modelyard.http.routes.common import iso, json_body, json_response, read_body
from modelyard.services import accounts as accounts_svc
from modelyard.services.auth import whoami_scopes
from modelyard.services.discovery import validate_card

TELEMETRY_LIMIT = 64 * 1024


async def agent_harnesses(ctx: Ctx) -> Response:
    return json_response({"standardEnvVars": [], "harnesses": {}})


async def telemetry(ctx: Ctx) -> Response:
    await read_body(ctx, TELEMETRY_LIMIT, "telemetry body")  # read (bounded) and dropped
    return Response(b"", status_code=200)


async def whoami(ctx: Ctx) -> Response:
    principal = await ctx.principal()
    if principal is None:
        raise AuthenticationError("Invalid credentials in Authorization header")
    orgs = await ctx.call(accounts_svc.org_memberships)
    token: dict[str, Any] = {
        "displayName": principal.token_name, "role": principal.token_role,
        "createdAt": iso(principal.token_created_at) if principal.token_created_at else None,  # type: ignore[arg-type]
    }
    if principal.scopes is not None:
        token["fineGrained"] = whoami_scopes(principal.scopes)
    if principal.token_expires_at is not None:
        token["expiresAt"] = iso(principal.token_expires_at)
    return json_response({
        "type": "user",
        "id": f"{principal.account_id:024x}",
        "name": principal.name,
        "fullname": principal.fullname,
        "email": principal.email,
        "emailVerified": principal.email is not None,
        "isPro": False,
        "avatarUrl": f"/avatars/{principal.name}.svg",
        "orgs": [
            {"type": "org", "id": f"{org_id:024x}", "name": name, "fullname": fullname, "roleInOrg": role}
            for org_id, name, fullname, role in orgs
        ],
        "auth": {"type": "access_token", "accessToken": token},
    })


async def validate_yaml(ctx: Ctx) -> Response:
    # A README may be as large as a regular file (JSON-escaped); only its front matter is parsed.
    body = await json_body(ctx, limit=2 * ctx.hub.settings.max_regular_file_size + 64 * 1024)
    content, repo_type = body.get("content"), body.get("repoType", "model")
    if not isinstance(content, str) or not isinstance(repo_type, str):
        raise InvalidInputError("'content' must be the README text, 'repoType' a repo type")
    report = await ctx.heavy(validate_card, content, repo_type)
    # The Hub's form: the client prints each as "- Error: ..." under "Invalid metadata in README.md."
    errors: list[dict[str, Any]] = [{"message": f"Error: {e}"} for e in report.errors]
    warnings: list[dict[str, Any]] = [{"message": w} for w in report.warnings]
    return json_response({"errors": errors, "warnings": warnings}, status=400 if errors else 200)


DOCUMENT = document()


async def openapi_document(ctx: Ctx) -> Response:
    return json_response(DOCUMENT)


def register(router: Router) -> None:
    router.add("GET", r"/openapi.json", openapi_document)
    router.add("GET", r"/api/agent-harnesses", agent_harnesses)
    router.add("GET HEAD POST", r"/api/telemetry(?:/.*)?", telemetry)
    router.add("GET", r"/api/whoami-v2", whoami)
    router.add("POST", r"/api/validate-yaml", validate_yaml)
