"""Resource groups: within an organization, a set of repos with members and roles of its own,
so that teams sharing one org each see only their own private repos (as on the Hub).

A repo belongs to at most one group. The org's admins administer every group and every repo in
it; other org members reach a group's repos only through the role the group gives them:
``read``; ``contributor`` (create repos in the group, write those they created, read the rest);
``write``; ``admin`` (write, administer the group's repos, and manage the group's members and
which repos are in it). A public repo in a group stays readable by everyone; its writers are the
group's. Only org members can be in a group, and leaving the org leaves its groups. The access
rules themselves are ``services.auth.repo_role`` and ``services.auth.visibility``; this module
keeps the groups and who is in them, and answers the API (``/api/organizations/{org}/resource-groups``,
``/api/{type}s/{id}/resource-group``, ``create_repo(resource_group_id=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import groups as groups_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog.accounts import Account
from modelyard.catalog.groups import Group, GroupMember
from modelyard.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services.audit import record, repo_subject
from modelyard.services.auth import READ, REPO_TYPES, WRITE, Principal, check_admin, global_allows, require_writer
from modelyard.services.hub import Hub, utcnow
from modelyard.services.settings import check_org_admin

ROLES = ("read", "contributor", "write", "admin")
NAME_LIMIT = 96
DESCRIPTION_LIMIT = 1000
MAX_USERS_PER_CALL = 500


@dataclass(frozen=True)
class GroupView:
    group: Group
    org: Account
    users: list[GroupMember]
    repos: list[tuple[str, str, str, bool]]  # (type, namespace, name, private)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("A resource group needs a 'name'")
    name = value.strip()
    if len(name) > NAME_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInputError(f"A resource group's name is at most {NAME_LIMIT} printable characters")
    return name


def _description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > DESCRIPTION_LIMIT:
        raise InvalidInputError(f"'description' must be a string of at most {DESCRIPTION_LIMIT} characters")
    return value


def _role(value: object) -> str:
    if value not in ROLES:
        raise InvalidInputError(f"Invalid role {value!r}: expected one of {', '.join(ROLES)}")
    return str(value)


def _org(conn: Connection, principal: Principal, name: str) -> Account:
    """The org, to one of its members (or a site admin); to anyone else it does not exist."""
    org = accounts_q.by_name(conn, name)
    if org is None or org.kind != "org" or not (principal.is_admin or org.id in principal.orgs):
        raise NotFoundError(f"No organization named {name!r}")
    return org


def _group(conn: Connection, principal: Principal, org: Account, uid: str) -> Group:
    """A group of ``org`` the caller may see: every group to the org's admins, their own to members."""
    group = groups_q.by_uid(conn, uid) if isinstance(uid, str) else None
    if group is None or group.org_id != org.id or not _sees(principal, org, group):
        raise NotFoundError(f"No resource group {uid!r} in {org.name!r}")
    return group


def _sees(principal: Principal, org: Account, group: Group) -> bool:
    return principal.is_admin or principal.org_role(org.id) == "admin" or group.id in principal.groups


def _administers(principal: Principal, org: Account, group: Group) -> bool:
    return (principal.is_admin or principal.org_role(org.id) == "admin"
            or principal.groups.get(group.id, (0, ""))[1] == "admin")


def _check_group_admin(principal: Principal, org: Account, group: Group) -> None:
    if not global_allows(principal, WRITE):
        raise PermissionDeniedError("Fine-grained tokens without global repo.write do not manage resource groups")
    if not _administers(principal, org, group):
        raise PermissionDeniedError(f"You need the admin role in the resource group {group.name!r} to do this")


def _reader(principal: Principal | None) -> Principal:
    if principal is None:
        raise AuthenticationError("Authentication required to see resource groups")
    if not global_allows(principal, READ):
        raise PermissionDeniedError("Fine-grained tokens without global repo.content.read do not list resource groups")
    return principal


def _view(conn: Connection, org: Account, group: Group) -> GroupView:
    return GroupView(group, org, groups_q.group_members(conn, group.id), groups_q.repos_of(conn, group.id))


def list_groups(hub: Hub, principal: Principal | None, org_name: str) -> list[GroupView]:
    """The org's groups the caller may see."""
    user = _reader(principal)
    with hub.db.read() as conn:
        org = _org(conn, user, org_name)
        return [_view(conn, org, g) for g in groups_q.of_org(conn, org.id) if _sees(user, org, g)]


def get_group(hub: Hub, principal: Principal | None, org_name: str, uid: str) -> GroupView:
    user = _reader(principal)
    with hub.db.read() as conn:
        org = _org(conn, user, org_name)
        return _view(conn, org, _group(conn, user, org, uid))


def _add_users(conn: Connection, user: Principal, org: Account, group: Group, users: object) -> None:
    """Give each ``{"user": name, "role": role}`` its role in the group; all or nothing."""
    if not isinstance(users, list) or len(users) > MAX_USERS_PER_CALL:
        raise InvalidInputError(f"'users' must be a list of at most {MAX_USERS_PER_CALL} {{user, role}} objects")
    wanted: list[tuple[Account, str]] = []
    for entry in users:
        if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
            raise InvalidInputError("Each entry of 'users' must be an object with 'user' and 'role'")
        role = _role(entry.get("role"))
        account = accounts_q.by_name(conn, entry["user"])
        if account is None or account.kind != "user":
            raise NotFoundError(f"No user named {entry['user']!r}")
        if accounts_q.org_roles(conn, account.id).get(org.id) is None:
            raise InvalidInputError(f"{account.name} is not a member of {org.name}: only its members join its groups")
        wanted.append((account, role))
    for account, role in wanted:
        was = groups_q.role(conn, group.id, account.id)
        groups_q.set_role(conn, group.id, account.id, role)
        record(conn, "resource_group.member_role_set", org.id, user, f"user:{account.name}",
               {"group": group.uid, "groupName": group.name, "role": role, "was": was})


def create_group(hub: Hub, principal: Principal | None, org_name: str, body: dict[str, Any]) -> GroupView:
    """A new group (the org's admins), with its first members and repos if given."""
    user = require_writer(hub, principal, WRITE)
    name = _name(body.get("name"))
    description = _description(body.get("description"))
    with hub.db.write() as conn:
        org = _org(conn, user, org_name)
        check_org_admin(user, org)
        accounts_q.lock(conn, org.id)  # two creations of one name: the second sees the first
        if groups_q.by_name(conn, org.id, name) is not None:
            raise ConflictError(f"{org.name} already has a resource group named {name!r}")
        group = groups_q.create(conn, org.id, name, description, utcnow())
        record(conn, "resource_group.created", org.id, user, f"resource_group:{group.uid}", {"name": name})
        if body.get("users") is not None:
            _add_users(conn, user, org, group, body["users"])
        for entry in _repo_list(body.get("repos")):
            _set_repo_group(conn, user, entry[0], entry[1], group)
        return _view(conn, org, group)


def _repo_list(value: object) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and e.get("type", "model") in REPO_TYPES
        for e in value
    ):
        raise InvalidInputError("'repos' must be a list of {type, name} objects")
    return [(str(e.get("type", "model")), str(e["name"])) for e in value]


def update_group(hub: Hub, principal: Principal | None, org_name: str, uid: str, body: dict[str, Any]) -> GroupView:
    user = require_writer(hub, principal, WRITE)
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = _name(body["name"])
    if "description" in body:
        values["description"] = _description(body["description"])
    if not values:
        raise InvalidInputError("Nothing to update: pass 'name' or 'description'")
    with hub.db.write() as conn:
        org = _org(conn, user, org_name)
        group = _group(conn, user, org, uid)
        _check_group_admin(user, org, group)
        accounts_q.lock(conn, org.id)
        clash = groups_q.by_name(conn, org.id, values.get("name", group.name))
        if clash is not None and clash.id != group.id:
            raise ConflictError(f"{org.name} already has a resource group named {values['name']!r}")
        groups_q.update_group(conn, group.id, **values)
        record(conn, "resource_group.updated", org.id, user, f"resource_group:{group.uid}", values)
        found = groups_q.by_id(conn, group.id)
        assert found is not None
        return _view(conn, org, found)


def delete_group(hub: Hub, principal: Principal | None, org_name: str, uid: str) -> None:
    """Delete an empty group (the org's admins): one with repos is refused, since its private
    repos would otherwise open to the whole org."""
    user = require_writer(hub, principal, WRITE)
    with hub.db.write() as conn:
        org = _org(conn, user, org_name)
        group = _group(conn, user, org, uid)
        check_org_admin(user, org)
        count = groups_q.count_repos(conn, group.id)
        if count:
            raise ConflictError(f"The resource group {group.name!r} still holds {count} repo(s): move them out first")
        groups_q.delete_group(conn, group.id)
        record(conn, "resource_group.deleted", org.id, user, f"resource_group:{group.uid}", {"name": group.name})


def add_users(hub: Hub, principal: Principal | None, org_name: str, uid: str, users: object) -> GroupView:
    user = require_writer(hub, principal, WRITE)
    with hub.db.write() as conn:
        org = _org(conn, user, org_name)
        group = _group(conn, user, org, uid)
        _check_group_admin(user, org, group)
        _add_users(conn, user, org, group, users)
        return _view(conn, org, group)


def set_user_role(hub: Hub, principal: Principal | None, org_name: str, uid: str, member: str,
                  role: object) -> GroupView:
    return add_users(hub, principal, org_name, uid, [{"user": member, "role": role}])


def remove_user(hub: Hub, principal: Principal | None, org_name: str, uid: str, member: str) -> None:
    """Take a member out of the group (its admins), or leave it (the member themself)."""
    user = require_writer(hub, principal, WRITE)
    with hub.db.write() as conn:
        org = _org(conn, user, org_name)
        group = _group(conn, user, org, uid)
        account = accounts_q.by_name(conn, member)
        if account is None or account.id != user.account_id:
            _check_group_admin(user, org, group)
        was = None if account is None else groups_q.role(conn, group.id, account.id)
        if account is None or was is None:
            raise NotFoundError(f"{member!r} is not in the resource group {group.name!r}")
        groups_q.remove(conn, group.id, account.id)
        record(conn, "resource_group.member_removed", org.id, user, f"user:{account.name}",
               {"group": group.uid, "groupName": group.name, "role": was})


def _set_repo_group(conn: Connection, user: Principal, repo_type: str, repo_id: str, group: Group | None) -> None:
    """Who administers the repo where it is, and administers the group it goes to (any org admin
    for both), moves it; a group's repos are the org's own."""
    from modelyard.services.repos import find_repo

    repo = find_repo(conn, user, repo_type, repo_id)
    check_admin(user, repo)
    if group is not None:
        org = accounts_q.by_id(conn, group.org_id)
        assert org is not None
        if repo.owner_id != group.org_id:
            raise InvalidInputError(f"{repo.repo_id} is not a repo of {org.name}: a group holds its org's repos only")
        _check_group_admin(user, org, group)
    new_id = None if group is None else group.id
    if repo.resource_group_id == new_id:
        return
    repos_q.update_repo(conn, repo.id, resource_group_id=new_id)
    record(conn, "repo.resource_group_changed", repo.owner_id, user, repo_subject(repo_type, repo.repo_id),
           {"from": _uid(conn, repo.resource_group_id), "to": None if group is None else group.uid})


def _uid(conn: Connection, group_id: int | None) -> str | None:
    found = None if group_id is None else groups_q.by_id(conn, group_id)
    return None if found is None else found.uid


def move_repo(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, uid: object
) -> dict[str, Any] | None:
    """Put a repo in a group (``uid``), or take it out of any (None); the group it is in after."""
    user = require_writer(hub, principal, WRITE)
    if uid is not None and not isinstance(uid, str):
        raise InvalidInputError("'resourceGroupId' must be a resource group's id or null")
    with hub.db.write() as conn:
        group = None
        if uid is not None:
            group = groups_q.by_uid(conn, uid)
            org = None if group is None else accounts_q.by_id(conn, group.org_id)
            if group is None or org is None or not _sees(user, org, group):
                raise NotFoundError(f"No resource group {uid!r}")
        _set_repo_group(conn, user, repo_type, repo_id, group)
        return None if group is None else summary(conn, group.id)


def group_for_create(conn: Connection, principal: Principal, owner: Account, uid: object) -> int | None:
    """The group a new repo is created in (``create_repo(resource_group_id=...)``): one of the
    owner org's that the caller can see (whether they may create in it: ``check_namespace_write``)."""
    if uid is None:
        return None
    group = groups_q.by_uid(conn, uid) if isinstance(uid, str) else None
    if group is None or group.org_id != owner.id or not _sees(principal, owner, group):
        raise NotFoundError(f"No resource group {uid!r} in {owner.name!r}")
    return group.id


def summary(conn: Connection, group_id: int) -> dict[str, Any] | None:
    """A repo's ``resourceGroup`` as the Hub serves it in repo info: id, name, numUsers."""
    group = groups_q.by_id(conn, group_id)
    if group is None:
        return None
    return {"id": group.uid, "name": group.name, "numUsers": groups_q.member_counts(conn, [group.id]).get(group.id, 0)}


def repo_summary(hub: Hub, group_id: int | None) -> dict[str, Any] | None:
    if group_id is None:
        return None
    return hub.db.quick(lambda conn: summary(conn, group_id))
