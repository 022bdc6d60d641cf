"""Identity and access: who is calling, and what they may read or write.

A token is ``read`` or ``write`` for everything its user may reach, or **fine-grained**: a list of
scopes, each an entity (one repo ``model:ns/name``, a namespace ``ns``, or every repo: global)
with permissions (``repo.content.read``, ``repo.write``, ``discussion.write``, and, global only,
``webhooks.write``), and optionally an expiry date. A fine-grained token does what its user may
do *and* its scopes allow: outside them it reads public repos like an anonymous caller and
nothing else (not even gated repos its user was granted), and writes nothing. Every access
check below goes through ``scope_allows``, so every route (and every signed URL or Xet token,
re-checked at each use) applies the scopes."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import groups as groups_q
from modelyard.catalog.repos import RepoHead
from modelyard.catalog.visibility import EVERYTHING, PUBLIC, Visibility
from modelyard.errors import AuthenticationError, InvalidInputError, PermissionDeniedError, RepoNotFoundError
from modelyard.services.hub import Hub

TOKEN_PREFIX = "hf_"
#: A provisioned token value must be at least this long and use this many distinct characters.
MIN_TOKEN_LENGTH = 32
MIN_TOKEN_DISTINCT = 10

READ, WRITE, DISCUSS, WEBHOOKS = "repo.content.read", "repo.write", "discussion.write", "webhooks.write"
#: What each permission grants beyond itself.
IMPLIES = {WRITE: frozenset({WRITE, READ, DISCUSS}), DISCUSS: frozenset({DISCUSS, READ}), READ: frozenset({READ}),
           WEBHOOKS: frozenset({WEBHOOKS})}
REPO_TYPES = ("model", "dataset", "space")
MAX_SCOPES = 100
FINE = "fine"  # the stored role of a fine-grained token
FINE_GRAINED = "fineGrained"  # its role as whoami-v2 reports it


@dataclass(frozen=True)
class Scope:
    """One entry of a fine-grained token: ``kind`` repo (``name`` "model:ns/name", lower-case),
    namespace (``name`` "ns") or global, and what it allows there."""

    kind: str
    name: str
    permissions: frozenset[str]

    def covers(self, repo: RepoHead) -> bool:
        if self.kind == "global":
            return True
        if self.kind == "namespace":
            return self.name == repo.namespace.lower()
        return self.name == f"{repo.type}:{repo.namespace}/{repo.name}".lower()


def parse_scopes(scoped: Any, global_permissions: Any) -> tuple[Scope, ...]:
    """Scopes from the whoami-v2 shape: ``scoped`` a list of ``{"entity": {"type": "model" |
    "dataset" | "space" | "user" | "org", "name": ...}, "permissions": [...]}``, ``global`` a list of
    permissions. Refuses unknown permissions, entities or shapes with a 400."""
    if not isinstance(scoped, list) or not isinstance(global_permissions, list) or len(scoped) > MAX_SCOPES:
        raise InvalidInputError(f"'scoped' and 'global' must be lists (at most {MAX_SCOPES} scopes)")
    out: list[Scope] = []

    def permissions(value: Any, allowed: frozenset[str]) -> frozenset[str]:
        if not isinstance(value, list) or not value or not all(isinstance(p, str) and p in allowed for p in value):
            raise InvalidInputError(f"Permissions must be a non-empty list of: {', '.join(sorted(allowed))}")
        return frozenset(value)

    repo_permissions = frozenset({READ, WRITE, DISCUSS})
    for item in scoped:
        entity = item.get("entity") if isinstance(item, dict) else None
        kind = entity.get("type") if isinstance(entity, dict) else None
        name = entity.get("name") if isinstance(entity, dict) else None
        if not isinstance(name, str) or not name or len(name) > 200:
            raise InvalidInputError("Every scope needs an entity with a type and a name")
        if kind in REPO_TYPES:
            if name.count("/") != 1:
                raise InvalidInputError(f"A repo scope names 'namespace/name', not {name!r}")
            out.append(Scope("repo", f"{kind}:{name}".lower(), permissions(item.get("permissions"), repo_permissions)))
        elif kind in ("user", "org"):
            out.append(Scope("namespace", name.lower(), permissions(item.get("permissions"), repo_permissions)))
        else:
            raise InvalidInputError(f"Unknown scope entity type {kind!r}: model, dataset, space, user or org")
    if global_permissions:
        out.append(Scope("global", "", permissions(global_permissions, repo_permissions | {WEBHOOKS})))
    if not out:
        raise InvalidInputError("A fine-grained token needs at least one scope")
    return tuple(out)


def scopes_json(scopes: tuple[Scope, ...]) -> str:
    return json.dumps([[s.kind, s.name, sorted(s.permissions)] for s in scopes])


def scopes_from_json(raw: str | None) -> tuple[Scope, ...] | None:
    if raw is None:
        return None
    return tuple(Scope(kind, name, frozenset(perms)) for kind, name, perms in json.loads(raw))


def whoami_scopes(scopes: tuple[Scope, ...]) -> dict[str, Any]:
    """``auth.accessToken.fineGrained`` as whoami-v2 reports it."""
    scoped = []
    for s in scopes:
        if s.kind == "repo":
            kind, name = s.name.split(":", 1)
            scoped.append({"entity": {"type": kind, "name": name}, "permissions": sorted(s.permissions)})
        elif s.kind == "namespace":
            scoped.append({"entity": {"type": "namespace", "name": s.name}, "permissions": sorted(s.permissions)})
    glob = next((sorted(s.permissions) for s in scopes if s.kind == "global"), [])
    return {"scoped": scoped, "global": glob, "canReadGatedRepos": any(READ in granted(s) for s in scopes)}


def granted(scope: Scope) -> frozenset[str]:
    """Every permission a scope gives (``repo.write`` gives reading and discussing too)."""
    return frozenset().union(*(IMPLIES[p] for p in scope.permissions))


def scope_allows(principal: Principal | None, repo: RepoHead, permission: str) -> bool:
    """Whether the caller's token allows ``permission`` on ``repo`` (always, but for a
    fine-grained token outside its scopes)."""
    if principal is None or principal.scopes is None:
        return True
    return any(s.covers(repo) and permission in granted(s) for s in principal.scopes)


def global_allows(principal: Principal, permission: str) -> bool:
    if principal.scopes is None:
        return True
    return any(s.kind == "global" and permission in granted(s) for s in principal.scopes)


def namespace_allows(principal: Principal, namespace: str, permission: str) -> bool:
    """A fine-grained token may create repos in a namespace its scopes name (or globally)."""
    if principal.scopes is None:
        return True
    return any(s.kind in ("global", "namespace") and (s.kind == "global" or s.name == namespace.lower())
               and permission in granted(s) for s in principal.scopes)


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
    scopes: tuple[Scope, ...] | None = None  # a fine-grained token's (None: read or write everywhere)
    token_expires_at: datetime | None = None
    #: Loads ``org id -> (name, role)`` when first needed: most reads (public repos) never ask.
    load_orgs: Callable[[], dict[int, tuple[str, str]]] = field(default=dict, repr=False, compare=False)
    #: Loads ``resource group id -> (org id, role)`` when first needed (a repo in a group).
    load_groups: Callable[[], dict[int, tuple[int, str]]] = field(default=dict, repr=False, compare=False)

    @cached_property
    def orgs(self) -> dict[int, tuple[str, str]]:
        return self.load_orgs()

    @cached_property
    def groups(self) -> dict[int, tuple[int, str]]:
        return self.load_groups()

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
    check_not_expired(row)

    def load_orgs() -> dict[int, tuple[str, str]]:
        return hub.db.quick(lambda conn: accounts_q.org_roles(conn, account.id))

    def load_groups() -> dict[int, tuple[int, str]]:
        return hub.db.quick(lambda conn: groups_q.roles_of(conn, account.id))

    hub.tallies.touch_token(row.id)  # folded later: a read never waits for the write lock
    return principal_of(row, account, load_orgs, load_groups)


def check_not_expired(row: accounts_q.Token) -> None:
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC).replace(tzinfo=None):
        raise AuthenticationError(f"This token expired on {row.expires_at.isoformat(timespec='seconds')}Z")


def principal_of(
    row: accounts_q.Token, account: accounts_q.Account, load_orgs: Callable[[], dict[int, tuple[str, str]]],
    load_groups: Callable[[], dict[int, tuple[int, str]]],
) -> Principal:
    fine = row.role == FINE
    return Principal(
        account_id=account.id,
        name=account.name,
        fullname=account.fullname,
        email=account.email,
        is_admin=account.is_admin,
        token_name=row.name,
        token_role=FINE_GRAINED if fine else row.role,
        token_created_at=row.created_at,
        token_id=row.id,
        load_orgs=load_orgs,
        load_groups=load_groups,
        scopes=scopes_from_json(row.scopes) if fine else None,
        token_expires_at=row.expires_at,
    )


def repo_role(principal: Principal, repo: RepoHead) -> str | None:
    """The caller's role on a repo, whatever the token (read | write | admin, None: none).

    Outside resource groups, the caller's role in the owning namespace. A repo in a resource
    group is the group's: the org's admins are its admins, and other members have the role the
    group gives them (none if not in it); a group ``contributor`` writes the repos it created and
    reads the others."""
    if principal.is_admin:
        return "admin"
    org_role = principal.org_role(repo.owner_id)
    if repo.resource_group_id is None or org_role in (None, "admin"):
        return org_role
    entry = principal.groups.get(repo.resource_group_id)
    if entry is None:
        return None
    if entry[1] == "contributor":
        return "write" if repo.creator_id == principal.account_id else "read"
    return entry[1]


def can_read(principal: Principal | None, repo: RepoHead) -> bool:
    if not repo.private:
        return True
    if principal is None or not scope_allows(principal, repo, READ):
        return False
    return repo_role(principal, repo) is not None


def outside_scopes(principal: Principal | None, repo: RepoHead) -> bool:
    """A fine-grained token on a repo its scopes do not name: it acts as an anonymous caller."""
    return principal is not None and not scope_allows(principal, repo, READ)


#: The one message for a repo that does not exist and for one the caller may not see: it names
#: nothing, so neither the answer nor its wording tells the two apart (nor the real spelling).
REPO_NOT_FOUND = "Repository Not Found"


def visibility(principal: Principal | None) -> Visibility:
    """Which private repos the caller may see (public ones are visible to everyone): what SQL
    filters by, so that listings match ``can_read``."""
    if principal is None:
        return PUBLIC
    if principal.is_admin and (principal.scopes is None or global_allows(principal, READ)):
        return EVERYTHING
    mine = {principal.account_id: principal.name, **{i: n for i, (n, _r) in principal.orgs.items()}}
    if principal.scopes is not None and not global_allows(principal, READ):
        # Listings show a fine-grained token the private repos of the namespaces it names
        # (repos it names one by one are read directly, not listed).
        named = {s.name for s in principal.scopes if s.kind == "namespace" and READ in granted(s)}
        mine = {i: n for i, n in mine.items() if n.lower() in named}
        if principal.is_admin:
            return Visibility(owners=frozenset(mine))
    owners = {i for i in mine if principal.org_role(i) == "admin"}
    ungrouped = frozenset(set(mine) - owners)
    # Groups matter only in orgs the caller does not administer: without such orgs, no query.
    groups = frozenset(g for g, (org, _r) in principal.groups.items() if org in ungrouped) if ungrouped else frozenset()
    return Visibility(owners=frozenset(owners), ungrouped=ungrouped, groups=groups)


def check_read(principal: Principal | None, repo: RepoHead) -> None:
    """A repo the caller may not read is answered exactly like a missing one."""
    if not can_read(principal, repo):
        raise RepoNotFoundError(REPO_NOT_FOUND)


def _check_write_role(principal: Principal) -> None:
    if principal.token_role not in ("write", FINE_GRAINED):
        raise PermissionDeniedError("This operation needs a token with the write role; yours is read-only")


def check_namespace_write(principal: Principal | None, owner_id: int, namespace: str,
                          group_id: int | None = None) -> None:
    """Creating a repo in a namespace (the caller's role there), or in one of its resource
    groups (``group_id``: a contributor, writer or admin of the group, or an org admin); a
    fine-grained token's scopes must name the namespace, or be global, with ``repo.write``."""
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    _check_write_role(principal)
    if not namespace_allows(principal, namespace, WRITE):
        raise PermissionDeniedError(f"This token's scopes do not allow writing in {namespace!r}")
    if principal.is_admin:
        return
    role = principal.org_role(owner_id)
    if group_id is not None and role != "admin":
        entry = principal.groups.get(group_id)
        if entry is None or entry[1] not in ("contributor", "write", "admin"):
            raise PermissionDeniedError("You need the contributor, write or admin role in the resource group")
    elif role not in ("write", "admin"):
        raise PermissionDeniedError(f"You don't have write access to the namespace {namespace!r}")


def require_writer(hub: Hub, principal: Principal | None, permission: str | None = None) -> Principal:
    """An authenticated caller with a write token (before reading the body of a write request).
    With ``permission``, for what is not a repo's (webhooks, profile, organizations,
    collections), a fine-grained token needs it globally; without, the repo's own check follows."""
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    _check_write_role(principal)
    if permission is not None and not global_allows(principal, permission):
        raise PermissionDeniedError(f"This token's scopes do not include {permission} for everything")
    return principal


def check_write(principal: Principal | None, repo: RepoHead) -> None:
    check_read(principal, repo)
    _not_a_mirror(repo)
    _check_write_rights_of_reader(principal, repo)


def _not_a_mirror(repo: RepoHead) -> None:
    """A mirror's content comes from its upstream only (services/mirror.py): a change made here
    would be lost at the next sync, or stop it."""
    if repo.upstream is not None:
        raise PermissionDeniedError(f"{repo.namespace}/{repo.name} mirrors {repo.upstream}: it is read-only here; "
                                    "change it upstream")


def _check_write_rights(principal: Principal | None, repo: RepoHead) -> None:
    check_read(principal, repo)
    _check_write_rights_of_reader(principal, repo)


def _check_write_rights_of_reader(principal: Principal | None, repo: RepoHead) -> None:
    assert principal is not None or not repo.private
    if principal is None:
        raise AuthenticationError("Authentication required: pass a write token")
    _check_write_role(principal)
    if not scope_allows(principal, repo, WRITE):
        raise PermissionDeniedError(f"This token's scopes do not allow writing to {repo.namespace}/{repo.name}")
    if repo_role(principal, repo) not in ("write", "admin"):
        raise PermissionDeniedError(f"You don't have write access to {repo.namespace}/{repo.name}")


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
    _not_a_mirror(repo)
    _check_write_role(principal)
    if not scope_allows(principal, repo, DISCUSS):
        raise PermissionDeniedError(f"This token's scopes do not allow discussing {repo.namespace}/{repo.name}")
    return principal


def check_admin(principal: Principal | None, repo: RepoHead) -> None:
    """Deleting, moving and changing visibility need the admin role in the namespace (of a
    mirror too: its admins decide who sees it here, and may delete it)."""
    _check_write_rights(principal, repo)
    assert principal is not None
    if repo_role(principal, repo) != "admin":
        where = "its resource group" if repo.resource_group_id is not None else repr(repo.namespace)
        raise PermissionDeniedError(f"You need the admin role in {where} to do this")


def principal_for(hub: Hub, user: str) -> Principal:
    """Act as ``user`` with write rights (operator commands such as ``import``)."""
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None or account.kind != "user":
            from modelyard.errors import NotFoundError

            raise NotFoundError(f"No user named {user!r}")
        orgs = accounts_q.org_roles(conn, account.id)
        groups = groups_q.roles_of(conn, account.id)
    return Principal(account.id, account.name, account.fullname, account.email, account.is_admin,
                     "cli", "write", None, load_orgs=lambda: orgs, load_groups=lambda: groups)
