"""Signing in with a password, browser sessions and their CSRF tokens.

Passwords are kept as argon2id hashes (argon2-cffi's defaults: 3 passes over 64 MiB, 4 lanes).
A session is a random cookie value of which only the sha256 is stored, with an expiry and a
CSRF token: every form posted in the session carries that token, compared in constant time.
Sessions authenticate pages only: the API reads bearer tokens and never the cookie, so a page of
another site cannot make a signed-in browser write through the API.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import groups as groups_q
from modelyard.catalog import sessions as sessions_q
from modelyard.catalog.accounts import Account
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services.accounts import create_token, create_user, revoke_tokens
from modelyard.services.audit import record
from modelyard.services.auth import Principal, hash_token
from modelyard.services.hub import Hub, utcnow

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SIGN_IN_FAILED = "Invalid user name or password"
TOKEN_NAME_LIMIT = 64


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """What an unknown user's password is checked against: the answer takes as long."""
    return _hasher().hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInputError(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if any(ord(c) < 32 for c in password):
        raise InvalidInputError("A password cannot contain control characters")


def set_password(hub: Hub, user: str, password: str) -> None:
    check_password_rules(password)
    hashed = _hasher().hash(password)
    with hub.db.write() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None or account.kind != "user":
            raise NotFoundError(f"No user named {user!r}")
        sessions_q.set_password_hash(conn, account.id, hashed)
        sessions_q.remove_all(conn, account.id)  # a new password ends every open session


def ensure_password(hub: Hub, user: str, password: str) -> None:
    """Set the password unless it is the user's already (a seed file applied again changes
    nothing, and ends no session)."""
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, user)
        hashed = sessions_q.password_hash(conn, account.id) if account is not None else None
    if hashed is not None:
        try:
            _hasher().verify(hashed, password)
            return
        except (VerificationError, InvalidHashError):
            pass
    set_password(hub, user, password)


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: who, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str
    cookie: str  # the raw cookie value (only its hash is stored)

    def check_csrf(self, submitted: str | None) -> None:
        if not submitted or not hmac.compare_digest(submitted.encode(), self.csrf.encode()):
            raise CsrfError("This form has expired or did not come from this hub: reload the page and try again")


class CsrfError(PermissionDeniedError):
    """A form posted without its session's CSRF token."""


def check_form_token(expected: str | None, submitted: str | None) -> None:
    """The double-submit check of forms posted before there is a session (sign-in, sign-up):
    the hidden field must equal the cookie set with the form."""
    if not expected or not submitted or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfError("This form has expired or did not come from this hub: reload the page and try again")


def open_session(hub: Hub, account: Account, via: str) -> WebSession:
    """A session for someone another way vouched for (``services/oidc.py``)."""
    return _open(hub, account, details={"via": via})


def _open(hub: Hub, account: Account, action: str = "user.sign_in",
          details: dict[str, str] | None = None) -> WebSession:
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = utcnow()
    principal = principal_for(hub, account)
    with hub.db.write() as conn:
        sessions_q.remove_expired(conn, now)
        sessions_q.add(conn, hash_token(cookie), account.id, csrf, now,
                       now + timedelta(seconds=hub.settings.session_lifetime))
        record(conn, action, account.id, principal, f"user:{account.name}", details)
    return WebSession(principal, csrf, cookie)


def _failed_sign_in(hub: Hub, name: str, account: Account | None) -> AuthenticationError:
    with hub.db.write() as conn:
        record(conn, "user.sign_in_failed", account.id if account is not None else None, None,
               f"user:{name[:96]}", actor_name="anonymous")
    return AuthenticationError(SIGN_IN_FAILED)


def principal_for(hub: Hub, account: Account) -> Principal:
    """A session's principal: the account with a write role, its orgs loaded when asked."""

    def load_orgs() -> dict[int, tuple[str, str]]:
        with hub.db.read() as conn:
            return accounts_q.org_roles(conn, account.id)

    def load_groups() -> dict[int, tuple[int, str]]:
        with hub.db.read() as conn:
            return groups_q.roles_of(conn, account.id)

    return Principal(account_id=account.id, name=account.name, fullname=account.fullname, email=account.email,
                     is_admin=account.is_admin, token_name="web session", token_role="write",
                     load_orgs=load_orgs, load_groups=load_groups)


def sign_in(hub: Hub, name: str, password: str) -> WebSession:
    """A new session for the user, or AuthenticationError (the same for an unknown user and a
    wrong password, after the same work)."""
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, name) if name and len(name) <= 96 else None
        hashed = sessions_q.password_hash(conn, account.id) if account is not None else None
    try:
        _hasher().verify(hashed or _dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        raise _failed_sign_in(hub, name, account) from None
    if account is None or hashed is None or account.kind != "user":
        raise _failed_sign_in(hub, name, account)
    if _hasher().check_needs_rehash(hashed):
        with hub.db.write() as conn:
            sessions_q.set_password_hash(conn, account.id, _hasher().hash(password))
    return _open(hub, account)


def change_password(hub: Hub, session: WebSession, current: str, new: str) -> WebSession:
    """Set a new password, given the current one: every session of the user ends (on every
    device), and a new one opens for this browser."""
    with hub.db.read() as conn:
        account = accounts_q.by_id(conn, session.principal.account_id)
        hashed = sessions_q.password_hash(conn, account.id) if account is not None else None
    try:
        _hasher().verify(hashed or _dummy_hash(), current[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("The current password is wrong") from None
    if account is None or hashed is None:
        raise AuthenticationError("The current password is wrong")
    set_password(hub, account.name, new)
    return _open(hub, account, "user.password_changed")


def check_signup_open(hub: Hub) -> None:
    if not hub.settings.allow_signup:
        raise NotFoundError("Sign-up is not open on this hub: ask an administrator for an account")


def sign_up(hub: Hub, name: str, password: str, email: str | None = None) -> WebSession:
    check_signup_open(hub)
    check_password_rules(password)
    account = create_user(hub, name, "", email or None, actor_name="sign-up")
    set_password(hub, account.name, password)
    return _open(hub, account)


def session_of(hub: Hub, cookie: str | None) -> WebSession | None:
    """The live session a cookie stands for, or None (unknown, expired, or signed out)."""
    if not cookie or len(cookie) > 128:
        return None
    with hub.db.read() as conn:
        found = sessions_q.with_account(conn, hash_token(cookie))
    if found is None or found[0].expires_at <= utcnow():
        return None
    session, account = found
    return WebSession(principal_for(hub, account), session.csrf, cookie)


def sign_out(hub: Hub, session: WebSession) -> None:
    with hub.db.write() as conn:
        sessions_q.remove(conn, hash_token(session.cookie))


# -- the settings pages' tokens ------------------------------------------------------------------


def list_tokens(hub: Hub, session: WebSession) -> list[accounts_q.Token]:
    with hub.db.read() as conn:
        return accounts_q.tokens_of(conn, session.principal.account_id)


def new_token(hub: Hub, session: WebSession, name: str, role: str) -> str:
    """A new access token of the signed-in user; its value is shown once."""
    name = name.strip()
    if not 1 <= len(name) <= TOKEN_NAME_LIMIT or not name.isprintable():
        raise InvalidInputError(f"A token name has 1 to {TOKEN_NAME_LIMIT} printable characters")
    with hub.db.read() as conn:
        if any(t.name == name for t in accounts_q.tokens_of(conn, session.principal.account_id)):
            raise InvalidInputError(f"You already have a token named {name!r}")
    return create_token(hub, session.principal.name, name, role, actor=session.principal)


def revoke_token(hub: Hub, session: WebSession, name: str) -> None:
    if revoke_tokens(hub, session.principal.name, name, actor=session.principal) == 0:
        raise NotFoundError(f"You have no token named {name!r}")
