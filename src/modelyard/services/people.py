"""People and organizations: overviews, members, follows, storage per repo, avatars.

Counts and listings show a viewer only what they may read: a user's or an org's private repos
count only for those who can read them (the account itself, the org's members, site admins),
and likes and discussions only on repos the viewer can read. Memberships are public, as on the
Hub's org pages; a member's role is shown only to the org's own members.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import people as people_q
from modelyard.catalog.accounts import Account
from modelyard.catalog.people import OwnedRepo, Person
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services.auth import READ, WRITE, Principal, global_allows, require_writer, visibility
from modelyard.services.hub import Hub, utcnow

__all__ = ["OwnedRepo", "Person"]  # re-exported for the http layer


class AccountNotFoundError(NotFoundError):
    """No user (or organization) of that name."""


@dataclass(frozen=True)
class Overview:
    """What ``get_user_overview`` and ``get_organization_overview`` read."""

    account: Account
    is_following: bool | None  # None for an anonymous caller
    repos: dict[str, int]  # type -> number the viewer may see
    followers: int
    following: int = 0
    likes: int = 0
    discussions: int = 0
    members: int = 0
    orgs: list[Account] = field(default_factory=list)


def _account(conn: Connection, name: str, kind: str) -> Account:
    found = accounts_q.by_name(conn, name)
    if found is None or found.kind != kind:
        what = "user" if kind == "user" else "organization"
        raise AccountNotFoundError(f"No {what} named {name!r}")
    return found


def _sees_private(principal: Principal | None, owner_id: int) -> bool:
    return principal is not None and global_allows(principal, READ) and (
        principal.is_admin or principal.org_role(owner_id) is not None)


def _following(conn: Connection, principal: Principal | None, account_id: int) -> bool | None:
    return None if principal is None else people_q.is_following(conn, principal.account_id, account_id)


def user_overview(hub: Hub, principal: Principal | None, name: str) -> Overview:
    """A user's profile with counts of what the viewer may see, and the user's orgs."""
    with hub.db.read() as conn:
        user = _account(conn, name, "user")
        visible = visibility(principal)
        orgs = [accounts_q.by_id(conn, org_id) for org_id, *_ in accounts_q.memberships(conn, user.id)]
        return Overview(
            account=user,
            is_following=_following(conn, principal, user.id),
            repos=people_q.repo_counts(conn, user.id, visible),
            followers=people_q.count_followers(conn, user.id),
            following=people_q.count_following(conn, user.id),
            likes=people_q.count_likes(conn, user.id, visible),
            discussions=people_q.count_discussions(conn, user.id, visible),
            orgs=[org for org in orgs if org is not None],
        )


def org_overview(hub: Hub, principal: Principal | None, name: str) -> Overview:
    """An organization's profile with counts of what the viewer may see."""
    with hub.db.read() as conn:
        org = _account(conn, name, "org")
        return Overview(
            account=org,
            is_following=_following(conn, principal, org.id),
            repos=people_q.repo_counts(conn, org.id, visibility(principal)),
            followers=people_q.count_followers(conn, org.id),
            members=people_q.count_members(conn, org.id),
        )


def members(hub: Hub, principal: Principal | None, org: str) -> list[Person]:
    """The org's members; their roles only for the org's own members (and site admins)."""
    with hub.db.read() as conn:
        found = _account(conn, org, "org")
        people = people_q.org_members(conn, found.id)
    if _sees_private(principal, found.id):
        return people
    return [replace(p, role=None) for p in people]


def followers(hub: Hub, principal: Principal | None, name: str, kind: str) -> list[Person]:
    """Who follows the user (``kind`` user) or the organization (``kind`` org)."""
    with hub.db.read() as conn:
        return people_q.followers(conn, _account(conn, name, kind).id)


def following(hub: Hub, principal: Principal | None, name: str) -> list[Person]:
    """The users a user follows."""
    with hub.db.read() as conn:
        return people_q.following(conn, _account(conn, name, "user").id)


def follow(hub: Hub, principal: Principal | None, name: str, kind: str, on: bool) -> None:
    """Follow (``on``) or unfollow a user or an organization; doing it twice changes nothing."""
    caller = require_writer(hub, principal, WRITE)
    with hub.db.write() as conn:
        target = _account(conn, name, kind)
        if target.id == caller.account_id:
            raise InvalidInputError("You cannot follow yourself")
        if on:
            people_q.follow(hub.db, conn, caller.account_id, target.id, utcnow())
        else:
            people_q.unfollow(conn, caller.account_id, target.id)


@dataclass(frozen=True)
class StoragePage:
    repos: list[OwnedRepo]
    total: int  # bytes used by all the namespace's repos
    more: bool


def repo_storage(hub: Hub, principal: Principal | None, namespace: str | None, offset: int,
                 size: int) -> StoragePage:
    """The repos of the caller (``namespace`` None) or of one of the caller's orgs, private ones
    included, with the storage each uses, largest first."""
    if principal is None:
        raise AuthenticationError("Authentication required to list your repositories")
    with hub.db.read() as conn:
        if namespace is None:
            owner_id = principal.account_id
        else:
            org = _account(conn, namespace, "org")
            if not global_allows(principal, READ) or (not principal.is_admin and principal.org_role(org.id) is None):
                raise PermissionDeniedError(f"Only members of {org.name!r} may list its repositories")
            owner_id = org.id
        rows, total = people_q.owned_repos(conn, owner_id, visibility(principal), offset, size + 1)
    return StoragePage(rows[:size], total, len(rows) > size)


# -- avatars -----------------------------------------------------------------------------------

_AVATAR_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")


def avatar_svg(name: str) -> bytes:
    """An identicon for ``name``: a mirrored 5x5 pattern in a colour, both from the name's hash.

    Made here from the name alone (no external service, no database), so every account, and
    every name, has the same picture everywhere; the SVG holds only shapes, never script or links.
    """
    if not _AVATAR_NAME.match(name):
        raise NotFoundError("No such avatar")
    digest = hashlib.sha256(name.lower().encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    color = f"hsl({hue},55%,50%)"
    cells = []
    bits = int.from_bytes(digest[2:6], "big")
    for row in range(5):
        for col in range(3):
            if bits >> (row * 3 + col) & 1:
                for x in {col, 4 - col}:
                    cells.append(f'<rect x="{x + 1}" y="{row + 1}" width="1" height="1"/>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 7 7" width="128" height="128" '
        'shape-rendering="crispEdges">'
        '<rect width="7" height="7" fill="#f0f0f0"/>'
        f'<g fill="{color}">{"".join(cells)}</g></svg>'
    ).encode()
