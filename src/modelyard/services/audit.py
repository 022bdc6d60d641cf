"""The audit log: who did what, when, from where, for security-relevant actions.

Each entry is appended in the transaction of the action it records (a repo deleted without its
entry cannot happen, nor an entry for a deletion that was rolled back) and never changed. An
entry belongs to the account whose log shows it: the org (or user) owning the repo, the org whose
members changed, the user whose tokens, sign-ins or webhooks they are. Org admins read their
org's log (``GET /api/organizations/{org}/audit-log``, the org's settings page); a user reads
their own (``GET /api/settings/audit-log``); operators read everything with ``modelyard audit``.

"From where" is the request's address (``ADDRESS``, set by the HTTP layer for each request: the
peer, or the last ``X-Forwarded-For`` hop behind a trusted proxy); ``local`` for the CLI.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import audit as audit_q
from modelyard.catalog.audit import AuditEvent
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services.auth import Principal
from modelyard.services.hub import Hub, utcnow

#: The address of the request being served (copied into the worker thread that runs its service).
ADDRESS: ContextVar[str] = ContextVar("modelyard_audit_address", default="local")

#: Every action the log records (``docs/security.md`` § Audit log).
ACTIONS = (
    "user.sign_in", "user.sign_in_failed", "user.password_changed", "user.created", "org.created",
    "token.created", "token.revoked",
    "repo.created", "repo.deleted", "repo.moved", "repo.visibility_changed", "repo.gating_changed",
    "org.member_role_set", "org.member_removed",
    "resource_group.created", "resource_group.updated", "resource_group.deleted",
    "resource_group.member_role_set", "resource_group.member_removed", "repo.resource_group_changed",
    "access_request.accepted", "access_request.rejected", "access_request.cancelled", "access_request.granted",
    "webhook.created", "webhook.updated", "webhook.enabled", "webhook.disabled", "webhook.deleted",
    "lfs.permanently_deleted", "repo.mirrored",
)
MAX_PAGE = 1000


def record(conn: Connection, action: str, owner_id: int | None, actor: Principal | None, subject: str,
           details: dict[str, Any] | None = None, actor_name: str = "cli") -> None:
    """Append one entry in the caller's transaction. ``actor`` None: an operator command (or the
    hub itself: ``actor_name``)."""
    assert action in ACTIONS, action
    audit_q.append(conn, utcnow(), action, owner_id, actor.account_id if actor else None,
                   actor.name if actor else actor_name, subject, details or {}, ADDRESS.get())


def repo_subject(repo_type: str, repo_id: str) -> str:
    return f"{repo_type}:{repo_id}"


def _page(limit: object) -> int:
    try:
        value = int(str(limit)) if limit is not None else 100
    except ValueError as exc:
        raise InvalidInputError("'limit' must be an integer") from exc
    if not 1 <= value <= MAX_PAGE:
        raise InvalidInputError(f"'limit' must be between 1 and {MAX_PAGE}")
    return value


def _before(cursor: object) -> int | None:
    if cursor in (None, ""):
        return None
    try:
        return int(str(cursor))
    except ValueError as exc:
        raise InvalidInputError("Invalid cursor") from exc


def account_log(hub: Hub, principal: Principal | None, name: str | None, actions: list[str] | None = None,
                cursor: object = None, limit: object = None) -> list[AuditEvent]:
    """An org's log (its admins and site admins only) or a user's own log (``name`` None: the
    caller's), newest first; pages go on from ``cursor`` (the id of the last entry seen)."""
    if principal is None:
        raise AuthenticationError("Sign in to read an audit log")
    name = principal.name if name is None else name
    if principal.scopes is not None:
        raise PermissionDeniedError("Audit logs are read with a read or write token, not a fine-grained one")
    unknown = [a for a in actions or [] if a not in ACTIONS]
    if unknown:
        raise InvalidInputError(f"Unknown action {unknown[0]!r}")
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, name)
        if account is None:
            raise NotFoundError(f"No user or organization named {name!r}")
        if not principal.is_admin and account.id != principal.account_id:
            role = principal.org_role(account.id)
            if account.kind != "org" or role is None:
                raise NotFoundError(f"No organization named {name!r}")  # outsiders learn nothing more
            if role != "admin":
                raise PermissionDeniedError(f"Only admins of {account.name!r} read its audit log")
        return audit_q.read(conn, account.id, actions, before_id=_before(cursor), limit=_page(limit))


def operator_log(hub: Hub, account: str | None = None, actions: list[str] | None = None, actor: str | None = None,
                 since: datetime | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
    """``modelyard audit``: every entry (or one account's), newest first, as JSON objects that
    name the account whose log holds them."""
    unknown = [a for a in actions or [] if a not in ACTIONS]
    if unknown:
        raise InvalidInputError(f"Unknown action {unknown[0]!r}: one of {', '.join(ACTIONS)}")
    with hub.db.read() as conn:
        owner = None
        if account is not None:
            found = accounts_q.by_name(conn, account)
            if found is None:
                raise NotFoundError(f"No user or organization named {account!r}")
            owner = found.id
        events = audit_q.read(conn, owner, actions, actor, since, limit=limit, everyone=account is None)
        names: dict[int | None, str | None] = {None: None}
        for event in events:
            if event.owner_id not in names:
                found = accounts_q.by_id(conn, event.owner_id) if event.owner_id is not None else None
                names[event.owner_id] = found.name if found is not None else f"#{event.owner_id}"
    return [as_json(e, names[e.owner_id] or "") for e in events]


def as_json(event: AuditEvent, owner: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": event.id, "at": event.at.isoformat(timespec="milliseconds") + "Z", "action": event.action,
        "actor": event.actor, "subject": event.subject, "details": event.details, "address": event.address,
    }
    if owner is not None:
        out["account"] = owner
    return out
