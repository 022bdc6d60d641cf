"""Provisioning users, organisations, memberships and tokens (CLI and seed files)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog.accounts import Account
from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from modelyard.ids import validate_account_name
from modelyard.services.audit import record
from modelyard.services.auth import (
    FINE,
    FINE_GRAINED,
    Principal,
    Scope,
    check_token_strength,
    hash_token,
    new_token_value,
    parse_scopes,
    scopes_json,
    whoami_scopes,
)
from modelyard.services.hub import Hub, utcnow

ROLES = ("read", "write", "admin")


def create_user(
    hub: Hub, name: str, fullname: str = "", email: str | None = None, admin: bool = False, actor_name: str = "cli"
) -> Account:
    validate_account_name(name, "user name")
    with hub.db.write() as conn:
        if accounts_q.by_name(conn, name) is not None:
            raise ConflictError(f"The name {name!r} is already taken")
        user = accounts_q.create(
            conn, name=name, kind="user", fullname=fullname or name, email=email,
            is_admin=admin, default_private=False, now=utcnow(),
        )
        record(conn, "user.created", user.id, None, f"user:{name}", {"admin": admin}, actor_name=actor_name)
        return user


def create_org(hub: Hub, name: str, fullname: str = "", default_private: bool = False,
               first_admin: int | None = None, actor: Principal | None = None) -> Account:
    """A new organization; with ``first_admin`` (a user's id), that user is its admin from the start."""
    validate_account_name(name, "organization name")
    with hub.db.write() as conn:
        if accounts_q.by_name(conn, name) is not None:
            raise ConflictError(f"The name {name!r} is already taken")
        org = accounts_q.create(
            conn, name=name, kind="org", fullname=fullname or name, email=None,
            is_admin=False, default_private=default_private, now=utcnow(),
        )
        if first_admin is not None:
            accounts_q.set_member(conn, org.id, first_admin, "admin")
        record(conn, "org.created", org.id, actor, f"org:{name}")
        return org


def org_memberships(hub: Hub, principal: Principal) -> list[tuple[int, str, str, str]]:
    """``(org id, name, fullname, role)`` of the caller's orgs, for ``whoami-v2``."""
    with hub.db.read() as conn:
        return accounts_q.memberships(conn, principal.account_id)


def add_member(hub: Hub, org: str, user: str, role: str) -> None:
    if role not in ROLES:
        raise InvalidInputError(f"Invalid role {role!r}: expected read, write or admin")
    with hub.db.write() as conn:
        org_acc = accounts_q.by_name(conn, org)
        user_acc = accounts_q.by_name(conn, user)
        if org_acc is None or org_acc.kind != "org":
            raise NotFoundError(f"No organization named {org!r}")
        if user_acc is None or user_acc.kind != "user":
            raise NotFoundError(f"No user named {user!r}")
        accounts_q.set_member(conn, org_acc.id, user_acc.id, role)
        record(conn, "org.member_role_set", org_acc.id, None, f"user:{user_acc.name}", {"role": role})


def create_token(hub: Hub, user: str, name: str = "token", role: str = "write", value: str | None = None,
                 actor: Principal | None = None, scopes: tuple[Scope, ...] | None = None,
                 expires_at: datetime | None = None) -> str:
    """Create a token and return its value (shown once; only its hash is stored). With
    ``scopes`` it is fine-grained (``services/auth.py``); ``expires_at`` (UTC) ends it."""
    if scopes is not None:
        role = FINE
    elif role not in ("read", "write"):
        raise InvalidInputError(f"Invalid token role {role!r}: expected read or write")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInputError("A token's expiry date must lie in the future")
    if value is not None:
        check_token_strength(value)
    token = value or new_token_value()
    with hub.db.write() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None or account.kind != "user":
            raise NotFoundError(f"No user named {user!r}")
        existing = accounts_q.token_by_hash(conn, hash_token(token))
        if existing is not None:
            if existing.account_id != account.id:
                raise ConflictError("That token value belongs to another user")
            return token
        accounts_q.add_token(conn, account.id, name, hash_token(token), role, utcnow(),
                             scopes_json(scopes) if scopes is not None else None, expires_at)
        details: dict[str, Any] = {"role": FINE_GRAINED if scopes is not None else role}
        if scopes is not None:
            details["scopes"] = whoami_scopes(scopes)
        if expires_at is not None:
            details["expiresAt"] = expires_at.isoformat(timespec="seconds") + "Z"
        record(conn, "token.created", account.id, actor, f"token:{name}", details)
    return token


def new_api_token(hub: Hub, principal: Principal | None, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /api/settings/tokens`` (a modelyard extension): a new token of the caller's, read,
    write or fine-grained (``scoped`` and ``global`` as whoami-v2 reports them), with an optional
    ``expiresAt``; its value is in the answer, once. Made with a session or a read/write token
    (a fine-grained token cannot make tokens)."""
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    if principal.token_role != "write" or principal.scopes is not None:
        raise PermissionDeniedError("Tokens are made with a write token (not a read or fine-grained one)")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64 or not name.isprintable():
        raise InvalidInputError("A token needs a name of 1 to 64 printable characters")
    role = body.get("role", "read")
    scopes = parse_scopes(body.get("scoped", []), body.get("global", [])) if role == FINE_GRAINED else None
    expires_at = None
    if body.get("expiresAt") is not None:
        try:
            parsed = datetime.fromisoformat(str(body["expiresAt"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInputError("'expiresAt' must be an ISO 8601 date") from exc
        expires_at = parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    with hub.db.read() as conn:
        if any(t.name == name.strip() for t in accounts_q.tokens_of(conn, principal.account_id)):
            raise ConflictError(f"You already have a token named {name.strip()!r}")
    value = create_token(hub, principal.name, name.strip(), str(role), actor=principal, scopes=scopes,
                         expires_at=expires_at)
    out: dict[str, Any] = {"name": name.strip(), "token": value, "role": FINE_GRAINED if scopes else role}
    if scopes is not None:
        out["fineGrained"] = whoami_scopes(scopes)
    if expires_at is not None:
        out["expiresAt"] = expires_at.isoformat(timespec="seconds") + "Z"
    return out


def revoke_tokens(hub: Hub, user: str, name: str | None = None, actor: Principal | None = None) -> int:
    with hub.db.write() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None:
            raise NotFoundError(f"No user named {user!r}")
        revoked = accounts_q.revoke_tokens(conn, account.id, name, utcnow())
        if revoked:
            record(conn, "token.revoked", account.id, actor, f"token:{name}" if name else "token:*",
                   {"count": revoked})
        return revoked


def ensure_admin(hub: Hub) -> str | None:
    """On first start: create the ``admin`` account and return a new write token for it."""
    with hub.db.read() as conn:
        if accounts_q.by_name(conn, "admin") is not None:
            return None
    try:
        create_user(hub, "admin", "Administrator", None, admin=True)
    except ConflictError:
        return None  # another server process won the race
    return create_token(hub, "admin", "admin", "write")


def seed(hub: Hub, spec: dict[str, Any]) -> None:
    """Apply a declarative seed file; running it twice changes nothing the second time."""
    if not isinstance(spec, dict):
        raise InvalidInputError("A seed file holds a JSON object with 'users' and 'orgs'")
    for user in spec.get("users", []):
        name = user["name"]
        with hub.db.read() as conn:
            existing = accounts_q.by_name(conn, name)
        if existing is None:
            create_user(hub, name, user.get("fullname", ""), user.get("email"), bool(user.get("admin")))
        else:
            with hub.db.write() as conn:
                accounts_q.update_account(
                    conn, existing.id,
                    fullname=user.get("fullname", existing.fullname),
                    email=user.get("email", existing.email),
                    is_admin=bool(user.get("admin", existing.is_admin)),
                )
        if user.get("password") is not None:
            from modelyard.services.sessions import ensure_password

            ensure_password(hub, name, str(user["password"]))
        for token in user.get("tokens", []):
            create_token(hub, name, token.get("name", "seed"), token.get("role", "write"), token.get("value"))
    for org in spec.get("orgs", []):
        name = org["name"]
        with hub.db.read() as conn:
            existing = accounts_q.by_name(conn, name)
        if existing is None:
            create_org(hub, name, org.get("fullname", ""), bool(org.get("default_private", False)))
        else:
            with hub.db.write() as conn:
                accounts_q.update_account(
                    conn, existing.id,
                    fullname=org.get("fullname", existing.fullname),
                    default_private=bool(org.get("default_private", existing.default_private)),
                )
        for member, role in org.get("members", {}).items():
            add_member(hub, name, member, role)
