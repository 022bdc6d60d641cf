"""Webhooks: a user's subscriptions (``/api/settings/webhooks``) and the deliveries events make.

A webhook belongs to the user who created it; only they see or change it (anyone else gets 404,
as for a missing one). It watches repos (by type and name), users and orgs, in the domains
``repo`` and ``discussion``. Watching an org needs the admin role in it (the Hub's org webhooks
are set up by org admins). Target URLs must be http(s) and, unless the operator allows it
(``MODELYARD_WEBHOOK_ALLOW_PRIVATE_TARGETS``), must not resolve to loopback, link-local or
private addresses; the sender checks the address again at each attempt (DNS may change).

Fan-out: the job of an event (``services/events.py``) turns it into one delivery per matching
enabled webhook whose owner may read the repo, with the version-3 payload that
``huggingface_hub.WebhookPayload`` parses, built from the repo as it is then. A repo's deletion
fans out inside the delete transaction (its events go with it). ``services/webhook_sender.py``
sends the deliveries.
"""

from __future__ import annotations

import ipaddress
import json
import secrets as secrets_mod
import socket
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import discussions as discussions_q
from modelyard.catalog import events as events_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import webhooks as webhooks_q
from modelyard.catalog.events import Event
from modelyard.catalog.repos import Repo
from modelyard.catalog.webhooks import LoggedDelivery, Webhook

__all__ = ["LoggedDelivery", "Webhook", "WebhookNotFoundError"]
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.ids import URL_PREFIXES
from modelyard.services.audit import record
from modelyard.services.auth import WEBHOOKS, Principal, can_read, global_allows, require_writer
from modelyard.services.hub import Hub, utcnow

DOMAINS = ("repo", "discussion")
REPO_KINDS = ("model", "dataset", "space")
WATCH_KINDS = (*REPO_KINDS, "user", "org")
MAX_WATCHED = 100
MAX_SECRET = 256
MAX_URL = 2048
PAYLOAD_VERSION = 3


class WebhookNotFoundError(NotFoundError):
    """No webhook with that id belongs to the caller."""


# -- validation -------------------------------------------------------------------------------


def refused_address(host: str, allow_private: bool) -> str | None:
    """Why ``host`` (a name or an IP) may not be posted to, or None. Names are resolved: every
    address they resolve to must be public; a name that does not resolve is not refused here (the
    sender checks again when it posts)."""
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            return f"{host} resolves to {address}, a loopback, link-local or private address"
    return None


def check_url(hub: Hub, url: object) -> str:
    """A target URL the hub may post to, or ``InvalidInputError`` saying why not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidInputError(f"url must be an http(s) URL of at most {MAX_URL} characters")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):  # it goes into a request line as it is
        raise InvalidInputError("url must not contain spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("url must be an http:// or https:// URL with a host")
    del port
    why = refused_address(parts.hostname, hub.settings.webhook_allow_private_targets)
    if why:
        raise InvalidInputError(f"Webhook URL refused: {why}")
    return url


def _domains(value: object) -> list[str]:
    if not isinstance(value, list) or not value or any(d not in DOMAINS for d in value):
        raise InvalidInputError(f"domains must be a non-empty list of {', '.join(DOMAINS)}")
    return [d for d in DOMAINS if d in value]


def _secret(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_SECRET or any(not 32 <= ord(c) < 127 for c in value):
        # sent as the X-Webhook-Secret header: printable ASCII only
        raise InvalidInputError(f"secret must be a string of at most {MAX_SECRET} printable ASCII characters")
    return value


def _watched(conn: Connection, principal: Principal, value: object) -> list[tuple[str, str]]:
    """The watched items, each checked: repos the caller can read, users, orgs they administer."""
    if not isinstance(value, list) or not value or len(value) > MAX_WATCHED:
        raise InvalidInputError(f"watched must be a list of 1 to {MAX_WATCHED} items")
    out: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in WATCH_KINDS or not isinstance(item.get("name"), str):
            raise InvalidInputError(f"Each watched item is {{'type': one of {', '.join(WATCH_KINDS)}, 'name': str}}")
        kind, name = item["type"], item["name"]
        if kind in REPO_KINDS:
            namespace, _, repo_name = name.partition("/")
            repo = repos_q.get(conn, kind, namespace, repo_name) if repo_name else None
            if repo is None or not can_read(principal, repo):
                raise InvalidInputError(f"Cannot watch {kind} {name!r}: no such repository")
            name = repo.repo_id
        else:
            account = accounts_q.by_name(conn, name)
            if account is None or account.kind != kind:
                raise InvalidInputError(f"Cannot watch {kind} {name!r}: no such {kind}")
            if kind == "org" and not principal.is_admin and principal.org_role(account.id) != "admin":
                raise PermissionDeniedError(f"Watching org {account.name!r} needs the admin role in it")
            name = account.name
        out.append((kind, name))
    return out


def _user(principal: Principal | None) -> Principal:
    if principal is None:
        raise AuthenticationError("Authentication required to manage webhooks")
    if not global_allows(principal, WEBHOOKS):
        raise PermissionDeniedError(f"This token's scopes do not include {WEBHOOKS}")
    return principal


# -- the API ----------------------------------------------------------------------------------


def list_webhooks(hub: Hub, principal: Principal | None) -> list[Webhook]:
    """The caller's webhooks, oldest first."""
    user = _user(principal)
    with hub.db.read() as conn:
        return webhooks_q.list_for_owner(conn, user.account_id)


def get_webhook(hub: Hub, principal: Principal | None, uid: str) -> Webhook:
    """One of the caller's webhooks (404 for anyone else's)."""
    user = _user(principal)
    with hub.db.read() as conn:
        return _own(conn, user, uid)


def _own(conn: Connection, user: Principal, uid: str) -> Webhook:
    found = webhooks_q.get(conn, uid, user.account_id)
    if found is None:
        raise WebhookNotFoundError(f"Webhook {uid!r} not found")
    return found


def create_webhook(hub: Hub, principal: Principal | None, body: dict[str, Any]) -> Webhook:
    """A new webhook posting to ``url`` (jobs are not run here: ``jobSourceId`` is refused)."""
    user = require_writer(hub, principal, WEBHOOKS)
    if "jobSourceId" in body or "secrets" in body:
        raise InvalidInputError("Webhooks that trigger Jobs are not supported here: pass a url")
    url = check_url(hub, body.get("url"))
    domains = _domains(body.get("domains", list(DOMAINS)))
    secret = _secret(body.get("secret"))
    uid = secrets_mod.token_hex(12)
    with hub.db.write() as conn:
        watched = _watched(conn, user, body.get("watched"))
        webhooks_q.create(conn, uid=uid, owner_id=user.account_id, url=url, secret=secret, domains=domains,
                          watched=watched, now=utcnow())
        record(conn, "webhook.created", user.account_id, user, f"webhook:{uid}",
               {"url": url, "domains": domains, "watched": [f"{kind}:{name}" for kind, name in watched]})
        return _own(conn, user, uid)


def update_webhook(hub: Hub, principal: Principal | None, uid: str, body: dict[str, Any]) -> Webhook:
    """Change a webhook's url, watched items, domains or secret. The client always sends
    ``watched`` (``[]`` when the caller passed none): an empty list keeps the current items."""
    user = require_writer(hub, principal, WEBHOOKS)
    if "jobSourceId" in body or "secrets" in body:
        raise InvalidInputError("Webhooks that trigger Jobs are not supported here: pass a url")
    values: dict[str, Any] = {}
    if body.get("url") is not None:
        values["url"] = check_url(hub, body["url"])
    if body.get("domains") is not None:
        values["domains"] = _domains(body["domains"])
    if "secret" in body:
        values["secret"] = _secret(body["secret"])
    with hub.db.write() as conn:
        hook = _own(conn, user, uid)
        watched = body.get("watched")
        if watched not in (None, []):
            webhooks_q.set_watched(conn, hook.id, _watched(conn, user, watched))
        webhooks_q.update_webhook(conn, hook.id, **values)
        changed = sorted(values) + (["watched"] if watched not in (None, []) else [])
        shown = {k: v for k, v in values.items() if k != "secret"}  # a secret is never written to the log
        record(conn, "webhook.updated", user.account_id, user, f"webhook:{uid}", {"changed": changed, **shown})
        return _own(conn, user, uid)


def set_disabled(hub: Hub, principal: Principal | None, uid: str, disabled: bool) -> Webhook:
    """Enable or disable a webhook; disabling gives up its pending deliveries."""
    user = require_writer(hub, principal, WEBHOOKS)
    with hub.db.write() as conn:
        hook = _own(conn, user, uid)
        webhooks_q.update_webhook(conn, hook.id, disabled=disabled)
        if disabled:
            webhooks_q.drop_pending(conn, hook.id, utcnow())
        record(conn, "webhook.disabled" if disabled else "webhook.enabled", user.account_id, user, f"webhook:{uid}")
        return _own(conn, user, uid)


def delete_webhook(hub: Hub, principal: Principal | None, uid: str) -> None:
    """Delete a webhook with its delivery log."""
    user = require_writer(hub, principal, WEBHOOKS)
    with hub.db.write() as conn:
        hook = _own(conn, user, uid)
        webhooks_q.delete_webhook(conn, hook.id)
        record(conn, "webhook.deleted", user.account_id, user, f"webhook:{uid}", {"url": hook.url})


def list_deliveries(
    hub: Hub, principal: Principal | None, uid: str, offset: int, size: int,
) -> tuple[list[LoggedDelivery], bool]:
    """A page of a webhook's delivery log, newest first (each delivery with every attempt)."""
    user = _user(principal)
    with hub.db.read() as conn:
        hook = _own(conn, user, uid)
        return webhooks_q.deliveries(conn, hook.id, offset, size)


# -- events -> deliveries -------------------------------------------------------------------


def base_url(hub: Hub) -> str:
    settings = hub.settings
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def repo_payload(hub: Hub, conn: Connection, repo: Repo, name: str | None = None) -> dict[str, Any]:
    """The ``repo`` object of a payload (``name``: another name than the current one)."""
    rid = name or repo.repo_id
    base = base_url(hub)
    head = refs_q.get(conn, repo.id, "refs/heads/main")
    out: dict[str, Any] = {
        "id": repo.uid or str(repo.id), "owner": {"id": str(repo.owner_id)}, "name": rid, "private": repo.private,
        "type": repo.type, "tags": list(repo.tags),
        "url": {"web": f"{base}/{URL_PREFIXES[repo.type]}{rid}", "api": f"{base}/api/{repo.type}s/{rid}"},  # type: ignore[index]
    }
    if head:
        out["head_sha"] = head
    return out


def _discussion_payload(hub: Hub, conn: Connection, repo: Repo, data: dict[str, Any]) -> dict[str, Any] | None:
    thread = discussions_q.get(conn, repo.id, int(data["num"]))
    if thread is None:
        return None
    web = f"{base_url(hub)}/{URL_PREFIXES[repo.type]}{repo.repo_id}/discussions/{thread.num}"  # type: ignore[index]
    out: dict[str, Any] = {
        "discussion": {
            "id": f"{thread.id:024x}", "num": thread.num, "author": {"id": str(thread.author_id or 0)},
            "url": {"web": web}, "title": thread.title, "isPullRequest": thread.is_pull_request,
            "status": thread.status,
        },
    }
    if thread.is_pull_request and thread.base_ref:
        changes: dict[str, Any] = {"base": thread.base_ref}
        if thread.merge_commit:
            changes["mergeCommitId"] = thread.merge_commit
        out["discussion"]["changes"] = changes
    comment_id = data.get("comment_id")
    if comment_id:
        found = discussions_q.event(conn, thread.id, int(comment_id, 16))
        if found is not None:
            out["comment"] = {
                "id": comment_id, "author": {"id": str(found.author_id or 0)},
                "hidden": bool(found.data.get("hidden")), "content": found.data.get("raw"),
                "url": {"web": f"{web}#{comment_id}"},
            }
    return out


def event_payload(hub: Hub, conn: Connection, repo: Repo, event: Event) -> tuple[str, dict[str, Any]] | None:
    """(domain, payload without its ``webhook``) for an event, or None if it sends nothing."""
    data = event.data or {}
    if event.kind == "repo" and data.get("moved_from"):
        owner = accounts_q.by_id(conn, repo.owner_id)
        moved = {"name": repo.repo_id, "owner": {"id": str(owner.id if owner else repo.owner_id)}}
        return "repo", {"event": {"action": "move", "scope": "repo"},
                        "repo": repo_payload(hub, conn, repo, data["moved_from"]), "movedTo": moved}
    if event.kind == "repo":
        return "repo", {"event": {"action": "create", "scope": "repo"}, "repo": repo_payload(hub, conn, repo)}
    if event.kind == "ref" and event.ref:
        ref: dict[str, Any] = {"ref": event.ref}
        if event.old:
            ref["oldSha"] = event.old
        if event.new:
            ref["newSha"] = event.new
        return "repo", {"event": {"action": "update", "scope": "repo.content"},
                        "repo": repo_payload(hub, conn, repo), "updatedRefs": [ref]}
    if event.kind == "config":
        return "repo", {"event": {"action": "update", "scope": "repo.config"}, "repo": repo_payload(hub, conn, repo)}
    if event.kind == "discussion" and "num" in data:
        extra = _discussion_payload(hub, conn, repo, data)
        if extra is None:
            return None
        action = data.get("action", "update")
        scope = data.get("scope", "discussion")
        return "discussion", {"event": {"action": action, "scope": scope}, "repo": repo_payload(hub, conn, repo),
                              **extra}
    return None


def _hooks(conn: Connection, repo: Repo, domain: str) -> list[Webhook]:
    """The enabled webhooks an event of ``repo`` in ``domain`` goes to."""
    owner = accounts_q.by_id(conn, repo.owner_id)
    hooks = webhooks_q.matching(conn, repo.type, repo.repo_id, owner.name if owner else repo.namespace, domain)
    if repo.private:  # only to webhooks whose owner may read the repo (checked now, not at creation)
        allowed = webhooks_q.readers(conn, {h.owner_id for h in hooks}, repo.owner_id, repo.resource_group_id)
        hooks = [h for h in hooks if h.owner_id in allowed]
    return hooks


def _body(payload: dict[str, Any], hook: Webhook) -> str:
    return json.dumps({**payload, "webhook": {"id": hook.uid, "version": PAYLOAD_VERSION}})


def fan_out(hub: Hub, conn: Connection, repo: Repo, event_key: str, domain: str, payload: dict[str, Any]) -> list[int]:
    """One delivery per matching webhook (in the caller's transaction); the webhooks that got one."""
    hooks = _hooks(conn, repo, domain)
    bodies = {h.id: _body(payload, h) for h in hooks}
    return webhooks_q.add_deliveries(conn, event_key, bodies, utcnow())


def event_key(event: Event) -> str:
    """What makes a delivery unique with its webhook. The time is part of it: SQLite may reuse
    the id of a deleted repo's last event, and a new event must not pass for the old one."""
    return f"event:{event.id}:{event.created_at.isoformat()}"


def fan_out_events(hub: Hub, conn: Connection, repo: Repo, events: list[Event]) -> bool:
    """The deliveries of several events of one repo, in order, in the caller's transaction: the
    matching webhooks are looked up once per domain and all rows go in one insert (idempotent:
    an event already fanned out gets nothing new). Whether any were made."""
    hooks: dict[str, list[Webhook]] = {}
    rows: list[tuple[str, int, str]] = []
    for event in events:
        built = event_payload(hub, conn, repo, event)
        if built is None:
            continue
        domain, payload = built
        if domain not in hooks:
            hooks[domain] = _hooks(conn, repo, domain)
        rows += [(event_key(event), h.id, _body(payload, h)) for h in hooks[domain]]
    return webhooks_q.add_many(conn, rows, utcnow()) > 0


def deliver_deletion(hub: Hub, conn: Connection, repo: Repo) -> bool:
    """In a repo's delete transaction, before the repo row goes: the deliveries of its events
    whose job has not run yet (they are deleted with the repo), then its ``repo`` delete
    deliveries, in that order. Whether any were made (then wake the sender)."""
    made = fan_out_events(hub, conn, repo, events_q.pending_for_repo(conn, repo.id))
    payload = {"event": {"action": "delete", "scope": "repo"}, "repo": repo_payload(hub, conn, repo)}
    return bool(fan_out(hub, conn, repo, f"delete:{repo.uid or repo.id}", "repo", payload)) or made
