"""Identity and access: who is calling, and what they may read or write."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog.repos import Repo
from modelyard.errors import AuthenticationError, PermissionDeniedError, RepoNotFoundError
from modelyard.services.hub import Hub, utcnow

TOKEN_PREFIX = "hf_"
_TOUCH_INTERVAL = 60.0
_last_touch: dict[int, float] = {}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the account, the token's role, and the orgs it belongs to."""

    account_id: int
    name: str
    fullname: str
    email: str | None
    is_admin: bool
    token_name: str
    token_role: str  # read | write
    token_created_at: object = None
    #: Loads ``org id -> (name, role)`` when first needed: most reads (public repos) never ask.
    load_orgs: Callable[[], dict[int, tuple[str, str]]] = field(default=dict, repr=False, compare=False)

    @cached_property
    def orgs(self) -> dict[int, tuple[str, str]]:
        return self.load_orgs()

    def org_role(self, account_id: int) -> str | None:
        if account_id == self.account_id:
            return "admin"
        entry = self.orgs.get(account_id)
        return None if entry is None else entry[1]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(26).replace("-", "a").replace("_", "b")[:34]


def authenticate(hub: Hub, token: str | None) -> Principal | None:
    """The principal a bearer token stands for; None for anonymous; raises for a bad token."""
    if not token:
        return None
    with hub.db.read() as conn:
        found = accounts_q.token_with_account(conn, hash_token(token))
    if found is None or found[0].revoked_at is not None:
        raise AuthenticationError("Invalid credentials in Authorization header")
    row, account = found

    def load_orgs() -> dict[int, tuple[str, str]]:
        with hub.db.read() as conn:
            return accounts_q.org_roles(conn, account.id)

    now = time.monotonic()
    if now - _last_touch.get(row.id, 0.0) > _TOUCH_INTERVAL:
        _last_touch[row.id] = now
        with hub.db.write() as conn:
            accounts_q.touch_token(conn, row.id, utcnow())
    return Principal(
        account_id=account.id,
        name=account.name,
        fullname=account.fullname,
        email=account.email,
        is_admin=account.is_admin,
        token_name=row.name,
        token_role=row.role,
        token_created_at=row.created_at,
        load_orgs=load_orgs,
    )


def can_read(principal: Principal | None, repo: Repo) -> bool:
    if not repo.private:
        return True
    if principal is None:
        return False
    return principal.is_admin or principal.org_role(repo.owner_id) is not None


def check_read(principal: Principal | None, repo: Repo) -> None:
    """A repo the caller may not read is answered exactly like a missing one."""
    if not can_read(principal, repo):
        raise RepoNotFoundError(f"Repository Not Found for url: {repo.type} {repo.repo_id}")


def check_namespace_write(principal: Principal | None, owner_id: int, namespace: str) -> None:
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    if principal.token_role != "write":
        raise PermissionDeniedError("This operation needs a token with the write role; yours is read-only")
    if principal.is_admin:
        return
    role = principal.org_role(owner_id)
    if role not in ("write", "admin"):
        raise PermissionDeniedError(f"You don't have write access to the namespace {namespace!r}")


def check_write(principal: Principal | None, repo: Repo) -> None:
    check_read(principal, repo)
    check_namespace_write(principal, repo.owner_id, repo.namespace)


def check_admin(principal: Principal | None, repo: Repo) -> None:
    """Deleting, moving and changing visibility need the admin role in the namespace."""
    check_write(principal, repo)
    assert principal is not None
    if not principal.is_admin and principal.org_role(repo.owner_id) != "admin":
        raise PermissionDeniedError(f"You need the admin role in {repo.namespace!r} to do this")


def principal_for(hub: Hub, user: str) -> Principal:
    """Act as ``user`` with write rights (operator commands such as ``import``)."""
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None or account.kind != "user":
            from modelyard.errors import NotFoundError

            raise NotFoundError(f"No user named {user!r}")
        orgs = accounts_q.org_roles(conn, account.id)
    return Principal(account.id, account.name, account.fullname, account.email, account.is_admin,
                     "cli", "write", None, lambda: orgs)
