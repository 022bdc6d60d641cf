"""Signing in and out, signing up, access tokens and likes: the pages that post forms.

Every form carries a CSRF token: before sign-in, a random value also set as a cookie with the
form (double submit); in a session, the session's own token. A form without it changes nothing
(403). The rules are in ``services/sessions.py``; these handlers parse forms and set cookies.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, quote

from starlette.responses import RedirectResponse, Response

from modelyard.errors import AuthenticationError, InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.errors import header_safe, status_for
from modelyard.http.routes.common import declared_length, repo_id, repo_type
from modelyard.http.routes.pages import PAGE_REPO, SESSION_COOKIE, _context, page, session_of, shows_errors
from modelyard.services import discovery, oidc, sessions
from modelyard.services.sessions import WebSession
from modelyard.web.render import render

FORM_COOKIE = "modelyard_form"
FORM_LIMIT = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}


async def form(ctx: Ctx) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (at most 64 KiB): each field's first value."""
    if ctx.request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidInputError("Expected a form (application/x-www-form-urlencoded)")
    length = declared_length(ctx)
    if length is not None and length > FORM_LIMIT:
        raise InvalidInputError("This form is too large")
    body = b""
    async for chunk in ctx.request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise InvalidInputError("This form is too large")
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError("This form could not be read") from exc
    out: dict[str, str] = {}
    for key, value in fields:
        out.setdefault(key, value)
    return out


def local(target: str | None) -> str:
    """Where to go after signing in: a path on this hub, else the home page."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _secure(ctx: Ctx) -> bool:
    return ctx.base_url().startswith("https://")


def signed_in(ctx: Ctx, session: WebSession, target: str) -> Response:
    response = RedirectResponse(local(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, session.cookie, max_age=int(ctx.hub.settings.session_lifetime), path="/",
                        secure=_secure(ctx), httponly=True, samesite="lax")
    return response


def require_session(ctx: Ctx) -> WebSession:
    session = session_of(ctx)
    if session is None:
        raise AuthenticationError("Sign in to see this page")
    return session


# -- sign in, sign out, sign up --------------------------------------------------------------


def _sign_form(ctx: Ctx, template: str, status: int = 200, message: str | None = None,
               code: str | None = None, **values: str) -> Response:
    token = ctx.request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    settings = ctx.hub.settings
    html = render(template, **_context(ctx, form_token=token, message=message, allow_signup=settings.allow_signup,
                                       sso=settings.oidc_name if oidc.enabled(ctx.hub) else None, **values))
    headers = dict(NO_STORE)
    if code is not None and message is not None:
        headers.update({"X-Error-Code": code, "X-Error-Message": header_safe(message)})
    response = page(html, status, headers)
    response.set_cookie(FORM_COOKIE, token, path="/", secure=_secure(ctx), httponly=True, samesite="lax")
    return response


async def login_form(ctx: Ctx) -> Response:
    return _sign_form(ctx, "login.html", next=local(ctx.request.query_params.get("next")), username="")


async def login(ctx: Ctx) -> Response:
    fields = await form(ctx)
    sessions.check_form_token(ctx.request.cookies.get(FORM_COOKIE), fields.get("csrf"))
    username, target = fields.get("username", "").strip(), local(fields.get("next"))
    try:
        session = await ctx.heavy(sessions.sign_in, ctx.hub, username, fields.get("password", ""))
    except AuthenticationError as exc:
        status, code = status_for(exc)
        return _sign_form(ctx, "login.html", status, exc.message, code, next=target, username=username)
    return signed_in(ctx, session, target)


OIDC_COOKIE = "modelyard_oidc"
OIDC_PATH = "/login/oidc"


async def oidc_start(ctx: Ctx) -> Response:
    """Off to the identity provider (``services/oidc.py``), with the flow's cookie."""
    target = local(ctx.request.query_params.get("next"))
    url, cookie = await ctx.heavy(oidc.start, ctx.hub, f"{ctx.base_url()}{OIDC_PATH}/callback", target)
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    response.set_cookie(OIDC_COOKIE, cookie, max_age=oidc.FLOW_LIFETIME, path=OIDC_PATH, secure=_secure(ctx),
                        httponly=True, samesite="lax")
    return response


async def oidc_callback(ctx: Ctx) -> Response:
    """Back from the identity provider: a session, or the sign-in form saying why not."""
    params = dict(ctx.request.query_params)
    try:
        session, target = await ctx.heavy(oidc.finish, ctx.hub, ctx.request.cookies.get(OIDC_COOKIE), params,
                                          f"{ctx.base_url()}{OIDC_PATH}/callback")
    except AuthenticationError as exc:
        status, code = status_for(exc)
        response = _sign_form(ctx, "login.html", status, exc.message, code, next="/", username="")
    else:
        response = signed_in(ctx, session, target)
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)  # one flow, one answer
    return response


async def logout(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = session_of(ctx)
    if session is not None:
        session.check_csrf(fields.get("csrf"))
        await ctx.call(lambda hub, _p: sessions.sign_out(hub, session))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def join_form(ctx: Ctx) -> Response:
    sessions.check_signup_open(ctx.hub)
    return _sign_form(ctx, "join.html", username="", email="")


async def join(ctx: Ctx) -> Response:
    fields = await form(ctx)
    sessions.check_form_token(ctx.request.cookies.get(FORM_COOKIE), fields.get("csrf"))
    username, email = fields.get("username", "").strip(), fields.get("email", "").strip()
    session = await ctx.heavy(sessions.sign_up, ctx.hub, username, fields.get("password", ""), email)
    return signed_in(ctx, session, "/")


# -- access tokens ---------------------------------------------------------------------------


async def _tokens_page(ctx: Ctx, session: WebSession, created: str | None = None, created_name: str = "") -> Response:
    tokens = await ctx.call(lambda hub, _p: sessions.list_tokens(hub, session))
    html = render("tokens.html", **_context(ctx, tokens=tokens, created=created, created_name=created_name))
    return page(html, headers=NO_STORE)


async def tokens_page(ctx: Ctx) -> Response:
    session = session_of(ctx)
    if session is None:
        return RedirectResponse(f"/login?next={quote('/settings/tokens')}", status_code=303)
    return await _tokens_page(ctx, session)


async def create_token(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    name, role = fields.get("name", ""), fields.get("role", "read")
    value = await ctx.call(lambda hub, _p: sessions.new_token(hub, session, name, role))
    return await _tokens_page(ctx, session, value, name.strip())


async def revoke_token(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    await ctx.call(lambda hub, _p: sessions.revoke_token(hub, session, fields.get("name", "")))
    return RedirectResponse("/settings/tokens", status_code=303)


# -- likes -----------------------------------------------------------------------------------


async def like(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    await ctx.call(discovery.like, rtype, rid, fields.get("like") != "0")
    return RedirectResponse(local(fields.get("next")) if fields.get("next") else "/", status_code=303)


def register(router: Router) -> None:
    router.add("GET", r"/login", shows_errors(login_form))
    router.add("POST", r"/login", shows_errors(login))
    router.add("GET", OIDC_PATH, shows_errors(oidc_start))
    router.add("GET", rf"{OIDC_PATH}/callback", shows_errors(oidc_callback))
    router.add("POST", r"/logout", shows_errors(logout))
    router.add("GET", r"/join", shows_errors(join_form))
    router.add("POST", r"/join", shows_errors(join))
    router.add("GET", r"/settings/tokens", shows_errors(tokens_page))
    router.add("POST", r"/settings/tokens", shows_errors(create_token))
    router.add("POST", r"/settings/tokens/revoke", shows_errors(revoke_token))
    router.add("POST", rf"{PAGE_REPO}/like", shows_errors(like))
