"""The settings pages: profile and password, organizations (new, profile, members and roles)
and webhooks. Each form is checked against its session's CSRF token, then calls the service the
API calls (``services/settings.py``, ``services/sessions.py``, ``services/webhooks.py``)."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.account_pages import NO_STORE, form, require_session, signed_in
from modelyard.http.routes.pages import _context, page, session_of, shows_errors
from modelyard.services import audit, sessions, settings, webhooks
from modelyard.web.render import render

ORG = r"/organizations/(?P<org>[^/]+)"
HOOK = r"(?P<uid>[0-9a-f]{1,64})"
#: Entries of the audit log an organization's settings page shows (the API pages through all of them).
AUDIT_ROWS = 100


def _see(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _sign_in_first(ctx: Ctx) -> Response | None:
    if session_of(ctx) is None:
        return _see(f"/login?next={ctx.request.url.path}")
    return None


async def _checked_form(ctx: Ctx) -> dict[str, str]:
    fields = await form(ctx)
    require_session(ctx).check_csrf(fields.get("csrf"))
    return fields


# -- profile and password --------------------------------------------------------------------


async def profile_form(ctx: Ctx) -> Response:
    if (go := _sign_in_first(ctx)) is not None:
        return go
    account = await ctx.call(settings.profile)
    orgs = await ctx.call(settings.my_orgs)
    return page(render("settings_profile.html", **_context(ctx, account=account, orgs=orgs,
                                                           saved=ctx.request.query_params.get("saved"))),
                headers=NO_STORE)


async def update_profile(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    await ctx.call(settings.update_profile, fields.get("fullname", ""), fields.get("email", ""))
    return _see("/settings/profile?saved=profile")


async def change_password(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    session = require_session(ctx)
    if fields.get("password", "") != fields.get("confirm", ""):
        raise InvalidInputError("The new password and its confirmation differ")
    # A new password ends every session, this one too: the next one starts here.
    fresh = await ctx.heavy(sessions.change_password, ctx.hub, session, fields.get("current", ""),
                            fields.get("password", ""))
    return signed_in(ctx, fresh, "/settings/profile?saved=password")


# -- organizations ---------------------------------------------------------------------------


async def new_org_form(ctx: Ctx) -> Response:
    if (go := _sign_in_first(ctx)) is not None:
        return go
    return page(render("new_org.html", **_context(ctx)))


async def new_org(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    org = await ctx.call(settings.create_org, fields.get("name", "").strip(), fields.get("fullname", ""))
    return _see(f"/organizations/{org.name}/settings")


async def org_form(ctx: Ctx) -> Response:
    if (go := _sign_in_first(ctx)) is not None:
        return go
    view = await ctx.call(settings.org_settings, ctx.params["org"])
    log = await ctx.call(audit.account_log, view.org.name, None, None, AUDIT_ROWS)
    return page(render("settings_org.html", **_context(ctx, view=view, roles=("read", "write", "admin"),
                                                       log=[audit.as_json(e) for e in log])),
                headers=NO_STORE)


async def update_org(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    org = await ctx.call(settings.update_org, ctx.params["org"], fields.get("fullname", ""))
    return _see(f"/organizations/{org.name}/settings")


async def change_member(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    org, member = ctx.params["org"], fields.get("user", "").strip()
    if fields.get("action") == "remove":
        await ctx.call(settings.remove_member, org, member)
        me = require_session(ctx).principal.name
        return _see(f"/{me}" if member.lower() == me.lower() else f"/organizations/{org}/settings")
    await ctx.call(settings.set_role, org, member, fields.get("role", ""))
    return _see(f"/organizations/{org}/settings")


# -- webhooks --------------------------------------------------------------------------------


def _watched(text: str) -> list[dict[str, str]]:
    """``KIND:NAME`` per line (``model:alice/bert``, ``dataset:acme/x``, ``user:bob``, ``org:acme``)."""
    items = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        kind, sep, name = line.partition(":")
        if not sep:
            raise InvalidInputError(f"Watch one item per line as KIND:NAME (model:alice/bert), not {line!r}")
        items.append({"type": kind.strip(), "name": name.strip()})
    return items


async def webhooks_form(ctx: Ctx) -> Response:
    """The caller's webhooks and a form for a new one (``?watch=KIND:NAME`` fills in what to watch,
    as a repo's settings page links here)."""
    if (go := _sign_in_first(ctx)) is not None:
        return go
    hooks = await ctx.call(webhooks.list_webhooks)
    return page(render("settings_webhooks.html", **_context(ctx, hooks=hooks, domains=webhooks.DOMAINS,
                                                            watch=ctx.request.query_params.get("watch", ""))),
                headers=NO_STORE)


async def create_webhook(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    body = {"url": fields.get("url", "").strip(), "watched": _watched(fields.get("watched", "")),
            "domains": [d for d in webhooks.DOMAINS if fields.get(f"domain_{d}")],
            "secret": fields.get("secret") or None}
    await ctx.call(webhooks.create_webhook, body)
    return _see("/settings/webhooks")


async def change_webhook(ctx: Ctx) -> Response:
    fields = await _checked_form(ctx)
    uid, action = ctx.params["uid"], fields.get("action")
    if action == "delete":
        await ctx.call(webhooks.delete_webhook, uid)
    elif action in ("enable", "disable"):
        await ctx.call(webhooks.set_disabled, uid, action == "disable")
    else:
        raise InvalidInputError("action must be enable, disable or delete")
    return _see("/settings/webhooks")


def register(router: Router) -> None:
    router.add("GET", r"/settings/profile", shows_errors(profile_form))
    router.add("POST", r"/settings/profile", shows_errors(update_profile))
    router.add("POST", r"/settings/password", shows_errors(change_password))
    router.add("GET", r"/organizations/new", shows_errors(new_org_form))
    router.add("POST", r"/organizations/new", shows_errors(new_org))
    router.add("GET", rf"{ORG}/settings", shows_errors(org_form))
    router.add("POST", rf"{ORG}/settings/profile", shows_errors(update_org))
    router.add("POST", rf"{ORG}/settings/members", shows_errors(change_member))
    router.add("GET", r"/settings/webhooks", shows_errors(webhooks_form))
    router.add("POST", r"/settings/webhooks", shows_errors(create_webhook))
    router.add("POST", rf"/settings/webhooks/{HOOK}", shows_errors(change_webhook))
