"""The web pages, at the public Hub's URLs (``/``, ``/models``, ``/NS/NAME``, ``.../tree/REV/PATH``,
``.../blob/REV/PATH``): each parses the URL, calls one service of ``services/pages.py`` and
renders a template. Registered after every API route, so no API path is ever taken by a page.

Every page goes out with a Content-Security-Policy that allows nothing but this hub (no inline
or third-party script, no frame around it) and ``nosniff``; errors are pages too, with the
status and ``X-Error-Code`` of the API's answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import HubError, InvalidInputError, NotFoundError, RepoMovedError
from modelyard.http.app import Ctx, Router
from modelyard.http.errors import error_response, header_safe, status_for
from modelyard.http.routes.common import follows_moves, repo_id, repo_type
from modelyard.services import pages, sessions, viewer
from modelyard.services.sessions import WebSession
from modelyard.web.render import asset, render, trusted

SESSION_COOKIE = "modelyard_session"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
SORT_LABELS = (("trendingScore", "Trending"), ("likes", "Most likes"), ("downloads", "Most downloads"),
               ("lastModified", "Recently updated"), ("createdAt", "Recently created"))
#: First path segments that are never a namespace of a page (the API's and the hub's own).
RESERVED = r"(?!(?:api|avatars|uploads|spaces|static|models|collections|settings|organizations|login|logout|join)/)"
PAGE_REPO = rf"/(?P<prefix>datasets/)?{RESERVED}(?P<ns>[^/]+)/(?P<name>[^/]+)"
#: One-segment paths of the hub's own that are never a user's or an organization's page.
RESERVED_NAME = (r"(?!(?:api|avatars|uploads|spaces|static|models|datasets|collections|settings|organizations|login"
                 r"|logout|join"
                 r"|leaderboard|new)$)")
REV = r"(?P<rev>refs/(?:pr|convert)/[^/]+|[^/]+)"


def page_number(ctx: Ctx) -> int:
    """The ``p`` of a paginated page's URL (0 when absent); 400 for anything but a number."""
    try:
        return int(ctx.request.query_params.get("p") or 0)
    except ValueError as exc:
        raise InvalidInputError("p must be a page number") from exc


def page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**PAGE_HEADERS, **(headers or {})})


def _context(ctx: Ctx, **values: Any) -> dict[str, Any]:
    """What every template gets: the helpers, and who is signed in (with the CSRF token of
    the session's forms)."""
    session = session_of(ctx)
    return {"repo_path": pages.repo_path, "me": session.principal.name if session else None,
            "csrf": session.csrf if session else "", "here": ctx.request.url.path, "liked": False, **values}


def session_of(ctx: Ctx) -> WebSession | None:
    found: WebSession | None = getattr(ctx.request.state, "session", None)
    return found


def error_page(ctx: Ctx, exc: HubError) -> Response:
    if isinstance(exc, RepoMovedError):
        return error_response(exc)  # the 307 to the repo's current id, as the API answers
    status, code = status_for(exc)
    html = render("error.html", **_context(ctx, status=status, message=exc.message))
    return page(html, status, {"X-Error-Code": code, "X-Error-Message": header_safe(exc.message)})


async def find_session(ctx: Ctx) -> WebSession | None:
    """A page request without a bearer token acts for the session its cookie names, if any.
    (Only pages do this: the API never reads the cookie.)"""
    if ctx.token:
        return None
    cookie = ctx.request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session = await run_in_threadpool(sessions.session_of, ctx.hub, cookie)
    if session is not None:
        ctx.authenticate_as(session.principal)
    return session


def shows_errors(handler: Callable[[Ctx], Awaitable[Response]]) -> Callable[[Ctx], Awaitable[Response]]:
    """A page: its session found first, its errors shown as pages (a redirect for a moved
    repo's old id)."""

    async def run(ctx: Ctx) -> Response:
        try:
            ctx.request.state.session = await find_session(ctx)
            return await handler(ctx)
        except HubError as exc:
            return error_page(ctx, exc)

    return run


async def home(ctx: Ctx) -> Response:
    view = await ctx.call(pages.home_page)
    return page(render("home.html", **_context(ctx, view=view)))


async def search(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    kind = ctx.params["kind"]
    query, sort, filters = q.get("search", ""), q.get("sort", "trendingScore"), q.getlist("filter")
    params_range = q.get("num_parameters", "")
    view = await ctx.call(pages.search_page, kind[:-1], query, sort, filters, params_range, q.get("cursor"))

    def url(**changes: Any) -> str:
        state: dict[str, Any] = {"search": query, "sort": sort, "filter": filters, "num_parameters": params_range,
                                 **changes}
        items = [(k, v) for k, vs in state.items() for v in (vs if isinstance(vs, list) else [vs]) if v]
        return f"/{kind}?{urlencode(items)}"

    def toggle(item: pages.FacetItem) -> str:
        if item.kind == "num_parameters":
            return url(num_parameters="" if item.active else item.value)
        return url(filter=[f for f in filters if f != item.value] if item.active else [*filters, item.value])

    facets = [(group.title, [(item, toggle(item)) for item in group.items]) for group in view.facets]
    without = {f: url(filter=[g for g in filters if g != f]) for f in filters}
    next_url = url(cursor=view.next_cursor) if view.next_cursor else None
    html = render("search.html", **_context(
        ctx, view=view, kind=kind, sorts=SORT_LABELS, filters=filters, without_filter=without, next_url=next_url,
        top_search=query, facets=facets, params_range=params_range,
        without_params=url(num_parameters="") if params_range else None,
    ))
    return page(html)


def _snippet(base: str, view: pages.RepoPage) -> str:
    repo = view.repo
    if repo.type == "dataset":
        return (f"# HF_ENDPOINT={base}\nfrom datasets import load_dataset\n\n"
                f"ds = load_dataset({json.dumps(repo.repo_id)})")
    lines = [f"# HF_ENDPOINT={base}"]
    if view.info.facts.library_name == "sentence-transformers":
        lines += ["from sentence_transformers import SentenceTransformer", "",
                  f"model = SentenceTransformer({json.dumps(repo.repo_id)})"]
    elif view.info.facts.library_name == "transformers" or view.info.facts.config:
        lines += ["from transformers import AutoModel", "",
                  f"model = AutoModel.from_pretrained({json.dumps(repo.repo_id)})"]
    else:
        lines += ["from huggingface_hub import snapshot_download", "",
                  f"path = snapshot_download({json.dumps(repo.repo_id)})"]
    lines += ["", f"# hf download {repo.repo_id}", f"# git clone {base}{pages.repo_path(repo.type, repo.repo_id)}"]
    return "\n".join(lines)


async def repo_page(ctx: Ctx) -> Response:
    rev = ctx.params.get("rev", "main")
    view = await ctx.call(pages.repo_page, repo_type(ctx.params), repo_id(ctx.params), rev)
    card_data = view.info.facts.card_data or {}
    license_ = card_data.get("license") if isinstance(card_data.get("license"), str) else None
    html = render("repo.html", **_context(
        ctx,
        view=view, facts=view.info.facts, card=trusted(view.card_html or ""), license=license_, liked=view.liked,
        file_count=sum(1 for e in view.info.entries if not e.is_dir), snippet=_snippet(ctx.base_url(), view),
    ))
    return page(html)


async def tree_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.tree_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"],
                          ctx.params.get("path", ""))
    return page(render("tree.html", **_context(ctx, view=view)))


async def blob_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.blob_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"],
                          ctx.params["path"])
    code = [trusted(line) for line in view.highlighted] if view.highlighted is not None else None
    return page(render("blob.html", **_context(ctx, view=view, code=code)))


async def commits_page(ctx: Ctx) -> Response:
    number = page_number(ctx)
    view = await ctx.call(pages.commits_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], number,
                          ctx.params.get("path") or "")
    return page(render("commits.html", **_context(ctx, view=view)))


async def commit_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.commit_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["oid"])
    return page(render("commit.html", **_context(ctx, view=view)))


async def viewer_page(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    number = page_number(ctx)
    rev = q.get("rev", "main")
    view = await ctx.call(viewer.viewer_page, repo_id(ctx.params), rev, q.get("file") or None, number)

    def url(file: str, p: int = 0) -> str:
        query = [*([("rev", rev)] if rev != "main" else []), ("file", file), ("p", p)]
        return f"{pages.repo_path('dataset', view.snap.repo.repo_id)}/viewer?{urlencode(query)}"

    return page(render("viewer.html", **_context(ctx, view=view, url=url)))


async def profile_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.profile_page, ctx.params["account"])
    return page(render("profile.html", **_context(ctx, view=view)))


async def leaderboard_page(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidInputError("order must be asc or desc")
    view = await ctx.call(pages.leaderboard_page, q.get("task", "").strip(), q.get("dataset", "").strip(),
                          q.get("metric", "").strip(), order == "asc")
    return page(render("leaderboard.html", **_context(ctx, view=view)))


async def collections_page(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    number = page_number(ctx)
    owner, sort = q.get("owner", "").strip(), q.get("sort", "lastModified")
    view = await ctx.call(pages.collections_page, owner, sort, number)

    def url(p: int) -> str:
        return "/collections?" + urlencode([*([("owner", owner)] if owner else []), ("sort", sort), ("p", p)])

    return page(render("collections.html", **_context(ctx, view=view, url=url)))


async def collection_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.collection_page, f"{ctx.params['owner']}/{ctx.params['slug']}")
    return page(render("collection.html", **_context(ctx, view=view)))


async def static(ctx: Ctx) -> Response:
    data = asset(ctx.params["asset"])
    if data is None:
        return error_page(ctx, NotFoundError(f"No asset named {ctx.params['asset']}"))
    media = "text/css; charset=utf-8" if ctx.params["asset"].endswith(".css") else "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=3600",
                                                     "X-Content-Type-Options": "nosniff"})


def register(router: Router) -> None:
    router.add("GET", r"/", shows_errors(home))
    router.add("GET", r"/(?P<kind>models|datasets)", shows_errors(search))
    router.add("GET", r"/static/(?P<asset>[A-Za-z0-9_-]+\.css)", static)
    router.add("GET", r"/leaderboard", shows_errors(leaderboard_page))
    router.add("GET", r"/collections", shows_errors(collections_page))
    router.add("GET", r"/collections/(?P<owner>[^/]+)/(?P<slug>[^/]+)", shows_errors(collection_page))
    router.add("GET", rf"/{RESERVED_NAME}(?P<account>[^/]+)", shows_errors(profile_page))
    router.add("GET", PAGE_REPO, shows_errors(follows_moves(repo_page)))
    router.add("GET", rf"{PAGE_REPO}/tree/{REV}(?:/(?P<path>.*))?", shows_errors(follows_moves(tree_page)))
    router.add("GET", rf"{PAGE_REPO}/blob/{REV}/(?P<path>.+)", shows_errors(follows_moves(blob_page)))
    router.add("GET", rf"/(?P<prefix>datasets/){RESERVED}(?P<ns>[^/]+)/(?P<name>[^/]+)/viewer",
               shows_errors(follows_moves(viewer_page)))
    router.add("GET", rf"{PAGE_REPO}/commits/{REV}(?:/(?P<path>.+))?", shows_errors(follows_moves(commits_page)))
    router.add("GET", rf"{PAGE_REPO}/commit/(?P<oid>[0-9a-f]{{40}})", shows_errors(follows_moves(commit_page)))
