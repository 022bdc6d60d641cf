"""Static Spaces served as web pages at ``/spaces/{namespace}/{name}/``."""

from __future__ import annotations

import mimetypes

from starlette.responses import RedirectResponse, Response

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import REPO, repo_id
from modelyard.http.routes.files import send_file
from modelyard.services import spaces as spaces_svc

#: A Space's page runs in a sandbox: an opaque origin (no ``allow-same-origin``), so its scripts
#: can read neither the hub's storage nor its responses, and requests it makes carry no
#: credentials of the visitor; what it loads comes from the hub itself.
SANDBOX_POLICY = (
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads; "
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)


async def page(ctx: Ctx) -> Response:
    resolved = await ctx.call(spaces_svc.static_file, repo_id(ctx.params), ctx.params["page"])
    entry = resolved.entry
    headers = {
        "X-Repo-Commit": resolved.commit,
        "ETag": f'"{entry.lfs_sha256 or entry.oid}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0, must-revalidate",
        "Content-Security-Policy": SANDBOX_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    media_type = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
    return await send_file(ctx, resolved, headers, media_type)


async def space_root(ctx: Ctx) -> Response:
    """``/spaces/ns/name`` -> ``/spaces/ns/name/``: the page's relative links need the slash."""
    return RedirectResponse(f"{ctx.base_url()}/spaces/{repo_id(ctx.params)}/", status_code=301)


def register(router: Router) -> None:
    # After the other routes: ``/spaces/{repo}/resolve/...`` stays a download.
    router.add("GET", rf"/spaces/{REPO}", space_root)
    router.add("GET", rf"/spaces/{REPO}/(?P<page>.*)", page)
