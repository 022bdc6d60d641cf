"""Gated repositories: who may download their files, and the access requests that decide it.

On the Hub a gated repo's metadata (info, tree, refs, commits) stays visible to whoever may read
the repo; its *files* are served only to the owner's members and to users whose access request
was accepted (or who were granted access). Everyone else gets ``GatedRepo``: 401 when anonymous,
403 when authenticated. Requests are managed by the repo's writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from dulwich.objects import Blob, Commit
from sqlalchemy import Connection

from modelyard.catalog import access_requests as requests_q
from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog.access_requests import STATUSES
from modelyard.catalog.access_requests import AccessRequest as AccessRequest  # re-exported for the http layer
from modelyard.catalog.repos import Repo, RepoHead
from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from modelyard.ids import Oid
from modelyard.metadata.cards import parse_card
from modelyard.services.audit import record, repo_subject
from modelyard.services.auth import Principal, check_write, outside_scopes, repo_role
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import DEFAULT_BRANCH, find_repo
from modelyard.versioning.objects import commit_info
from modelyard.versioning.trees import lookup

#: The Hub's documented bound on a rejection reason (``reject_access_request``).
MAX_REJECTION_REASON = 200
#: Bounds on the submitted form: the card declares the fields, these bound what a user sends.
MAX_FIELD_VALUE = 1000
MAX_FIELD_NAME = 200


class GatedRepoError(PermissionDeniedError):
    """An authenticated caller without access to a gated repo's files (403 ``GatedRepo``)."""


class GatedRepoAnonymousError(GatedRepoError):
    """An anonymous caller asking for a gated repo's files (401 ``GatedRepo``)."""


class AccessRequestNotFoundError(NotFoundError):
    """No such user, no request from them, or the request is in the list asked for already."""


def has_access(conn: Connection, principal: Principal | None, repo: RepoHead) -> bool:
    """Whether the caller may download the repo's files (the caller may read the repo)."""
    if repo.gated is None:
        return True
    if principal is None or outside_scopes(principal, repo):
        return False  # a fine-grained token does not carry its user's access outside its scopes
    if repo_role(principal, repo) is not None:
        return True  # the owner and every member of the owning org (or of the repo's resource group)
    return requests_q.is_accepted(conn, repo.id, principal.account_id)


def check_download(conn: Connection, principal: Principal | None, repo: RepoHead) -> None:
    """Refuse a gated repo's bytes to a caller without access (after ``check_read``)."""
    if has_access(conn, principal, repo):
        return
    message = (
        f"Access to {repo.type} {repo.repo_id} is restricted. You must have access to it and be authenticated "
        "to access it. Please log in." if principal is None else
        f"Access to {repo.type} {repo.repo_id} is restricted and you are not in the authorized list. "
        f"Visit the repo page to ask for access."
    )
    raise GatedRepoAnonymousError(message) if principal is None else GatedRepoError(message)


@dataclass(frozen=True)
class RequestPage:
    items: list[AccessRequest]
    more: bool


def _gated_repo_for_writer(conn: Connection, principal: Principal | None, repo_type: str, repo_id: str) -> Repo:
    repo = find_repo(conn, principal, repo_type, repo_id)
    check_write(principal, repo)
    if repo.gated is None:
        raise InvalidInputError(f"{repo.repo_id} is not a gated repo: enable gating in its settings first")
    return repo


def list_requests(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, status: str, offset: int, limit: int
) -> RequestPage:
    """A page of the repo's requests with ``status``; needs write access to the repo."""
    if status not in STATUSES:
        raise NotFoundError(f"Unknown access request list {status!r}: pending, accepted or rejected")
    with hub.db.read() as conn:
        repo = _gated_repo_for_writer(conn, principal, repo_type, repo_id)
        found = requests_q.listing(conn, repo.id, status, offset, limit + 1)
    return RequestPage(found[:limit], len(found) > limit)


def _parse_request_id(value: str) -> int:
    try:
        parsed = int(value, 16) if 0 < len(value) <= 24 else -1
    except ValueError:
        parsed = -1
    if not 0 <= parsed < 2**31:  # the id column is a 32-bit integer on PostgreSQL
        raise AccessRequestNotFoundError(f"No access request {value!r} on this repo")
    return parsed


def handle_request(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, user: str | None,
    request_id: str | None, status: str, reason: str | None,
) -> None:
    """Move a user's request to ``status`` (accept, reject with an optional reason, or cancel back
    to pending); needs write access. 404 for an unknown user, a user who never asked, or a request
    in that list already, as the client documents."""
    if status not in STATUSES:
        raise InvalidInputError("status must be 'pending', 'accepted' or 'rejected'")
    if (user is None) == (request_id is None):
        raise InvalidInputError("Pass exactly one of 'user' or 'requestId'")
    if reason is not None and (status != "rejected" or len(reason) > MAX_REJECTION_REASON):
        raise InvalidInputError(
            f"rejectionReason is only for a rejection and holds at most {MAX_REJECTION_REASON} characters"
        )
    with hub.db.write() as conn:
        repo = _gated_repo_for_writer(conn, principal, repo_type, repo_id)
        if user is not None:
            account = accounts_q.by_name(conn, user)
            if account is None or account.kind != "user":
                raise AccessRequestNotFoundError(f"No user named {user!r}")
            found = requests_q.get(conn, repo.id, account.id)
        else:
            found = requests_q.get_by_id(conn, repo.id, _parse_request_id(str(request_id)))
        if found is None:
            raise AccessRequestNotFoundError(f"No access request from {user or request_id!r} on {repo.repo_id}")
        if found.status == status:
            raise AccessRequestNotFoundError(f"The access request of {found.user!r} is already {status}")
        if not requests_q.set_status(conn, found.id, found.status, status, reason, utcnow()):
            raise ConflictError("The access request changed meanwhile: try again")
        action = {"accepted": "access_request.accepted", "rejected": "access_request.rejected",
                  "pending": "access_request.cancelled"}[status]
        record(conn, action, repo.owner_id, principal, repo_subject(repo.type, repo.repo_id),
               {"user": found.user, "was": found.status, **({"reason": reason} if reason else {})})


def grant_access(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, user: str) -> None:
    """Put ``user`` on the accepted list without a request of theirs; 400 if they have access."""
    with hub.db.write() as conn:
        repo = _gated_repo_for_writer(conn, principal, repo_type, repo_id)
        account = accounts_q.by_name(conn, user)
        if account is None or account.kind != "user":
            raise AccessRequestNotFoundError(f"No user named {user!r}")
        found = requests_q.get(conn, repo.id, account.id)
        now = utcnow()
        if found is None:
            requests_q.add(conn, repo.id, account.id, "accepted", None, now)
        elif found.status == "accepted":
            raise InvalidInputError(f"{account.name!r} already has access to {repo.repo_id}")
        elif not requests_q.set_status(conn, found.id, found.status, "accepted", None, now):
            raise ConflictError("The access request changed meanwhile: try again")
        record(conn, "access_request.granted", repo.owner_id, principal, repo_subject(repo.type, repo.repo_id),
               {"user": account.name})


#: A card larger than this is not read for its form (cards are a few KiB; the indexer bounds them too).
MAX_CARD_BYTES = 1 << 20


def declared_fields(hub: Hub, conn: Connection, repo: Repo) -> dict[str, Any]:
    """The form a gated repo's card declares (``extra_gated_fields``: field name -> its type),
    read from the README of the default branch now: the catalog's copy of the card is refreshed
    by a job after each commit, and a request must be checked against the card just committed."""
    head = refs_q.get(conn, repo.id, f"refs/heads/{DEFAULT_BRANCH}")
    if head is None:
        return {}
    item = lookup(hub.objects, commit_info(cast(Commit, hub.objects.get(Oid(head)))).tree, "README.md")
    if item is None or item.is_dir:
        return {}
    raw = cast(Blob, hub.objects.get(item.oid)).as_raw_string()
    if len(raw) > MAX_CARD_BYTES:
        return {}
    declared = parse_card(raw.decode("utf-8", "replace")).data.get("extra_gated_fields")
    return {str(k): v for k, v in declared.items()} if isinstance(declared, dict) else {}


def _field_type(spec: Any) -> str:
    if isinstance(spec, dict):
        return str(spec.get("type", "text"))
    return str(spec)


def validate_fields(declared: dict[str, Any], fields: Any) -> dict[str, Any]:
    """The submitted form checked against the card's: every declared field answered (a checkbox
    checked: on the Hub each one is an agreement), no undeclared field, plain bounded values."""
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise InvalidInputError("'fields' must be an object of field name -> value")
    unknown = sorted(str(k)[:MAX_FIELD_NAME] for k in fields if k not in declared)
    if unknown:
        raise InvalidInputError(f"Unknown fields {unknown}: this repo's form has {sorted(declared)}")
    for name, spec in declared.items():
        value = fields.get(name)
        if _field_type(spec) == "checkbox":
            if value is not True:
                raise InvalidInputError(f"The field {name!r} must be checked (true)")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InvalidInputError(f"The field {name!r} is required")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidInputError(f"The field {name!r} must be a string or a number")
        if isinstance(value, str) and len(value) > MAX_FIELD_VALUE:
            raise InvalidInputError(f"The field {name!r} holds at most {MAX_FIELD_VALUE} characters")
    return dict(fields)


def authorize_request(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> None:
    """Before the body of an access request: a logged-in caller who may see the repo."""
    if principal is None:
        raise AuthenticationError("Log in to ask for access to a gated repo")
    with hub.db.read() as conn:
        find_repo(conn, principal, repo_type, repo_id)


def request_access(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, fields: Any) -> str:
    """The caller asks for access to a gated repo with the card's form filled in; in ``auto``
    mode the request is accepted at once. Returns the request's status."""
    if principal is None:
        raise AuthenticationError("Log in to ask for access to a gated repo")
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if repo.gated is None:
            raise InvalidInputError(f"{repo.repo_id} is not gated: its files need no access request")
        if has_access(conn, principal, repo):
            raise InvalidInputError(f"You already have access to {repo.repo_id}")
        found = requests_q.get(conn, repo.id, principal.account_id)
        if found is not None:
            raise ConflictError(f"You already asked for access to {repo.repo_id}: your request is {found.status}")
        answers = validate_fields(declared_fields(hub, conn, repo), fields)
        status = "accepted" if repo.gated == "auto" else "pending"
        requests_q.add(conn, repo.id, principal.account_id, status, answers, utcnow())
    return status
