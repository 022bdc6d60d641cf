"""Repositories: look-up, revisions, create, delete, move, settings, info and listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from dulwich.objects import Commit
from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import redirects as redirects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog.repos import Repo, RepoHead
from modelyard.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelyard.ids import HOSTED_REPO_TYPES, Oid, is_commit_id, is_short_hex, validate_name
from modelyard.metadata.vocabulary import SPACE_SDKS
from modelyard.services import groups
from modelyard.services.audit import record, repo_subject
from modelyard.services.auth import (
    REPO_NOT_FOUND,
    Principal,
    can_read,
    check_admin,
    check_namespace_write,
    check_read,
    check_write,
)
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.hub import Hub, utcnow
from modelyard.services.webhooks import deliver_deletion
from modelyard.versioning.lfs import DEFAULT_GITATTRIBUTES
from modelyard.versioning.objects import CommitInfo, Signature, commit_info, make_blob, make_commit, raw
from modelyard.versioning.trees import TreeEditor

SYSTEM = Signature("system", "system@modelyard.local")
DEFAULT_BRANCH = "main"


def split_repo_id(repo_id: str) -> tuple[str, str]:
    if repo_id.count("/") != 1:
        raise RepoNotFoundError(REPO_NOT_FOUND)
    namespace, name = repo_id.split("/")
    return namespace, name


def qualified_id(principal: Principal, namespace: str | None, name: str) -> str:
    """The repo id a create or delete request names: ``organization: null`` (the client sends it
    for a repo id without a slash) is the caller's own namespace."""
    return f"{namespace if namespace is not None else principal.name}/{name}"


def find_repo(conn: Connection, principal: Principal | None, repo_type: str, repo_id: str) -> Repo:
    """The repo the caller may read, or RepoNotFoundError (spaces are never hosted here)."""
    namespace, name = split_repo_id(repo_id)
    repo = repos_q.get(conn, repo_type, namespace, name) if repo_type in HOSTED_REPO_TYPES else None
    if repo is None:
        raise RepoNotFoundError(REPO_NOT_FOUND)
    check_read(principal, repo)
    return repo


def moved_to(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> str | None:
    """The current id of the repo that ``repo_id`` named before a move, if the caller may read
    that repo; None otherwise (no such old name, a repo holds the name again, or a private repo
    the caller may not see: then the old id is answered exactly like a missing repo)."""
    if repo_type not in HOSTED_REPO_TYPES or repo_id.count("/") != 1:
        return None
    namespace, name = repo_id.split("/")
    with hub.db.read() as conn:
        repo = redirects_q.target(conn, repo_type, namespace, name)
    if repo is None or not can_read(principal, repo):
        return None
    return repo.repo_id


def authorize(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, need: str = "read") -> Repo:
    """Access to a repo decided from the URL and the token alone, before a request body is read:
    a caller who may not ``need`` (read, write, admin) it is refused without costing a byte."""
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
    if need == "write":
        check_write(principal, repo)
    elif need == "admin":
        check_admin(principal, repo)
    return repo


def resolve_revision(conn: Connection, repo: RepoHead, revision: str) -> tuple[Oid, str | None]:
    """A revision (branch, tag, ``refs/...`` or a commit id or prefix) -> (commit, ref name)."""
    for ref in _ref_candidates(revision):
        target = refs_q.get(conn, repo.id, ref)
        if target is not None:
            return Oid(target), ref
    return _commit_revision(conn, repo, revision)


def _ref_candidates(revision: str) -> tuple[str, ...]:
    return (revision,) if revision.startswith("refs/") else (f"refs/heads/{revision}", f"refs/tags/{revision}")


@dataclass(frozen=True)
class Located:
    repo: RepoHead
    commit: Oid
    #: the download facts of the large file ``locate`` was asked about: (Xet hash, purged)
    facts: tuple[str | None, bool]


def locate(
    conn: Connection, principal: Principal | None, repo_type: str, repo_id: str, revision: str, sha256: str = ""
) -> Located:
    """``find_repo`` and ``resolve_revision`` for the download path: the repo's narrow row, a
    branch or tag, and the facts of the large file ``sha256`` (a guess: see
    ``files.resolve_file``) in one statement (a commit id needs one more)."""
    namespace, name = split_repo_id(repo_id)
    candidates = _ref_candidates(revision)
    found = repos_q.head_and_refs(conn, repo_type, namespace, name, candidates, sha256) \
        if repo_type in HOSTED_REPO_TYPES else None
    if found is None:
        raise RepoNotFoundError(REPO_NOT_FOUND)
    check_read(principal, found.repo)
    facts = (found.xet_hash, found.purged)
    for target in found.targets:
        if target is not None:
            return Located(found.repo, Oid(target), facts)
    commit, _none = _commit_revision(conn, found.repo, revision)
    return Located(found.repo, commit, facts)


def _commit_revision(conn: Connection, repo: RepoHead, revision: str) -> tuple[Oid, None]:
    if is_commit_id(revision):
        if objects_q.repo_has_commit(conn, repo.id, revision):
            return Oid(revision), None
    elif is_short_hex(revision):
        found = objects_q.find_commits_by_prefix(conn, repo.id, revision)
        if len(found) == 1:
            return Oid(found[0]), None
    raise RevisionNotFoundError(f"Invalid rev id: {revision}")


def requested_private(body: dict[str, Any]) -> bool | None:
    """A create request's visibility: ``visibility`` ("public" | "private") or ``private``
    (a boolean); None when it names neither (the namespace's default)."""
    visibility = body.get("visibility")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise InvalidInputError("visibility must be 'public' or 'private'")
        return bool(visibility == "private")
    private = body.get("private")
    if private is not None and not isinstance(private, bool):
        raise InvalidInputError("private must be a boolean")
    return private


def create_repo(
    hub: Hub,
    principal: Principal | None,
    repo_type: str,
    namespace: str | None,
    name: str,
    private: bool | None,
    url_for: Any,
    sdk: str | None = None,
    resource_group: object = None,
) -> Repo:
    """Create a repo with its initial commit: a ``.gitattributes`` with the LFS patterns, and for
    a Space a README.md whose card names its ``sdk`` (required, as on the Hub); in the owner org's
    ``resource_group`` (its id) if given."""
    if repo_type not in HOSTED_REPO_TYPES:
        raise InvalidInputError(f"Repositories of type {repo_type!r} are not hosted here")
    if principal is None:
        from modelyard.errors import AuthenticationError

        raise AuthenticationError("Authentication required to create a repository")
    namespace = namespace or principal.name
    validate_name(namespace, "namespace")
    validate_name(name)
    files = {".gitattributes": DEFAULT_GITATTRIBUTES}
    if repo_type == "space":
        files["README.md"] = space_readme(name, sdk)
    now = utcnow()
    blobs = {path: make_blob(content) for path, content in files.items()}
    editor = TreeEditor(hub.objects, None)
    for path, blob in blobs.items():
        editor.put_file(path, Oid(blob.id.decode()))
    tree, trees = editor.write()
    commit = raw(make_commit(tree, [], SYSTEM, "initial commit"))
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, namespace)
        if owner is None:
            raise PermissionDeniedError(f"The namespace {namespace!r} does not exist")
        group_id = groups.group_for_create(conn, principal, owner, resource_group)
        check_namespace_write(principal, owner.id, owner.name, group_id)
        accounts_q.lock_namespace(conn, owner.id)
        existing = repos_q.get(conn, repo_type, owner.name, name)
        if existing is not None:
            raise ConflictError(f"You already created this {repo_type} repo", url=url_for(repo_type, existing.repo_id))
        is_private = owner.default_private if private is None else private
        repo_pk = repos_q.create(
            conn, repo_type=repo_type, namespace=owner.name, name=name,
            owner_id=owner.id, private=is_private, now=now, created_seq=search_q.next_seq(conn),
            creator_id=principal.account_id, resource_group_id=group_id,
        )
        # The name is a repo again: it leads nowhere else. After the insert, which on PostgreSQL
        # waits for a concurrent move away from this name to commit, so its redirect is seen.
        redirects_q.remove_name(conn, repo_type, owner.name, name)
        objects_q.put_many(
            hub.db, conn,
            [(o.oid, o.type_num, o.data, None, None) for o in [*map(raw, blobs.values()), *trees, commit]],
        )
        objects_q.add_repo_commit(hub.db, conn, repo_pk, commit.oid, now)
        refs_q.compare_and_swap(conn, repo_pk, "refs/heads/main", None, commit.oid)
        repos_q.update_repo(conn, repo_pk, used_storage=sum(map(len, files.values())))
        repo = repos_q.get_by_id(conn, repo_pk)
        event = new_event(hub, conn, repo_pk, "repo", actor_id=principal.account_id)
        record(conn, "repo.created", owner.id, principal, repo_subject(repo_type, f"{owner.name}/{name}"),
               {"private": is_private, **({"resourceGroup": resource_group} if group_id is not None else {})})
    assert repo is not None
    record_and_enqueue(hub, event)  # the catalog entry follows as a job
    return repo


def space_readme(name: str, sdk: str | None) -> bytes:
    """The README.md a new Space starts with, as the Hub writes it: a card naming its SDK."""
    if sdk not in SPACE_SDKS:
        raise InvalidInputError(
            f"A Space needs an SDK: 'sdk' must be one of {', '.join(sorted(SPACE_SDKS))}"
        )
    card = (
        f'---\ntitle: "{name}"\nemoji: "\U0001f680"\ncolorFrom: blue\ncolorTo: indigo\nsdk: {sdk}\n'
        "pinned: false\n---\n\n"
    )
    served = (
        "Its `index.html` is served at `/spaces/<namespace>/<name>/`."
        if sdk == "static" else "This hub stores its files; it does not run the app."
    )
    return (card + f"# {name}\n\nA {sdk} Space. {served}\n").encode()


def delete_repo_confirmed(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, typed: str) -> None:
    """Deletion from a page: the person typed the repo's id to confirm it."""
    if typed.strip() != repo_id:
        raise InvalidInputError(f"Type {repo_id} to confirm the deletion: nothing was deleted")
    delete_repo(hub, principal, repo_type, repo_id)


def delete_repo(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> None:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_admin(principal, repo)
        refs_q.lock(conn, repo.id)  # before anything else: event jobs and writers take it first too
        # The repo's events go with it: its webhook deliveries are made here, before the row goes.
        hooked = deliver_deletion(hub, conn, repo)
        search_q.delete_search_text(hub.db, conn, repo.id)
        redirects_q.remove_repo(conn, repo.id)
        repos_q.delete_repo(conn, repo.id)
        record(conn, "repo.deleted", repo.owner_id, principal, repo_subject(repo_type, repo.repo_id))
    if hooked:
        hub.webhook_sender.wake()


def move_repo(hub: Hub, principal: Principal | None, repo_type: str, from_id: str, to_id: str) -> Repo:
    """Rename or transfer a repo. Its old name leads to it (``moved_to``) until a repo takes that
    name; the new name stops leading anywhere else. Redirects point at the repo, not at a name,
    so moving again (even back) leaves every old name one hop from the repo and never a loop."""
    to_ns, to_name = split_repo_id(to_id)
    validate_name(to_ns, "namespace")
    validate_name(to_name)
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, from_id)
        check_admin(principal, repo)
        owner = accounts_q.by_name(conn, to_ns)
        if owner is None:
            raise PermissionDeniedError(f"The namespace {to_ns!r} does not exist")
        # A resource group holds its org's repos only: a transfer leaves it (in the new
        # namespace the repo follows that namespace's roles); a rename stays in it.
        group = repo.resource_group_id if owner.id == repo.owner_id else None
        check_namespace_write(principal, owner.id, owner.name, group)
        accounts_q.lock_namespace(conn, owner.id)
        clash = repos_q.get(conn, repo_type, owner.name, to_name)
        if clash is not None and clash.id != repo.id:
            raise ConflictError(f"A {repo_type} repository called {owner.name}/{to_name} already exists")
        repos_q.update_repo(conn, repo.id, namespace=owner.name, name=to_name, owner_id=owner.id,
                            resource_group_id=group)
        redirects_q.remove_name(conn, repo_type, owner.name, to_name)  # after taking the name, as in create
        if repos_q.repo_key(repo.namespace, repo.name) != repos_q.repo_key(owner.name, to_name):
            redirects_q.add(conn, repo_type, repo.namespace, repo.name, repo, utcnow())
        moved = repos_q.get_by_id(conn, repo.id)
        details = {"from": repo.repo_id, "to": f"{owner.name}/{to_name}"}
        record(conn, "repo.moved", owner.id, principal, repo_subject(repo_type, f"{owner.name}/{to_name}"), details)
        if owner.id != repo.owner_id:  # the namespace it left sees it go
            record(conn, "repo.moved", repo.owner_id, principal, repo_subject(repo_type, repo.repo_id), details)
        # The name is part of the search text: the catalog entry follows as a job.
        event = new_event(hub, conn, repo.id, "repo", actor_id=principal.account_id if principal else None,
                          data={"moved_from": repo.repo_id})  # a ``repo`` move webhook delivery follows
    assert moved is not None
    record_and_enqueue(hub, event)
    return moved


def update_settings(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: dict[str, Any]
) -> None:
    values: dict[str, Any] = {}
    if "visibility" in body:
        if body["visibility"] not in ("public", "private"):
            raise InvalidInputError("visibility must be 'public' or 'private'")
        values["private"] = body["visibility"] == "private"
    if "private" in body:
        if not isinstance(body["private"], bool):
            raise InvalidInputError("private must be a boolean")
        values["private"] = body["private"]
    if "gated" in body:
        if body["gated"] not in (False, "auto", "manual"):
            raise InvalidInputError("gated must be false, 'auto' or 'manual'")
        values["gated"] = body["gated"] or None
    if not values:
        raise InvalidInputError("Nothing to update: pass 'visibility' or 'gated'")
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_admin(principal, repo)
        repos_q.update_repo(conn, repo.id, **values)
        changed = {k: v for k, v in values.items() if getattr(repo, k) != v}
        event = None
        if changed:  # a ``repo.config`` webhook delivery follows from it
            actor = principal.account_id if principal else None
            event = new_event(hub, conn, repo.id, "config", actor_id=actor, data=changed)
        subject = repo_subject(repo_type, repo.repo_id)
        if "private" in changed:
            record(conn, "repo.visibility_changed", repo.owner_id, principal, subject,
                   {"private": changed["private"]})
        if "gated" in changed:
            record(conn, "repo.gating_changed", repo.owner_id, principal, subject, {"gated": changed["gated"] or False})
    record_and_enqueue(hub, event)


@dataclass(frozen=True)
class RepoSnapshot:
    """A repo at a resolved revision."""

    repo: Repo
    commit: CommitInfo


def snapshot(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str) -> RepoSnapshot:
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        oid, _ref = resolve_revision(conn, repo, revision)
    return RepoSnapshot(repo, commit_info(cast(Commit, hub.objects.get(oid))))
