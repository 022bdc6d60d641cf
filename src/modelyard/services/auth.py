"""Identity and access: who is calling, and what they may read or write."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog.repos import RepoHead
from modelyard.errors import AuthenticationError, InvalidInputError, PermissionDeniedError, RepoNotFoundError
from modelyard.services.hub import Hub

TOKEN_PREFIX = "hf_"
#: A provisioned token value must be at least this long and use this many distinct characters.
MIN_TOKEN_LENGTH = 32
MIN_TOKEN_DISTINCT = 10


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
    token_id: int = 0  # 0: not a stored token (operator commands)
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


def check_token_strength(value: str) -> None:
    """A provisioned token value must be as hard to guess as a generated one, near enough."""
    body = value[len(TOKEN_PREFIX):]
    if (
        not value.startswith(TOKEN_PREFIX)
        or len(value) < MIN_TOKEN_LENGTH
        or len(set(body)) < MIN_TOKEN_DISTINCT
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in body)
    ):
        raise InvalidInputError(
            f"A provisioned token must start with {TOKEN_PREFIX!r}, be at least {MIN_TOKEN_LENGTH} characters "
            f"of letters, digits, '_' and '-', with at least {MIN_TOKEN_DISTINCT} different ones"
        )


def authenticate(hub: Hub, token: str | None) -> Principal | None:
    """The principal a bearer token stands for; None for anonymous; raises for a bad token."""
    if not token:
        return None
    digest = hash_token(token)
    found = hub.db.quick(lambda conn: accounts_q.token_with_account(conn, digest))
    if found is None or found[0].revoked_at is not None:
        raise AuthenticationError("Invalid credentials in Authorization header")
    row, account = found

    def load_orgs() -> dict[int, tuple[str, str]]:
        return hub.db.quick(lambda conn: accounts_q.org_roles(conn, account.id))

    hub.tallies.touch_token(row.id)  # folded later: a read never waits for the write lock
    return principal_of(row, account, load_orgs)


def principal_of(
    row: accounts_q.Token, account: accounts_q.Account, load_orgs: Callable[[], dict[int, tuple[str, str]]]
) -> Principal:
    return Principal(
        account_id=account.id,
        name=account.name,
        fullname=account.fullname,
        email=account.email,
        is_admin=account.is_admin,
        token_name=row.name,
        token_role=row.role,
        token_created_at=row.created_at,
        token_id=row.id,
        load_orgs=load_orgs,
    )


def can_read(principal: Principal | None, repo: RepoHead) -> bool:
    if not repo.private:
        return True
    if principal is None:
        return False
    return principal.is_admin or principal.org_role(repo.owner_id) is not None


#: The one message for a repo that does not exist and for one the caller may not see: it names
#: nothing, so neither the answer nor its wording tells the two apart (nor the real spelling).
REPO_NOT_FOUND = "Repository Not Found"


def visible_owner_ids(principal: Principal | None) -> frozenset[int] | None:
    """Owners whose private repos the caller may see (None: every owner, for an admin); public
    repos are visible to everyone. What SQL filters by, so that listings match ``can_read``."""
    if principal is None:
        return frozenset()
    if principal.is_admin:
        return None
    return frozenset({principal.account_id, *principal.orgs})


def check_read(principal: Principal | None, repo: RepoHead) -> None:
    """A repo the caller may not read is answered exactly like a missing one."""
    if not can_read(principal, repo):
        raise RepoNotFoundError(REPO_NOT_FOUND)


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


def require_writer(hub: Hub, principal: Principal | None) -> Principal:
    """An authenticated caller with a write token (before reading the body of a write request)."""
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    if principal.token_role != "write":
        raise PermissionDeniedError("This operation needs a token with the write role; yours is read-only")
    return principal


def check_write(principal: Principal | None, repo: RepoHead) -> None:
    check_read(principal, repo)
    check_namespace_write(principal, repo.owner_id, repo.namespace)


def can_write(principal: Principal | None, repo: RepoHead) -> bool:
    """Whether the caller may write the repo (what ``check_write`` checks, as a question)."""
    try:
        check_write(principal, repo)
    except (RepoNotFoundError, AuthenticationError, PermissionDeniedError):
        return False
    return True


def check_contribute(principal: Principal | None, repo: RepoHead) -> Principal:
    """Anyone who may read a repo may contribute to it (open a discussion or a pull request,
    comment, upload the files of a pull request): an authenticated caller with a write token."""
    check_read(principal, repo)
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    if principal.token_role != "write":
        raise PermissionDeniedError("This operation needs a token with the write role; yours is read-only")
    return principal


def check_admin(principal: Principal | None, repo: RepoHead) -> None:
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
                     "cli", "write", None, load_orgs=lambda: orgs)
