"""Webhooks: ``/api/settings/webhooks`` (hub-api.md §11.2) and their delivery log."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import iso, json_body, json_response
from modelyard.http.routes.people import page_params, paged
from modelyard.services import webhooks
from modelyard.services.webhooks import LoggedDelivery, Webhook

ID = r"(?P<id>[^/]+)"
PAGE = 50


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """The webhook object the client's ``WebhookInfo`` reads."""
    return {
        "id": hook.uid, "url": hook.url, "watched": [{"type": kind, "name": name} for kind, name in hook.watched],
        "domains": hook.domains, "secret": hook.secret, "disabled": hook.disabled,
    }


def delivery_json(delivery: LoggedDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.id), "event": delivery.payload.get("event"), "status": delivery.status,
        "attempts": delivery.attempts, "createdAt": iso(delivery.created_at),
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "finishedAt": iso(delivery.finished_at) if delivery.finished_at else None,
        "payload": delivery.payload,
        "log": [{"attempt": a.attempt, "startedAt": iso(a.started_at), "statusCode": a.status_code,
                 "latencyMs": a.latency_ms, "error": a.error} for a in delivery.log],
    }


async def list_webhooks(ctx: Ctx) -> Response:
    return json_response([webhook_json(h) for h in await ctx.call(webhooks.list_webhooks)])


async def get_webhook(ctx: Ctx) -> Response:
    return json_response({"webhook": webhook_json(await ctx.call(webhooks.get_webhook, ctx.params["id"]))})


async def create_webhook(ctx: Ctx) -> Response:
    await ctx.call(webhooks.list_webhooks)  # authenticated before the body is read
    body = await json_body(ctx)
    return json_response({"webhook": webhook_json(await ctx.call(webhooks.create_webhook, body))})


async def update_webhook(ctx: Ctx) -> Response:
    await ctx.call(webhooks.get_webhook, ctx.params["id"])  # theirs, before the body is read
    body = await json_body(ctx)
    return json_response({"webhook": webhook_json(await ctx.call(webhooks.update_webhook, ctx.params["id"], body))})


async def enable_webhook(ctx: Ctx) -> Response:
    return json_response({"webhook": webhook_json(await ctx.call(webhooks.set_disabled, ctx.params["id"], False))})


async def disable_webhook(ctx: Ctx) -> Response:
    return json_response({"webhook": webhook_json(await ctx.call(webhooks.set_disabled, ctx.params["id"], True))})


async def delete_webhook(ctx: Ctx) -> Response:
    await ctx.call(webhooks.delete_webhook, ctx.params["id"])
    return json_response({})


async def list_deliveries(ctx: Ctx) -> Response:
    """``GET /api/settings/webhooks/{id}/deliveries``: the delivery log, newest first, paged
    with ``cursor`` and ``limit`` (``Link: <next>; rel="next"``). Not a Hub endpoint."""
    offset, size = page_params(ctx, PAGE)
    found, more = await ctx.call(webhooks.list_deliveries, ctx.params["id"], offset, size)
    return paged(ctx, [delivery_json(d) for d in found], f"/api/settings/webhooks/{ctx.params['id']}/deliveries",
                 offset, size, more)


def register(router: Router) -> None:
    router.add("GET", r"/api/settings/webhooks", list_webhooks)
    router.add("POST", r"/api/settings/webhooks", create_webhook)
    router.add("GET", rf"/api/settings/webhooks/{ID}", get_webhook)
    router.add("POST", rf"/api/settings/webhooks/{ID}", update_webhook)
    router.add("DELETE", rf"/api/settings/webhooks/{ID}", delete_webhook)
    router.add("POST", rf"/api/settings/webhooks/{ID}/enable", enable_webhook)
    router.add("POST", rf"/api/settings/webhooks/{ID}/disable", disable_webhook)
    router.add("GET", rf"/api/settings/webhooks/{ID}/deliveries", list_deliveries)
