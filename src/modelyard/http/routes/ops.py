"""For operators and load balancers: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import NotFoundError
from modelyard.http.app import Ctx, Router
from modelyard.http.metrics import CONTENT_TYPE
from modelyard.http.routes.common import json_response
from modelyard.services import health


async def healthz(ctx: Ctx) -> Response:
    """The process answers (no other check: a balancer restarts what fails this)."""
    return json_response({"status": "ok"})


async def readyz(ctx: Ctx) -> Response:
    """The database and the blob store answer: 200, else 503 with what failed (a balancer sends
    this server no traffic until it is ready again)."""
    checks = await run_in_threadpool(health.readiness, ctx.hub)
    ready = all(c.ok for c in checks)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": round(c.seconds * 1000, 1)} for c in checks},
    }
    return json_response(body, status=200 if ready else 503)


async def metrics(ctx: Ctx) -> Response:
    if not ctx.hub.settings.metrics or ctx.app is None:
        raise NotFoundError("Metrics are off on this server (MODELYARD_METRICS)")
    text = await run_in_threadpool(ctx.app.metrics.render)
    return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def register(router: Router) -> None:
    router.add("GET", r"/healthz", healthz)
    router.add("GET", r"/readyz", readyz)
    router.add("GET", r"/metrics", metrics)
