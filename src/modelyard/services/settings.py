"""What signed-in users change themselves: their profile and password, the organizations they
create, and (as an organization's admins) its profile and members' roles.

The settings pages and the API (``/api/settings/profile``, ``/api/organizations/...``) both call
these; every rule is here. An organization keeps at least one admin: the last one can neither be
demoted nor removed (nor leave).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import groups as groups_q
from modelyard.catalog import people as people_q
from modelyard.catalog.accounts import Account as Account  # re-exported for the http layer
from modelyard.catalog.people import Person
from modelyard.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services import accounts
from modelyard.services.accounts import ROLES
from modelyard.services.audit import record
from modelyard.services.auth import WRITE, Principal, global_allows, require_writer
from modelyard.services.hub import Hub

FULLNAME_LIMIT = 128
EMAIL_LIMIT = 254


def _fullname(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("A full name is required")
    value = value.strip()
    if len(value) > FULLNAME_LIMIT or not value.isprintable():
        raise InvalidInputError(f"A full name has at most {FULLNAME_LIMIT} printable characters")
    return value


def _email(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError("email must be a string")
    value = value.strip()
    local, at, domain = value.partition("@")
    if (not at or not local or "." not in domain or len(value) > EMAIL_LIMIT or not value.isprintable()
            or " " in value or domain.startswith(".") or domain.endswith(".")):
        raise InvalidInputError(f"{value!r} is not an email address")
    return value


def profile(hub: Hub, principal: Principal | None) -> Account:
    """The caller's own account."""
    if principal is None:
        raise AuthenticationError("Sign in to see your settings")
    with hub.db.read() as conn:
        found = accounts_q.by_id(conn, principal.account_id)
    if found is None:
        raise NotFoundError("Your account is gone")
    return found


def update_profile(hub: Hub, principal: Principal | None, fullname: object, email: object) -> Account:
    user = require_writer(hub, principal, WRITE)
    values = {"fullname": _fullname(fullname), "email": _email(email)}
    with hub.db.write() as conn:
        accounts_q.update_account(conn, user.account_id, **values)
        found = accounts_q.by_id(conn, user.account_id)
    assert found is not None
    return found


# -- organizations ---------------------------------------------------------------------------


def my_orgs(hub: Hub, principal: Principal | None) -> list[tuple[str, str, str]]:
    """``(name, fullname, role)`` of the caller's organizations."""
    if principal is None:
        raise AuthenticationError("Sign in to see your organizations")
    with hub.db.read() as conn:
        return [(name, full, role) for _id, name, full, role in accounts_q.memberships(conn, principal.account_id)]


@dataclass(frozen=True)
class OrgSettings:
    org: Account
    members: list[Person]  # with roles, admins first


def create_org(hub: Hub, principal: Principal | None, name: object, fullname: object) -> Account:
    """A new organization, its creator its first admin."""
    user = require_writer(hub, principal, WRITE)
    if not isinstance(name, str):
        raise InvalidInputError("name must be a string")
    full = _fullname(fullname) if fullname not in (None, "") else ""
    return accounts.create_org(hub, name, full, first_admin=user.account_id, actor=user)


def _org(conn: Connection, name: str, lock: bool = False) -> Account:
    found = accounts_q.by_name(conn, name)
    if found is None or found.kind != "org":
        raise NotFoundError(f"No organization named {name!r}")
    if lock:
        accounts_q.lock(conn, found.id)
    return found


def check_org_admin(principal: Principal, org: Account) -> None:
    if not global_allows(principal, WRITE):
        raise PermissionDeniedError("Fine-grained tokens without global repo.write do not manage organizations")
    if principal.is_admin or principal.orgs.get(org.id, ("", ""))[1] == "admin":
        return
    if org.id in principal.orgs:
        raise PermissionDeniedError(f"You need the admin role in {org.name!r} to do this")
    raise NotFoundError(f"No organization named {org.name!r}")  # outsiders learn nothing more


def org_settings(hub: Hub, principal: Principal | None, name: str) -> OrgSettings:
    """What an organization's settings page shows (its admins, and site admins, only)."""
    if principal is None:
        raise AuthenticationError("Sign in to see this page")
    with hub.db.read() as conn:
        org = _org(conn, name)
        check_org_admin(principal, org)
        people = people_q.org_members(conn, org.id)
    people.sort(key=lambda p: (p.role != "admin", p.name.lower()))
    return OrgSettings(org, people)


def update_org(hub: Hub, principal: Principal | None, name: str, fullname: object) -> Account:
    user = require_writer(hub, principal, WRITE)
    full = _fullname(fullname)
    with hub.db.write() as conn:
        org = _org(conn, name)
        check_org_admin(user, org)
        accounts_q.update_account(conn, org.id, fullname=full)
        found = accounts_q.by_id(conn, org.id)
    assert found is not None
    return found


def set_role(hub: Hub, principal: Principal | None, name: str, member: object, role: object) -> None:
    """Add a user to the organization with ``role``, or change a member's role."""
    user = require_writer(hub, principal, WRITE)
    if role not in ROLES:
        raise InvalidInputError(f"Invalid role {role!r}: expected read, write or admin")
    if not isinstance(member, str) or not member.strip():
        raise InvalidInputError("A user name is required")
    with hub.db.write() as conn:
        org = _org(conn, name, lock=True)
        check_org_admin(user, org)
        account = accounts_q.by_name(conn, member.strip())
        if account is None or account.kind != "user":
            raise NotFoundError(f"No user named {member.strip()!r}")
        roles = {p.id: p.role for p in people_q.org_members(conn, org.id)}
        if role != "admin" and roles.get(account.id) == "admin" and list(roles.values()).count("admin") == 1:
            raise ConflictError(f"{account.name} is the last admin of {org.name}: make someone else admin first")
        accounts_q.set_member(conn, org.id, account.id, str(role))
        record(conn, "org.member_role_set", org.id, user, f"user:{account.name}",
               {"role": str(role), "was": roles.get(account.id)})


def remove_member(hub: Hub, principal: Principal | None, name: str, member: str) -> None:
    """Take a member out (an admin), or leave (the member themself)."""
    user = require_writer(hub, principal, WRITE)
    with hub.db.write() as conn:
        org = _org(conn, name, lock=True)
        account = accounts_q.by_name(conn, member)
        if account is None or account.id != user.account_id:
            check_org_admin(user, org)
        roles = {p.id: p.role for p in people_q.org_members(conn, org.id)}
        if account is None or account.id not in roles:
            raise NotFoundError(f"{member!r} is not a member of {org.name}")
        if roles[account.id] == "admin" and list(roles.values()).count("admin") == 1:
            raise ConflictError(f"{account.name} is the last admin of {org.name}: make someone else admin first")
        accounts_q.remove_member(conn, org.id, account.id)
        groups_q.leave_org(conn, org.id, account.id)
        record(conn, "org.member_removed", org.id, user, f"user:{account.name}", {"role": roles[account.id]})
