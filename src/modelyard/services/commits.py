"""Writing: preupload decisions, commits, branches, tags and history squashing."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any, cast

from dulwich.objects import Blob, Commit
from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog.lfs import repo_objects
from modelyard.catalog.repos import Repo
from modelyard.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    RevisionNotFoundError,
    StaleParentError,
)
from modelyard.ids import Oid, validate_path, validate_ref_component
from modelyard.services.auth import Principal, check_write
from modelyard.services.contributions import MAX_TITLE, check_push, note_commit, open_thread
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.hub import Hub, OverlayReader, utcnow
from modelyard.services.repos import DEFAULT_BRANCH, SYSTEM, find_repo, resolve_revision
from modelyard.services.xet import repo_usage
from modelyard.versioning.gitignore import GitIgnore
from modelyard.versioning.history import ancestors
from modelyard.versioning.lfs import LfsPointer, lfs_patterns, matches_lfs
from modelyard.versioning.objects import (
    BLOB,
    CommitInfo,
    ObjectReader,
    Signature,
    commit_info,
    make_blob,
    make_commit,
    raw,
)
from modelyard.versioning.trees import TreeEditor, lookup, walk


@dataclass(frozen=True)
class AddFile:
    path: str
    content: bytes


@dataclass(frozen=True)
class AddLfsFile:
    path: str
    sha256: str
    size: int | None


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder


@dataclass
class CommitRequest:
    summary: str
    description: str = ""
    parent_commit: str | None = None
    operations: list[Operation] = field(default_factory=list)


@dataclass(frozen=True)
class CommitResult:
    oid: Oid
    pr_num: int | None
    repo_pk: int = 0
    event_id: int | None = None
    thread_event_id: int | None = None  # the discussion event of a pull request it opened
    warnings: list[str] = field(default_factory=list)  # secrets found in what it added


#: The Hub's answer (412) to a commit whose ``parentCommit`` is not the head of its branch.
STALE_PARENT = "The branch was updated since you opened this page. Please refresh and try again."


def _writable_ref(conn: Connection, repo: Repo, revision: str) -> tuple[str, Oid]:
    """The branch (or PR ref) a commit goes to and its head; tags and commit ids are refused."""
    ref = revision if revision.startswith("refs/") else f"refs/heads/{revision}"
    head = refs_q.get(conn, repo.id, ref)
    if head is None:
        raise RevisionNotFoundError(f"Invalid rev id: {revision}")
    if not (ref.startswith("refs/heads/") or ref.startswith("refs/pr/")):
        raise InvalidInputError(f"Cannot commit to {revision!r}: only branches and PR refs take commits")
    return ref, Oid(head)


def _ref_of(revision: str) -> str:
    return revision if revision.startswith("refs/") else f"refs/heads/{revision}"


def authorize_commit(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, create_pr: bool = False,
) -> None:
    """Everything a commit's URL and token decide, checked before its body is read: the repo
    exists for the caller, the caller may commit there (a writer anywhere; anyone who may read
    it to a new pull request or to their own), the revision is a branch or PR ref."""
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_push(conn, principal, repo, _ref_of(revision), create_pr)
        _writable_ref(conn, repo, revision)


def authorize_preupload(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, create_pr: bool = False,
) -> None:
    """What a preupload's URL and token decide (before its body): the repo exists for the
    caller and they may commit to the revision (which need not exist yet)."""
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_push(conn, principal, repo, _ref_of(revision), create_pr)


def _ignore_rules(hub: Hub, tree: Oid | None, gitignore: object) -> GitIgnore | None:
    """The ``.gitignore`` that decides ``shouldIgnore``: the one sent with the request (the
    client sends it when the commit adds one), else the repo's at the revision, else none."""
    if gitignore is not None:
        if not isinstance(gitignore, str):
            raise InvalidInputError("'gitIgnore' must be the text of a .gitignore")
        return GitIgnore.parse(gitignore)
    if tree is None:
        return None
    entry = lookup(hub.objects, tree, ".gitignore")
    if entry is None or entry.is_dir:
        return None
    try:
        return GitIgnore.parse(cast(Blob, hub.objects.get(entry.oid)).as_raw_string())
    except InvalidInputError:
        # Past the limits, committed without the client (which sends it here first): ignoring
        # nothing keeps the repo writable; refusing every later upload would not.
        return None


def preupload(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str,
    files: list[dict[str, Any]], gitignore: object = None, create_pr: bool = False,
) -> list[dict[str, Any]]:
    """Decide ``lfs`` or ``regular`` per file, whether the ``.gitignore`` drops it
    (``shouldIgnore``), and report the remote oid for no-op detection."""
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_push(conn, principal, repo, _ref_of(revision), create_pr)
        try:
            head, _ = resolve_revision(conn, repo, revision)
        except RevisionNotFoundError:
            with_head = None
        else:
            with_head = head
    tree = commit_info(cast(Commit, hub.objects.get(with_head))).tree if with_head else None
    patterns: list[str] = []
    if tree is not None:
        attrs = lookup(hub.objects, tree, ".gitattributes")
        if attrs is not None and not attrs.is_dir:
            patterns = lfs_patterns(cast(Blob, hub.objects.get(attrs.oid)).as_raw_string())
    ignore = _ignore_rules(hub, tree, gitignore)
    out = []
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise InvalidInputError("Each preupload file needs a 'path'")
        path, size = validate_path(f["path"]), f.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"Invalid size for {path!r}")
        try:
            sample = base64.b64decode(f.get("sample", ""), validate=True)
        except ValueError as exc:
            raise InvalidInputError(f"Invalid base64 sample for {path!r}") from exc
        binary = b"\x00" in sample
        lfs = size >= hub.settings.lfs_threshold or binary or matches_lfs(path, patterns)
        remote_oid = None
        if tree is not None:
            item = lookup(hub.objects, tree, path)
            if item is not None and not item.is_dir:
                meta = hub.objects.meta([item.oid]).get(item.oid)
                remote_oid = meta[1] if meta and meta[1] else item.oid
        out.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": ignore is not None and ignore.ignores(path), "oid": remote_oid})
    return out


def _build(
    hub: Hub, conn: Connection, repo: Repo, base: Oid | None, req: CommitRequest, author: Signature,
) -> tuple[Oid, list[tuple[str, int, bytes, str | None, int | None]]]:
    """Apply the operations on top of ``base`` and return the new commit and objects."""
    base_tree = commit_info(cast(Commit, hub.objects.get(base))).tree if base else None
    editor = TreeEditor(hub.objects, base_tree)
    new: list[tuple[str, int, bytes, str | None, int | None]] = []
    for op in req.operations:
        if isinstance(op, AddFile):
            if len(op.content) > hub.settings.max_regular_file_size:
                raise InvalidInputError(
                    f"{op.path} is larger than {hub.settings.max_regular_file_size} bytes: "
                    "upload it with LFS (track it in .gitattributes) instead of as a regular file"
                )
            blob = make_blob(op.content)
            new.append((blob.id.decode(), BLOB, op.content, None, None))
            editor.put_file(op.path, Oid(blob.id.decode()))
        elif isinstance(op, AddLfsFile):
            stored = repos_q.has_lfs_object(conn, repo.id, op.sha256)
            if stored is None:
                raise InvalidInputError(
                    f"LFS object {op.sha256} for {op.path!r} was never uploaded to this repository"
                )
            if op.size is not None and op.size != stored:
                raise InvalidInputError(
                    f"LFS object {op.sha256} for {op.path!r} has size {stored}, not {op.size}"
                )
            pointer = LfsPointer(op.sha256, stored).encode()  # type: ignore[arg-type]
            blob = make_blob(pointer)
            new.append((blob.id.decode(), BLOB, pointer, op.sha256, stored))
            editor.put_file(op.path, Oid(blob.id.decode()))
        elif isinstance(op, DeleteFile):
            # A file, or a folder named without its trailing '/': CommitOperationDelete("dir")
            # sends deletedFile, and deleting that folder is what its caller meant.
            editor.delete(op.path, folder=None)
        else:
            editor.delete(op.path, folder=True)
    tree, trees = editor.write()
    new.extend((t.oid, t.type_num, t.data, None, None) for t in trees)
    message = req.summary + (f"\n\n{req.description}" if req.description else "")
    commit = raw(make_commit(tree, [base] if base else [], author, message))
    new.append((commit.oid, commit.type_num, commit.data, None, None))
    return commit.oid, new


#: Commits carry ``<user name>@users.modelyard`` as the author's e-mail, whatever the account's
#: e-mail: it links a commit to its user for good (``commit_authors``) and keeps e-mail
#: addresses out of repositories.
NOREPLY_DOMAIN = "@users.modelyard"


def _author(principal: Principal) -> Signature:
    return Signature(principal.fullname or principal.name, f"{principal.name}{NOREPLY_DOMAIN}")


def commit_authors(hub: Hub, infos: list[CommitInfo]) -> dict[Oid, str]:
    """The hub user name of each commit's author, as ``list_repo_commits`` shows it.

    A ``<name>@users.modelyard`` e-mail names its user; an older commit carrying an account's
    own e-mail is that user's if exactly one user has it; ``system`` made initial commits;
    anything else (an imported history) keeps the name in the signature.
    """
    by_noreply = {i.oid: i.author_email[: -len(NOREPLY_DOMAIN)].lower()
                  for i in infos if i.author_email.endswith(NOREPLY_DOMAIN)}
    emails = sorted({i.author_email for i in infos if i.oid not in by_noreply and "@" in i.author_email})
    with hub.db.read() as conn:
        users = accounts_q.user_names(conn, sorted(set(by_noreply.values())), emails)
    names = {name.lower(): name for name, _ in users}
    owners: dict[str, list[str]] = {}
    for name, email in users:
        if email is not None:
            owners.setdefault(email, []).append(name)
    out: dict[Oid, str] = {}
    for info in infos:
        if info.author_email == SYSTEM.email:
            out[info.oid] = SYSTEM.name
        elif info.oid in by_noreply and by_noreply[info.oid] in names:
            out[info.oid] = names[by_noreply[info.oid]]
        elif len(owners.get(info.author_email, [])) == 1:
            out[info.oid] = owners[info.author_email][0]
        else:
            out[info.oid] = info.author_name
    return out


def create_commit(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str,
    req: CommitRequest, create_pr: bool = False,
) -> CommitResult:
    """Commit ``req`` onto a branch in one transaction, moving the ref by compare-and-swap."""
    if not req.summary.strip():
        raise InvalidInputError("A commit needs a non-empty summary")
    if "\x00" in req.summary or "\x00" in req.description:
        raise InvalidInputError("A commit summary or description cannot contain NUL characters")
    if req.parent_commit is not None and not (
        isinstance(req.parent_commit, str) and 5 <= len(req.parent_commit) <= 40
        and all(c in "0123456789abcdef" for c in req.parent_commit)
    ):
        raise InvalidInputError("parentCommit must be 5 to 40 lowercase hex digits")
    warnings = _judge_content(hub, principal, repo_type, repo_id, req)
    for _attempt in range(8):
        try:
            result = _commit_once(hub, principal, repo_type, repo_id, revision, req, create_pr)
        except _RefMoved:
            continue  # no parent pinned: rebuild on the new head
        # The catalog and the storage accounting follow as a job (services/events.py): the
        # commit returns as soon as the ref has moved.
        record_and_enqueue(hub, result.event_id)
        record_and_enqueue(hub, result.thread_event_id)
        return replace(result, warnings=warnings)
    raise ConflictError("Too many concurrent commits on this branch; try again")


def _judge_content(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, req: CommitRequest
) -> list[str]:
    """Secrets in the regular files (warnings), unsafe files refused if the operator says so
    (``services/scans.py: check_commit``); before the write transaction, which a scan would hold."""
    from modelyard.services.scans import check_commit

    def repo_pk() -> int:
        with hub.db.read() as conn:
            return find_repo(conn, principal, repo_type, repo_id).id

    inline = [(op.path, op.content) for op in req.operations if isinstance(op, AddFile)]
    large = [(op.path, op.sha256) for op in req.operations if isinstance(op, AddLfsFile)]
    return check_commit(hub, repo_pk, inline, large)


class _RefMoved(Exception):
    """The branch moved between reading its head and the compare-and-swap."""


def _commit_once(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str,
    req: CommitRequest, create_pr: bool,
) -> CommitResult:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_push(conn, principal, repo, _ref_of(revision), create_pr)
        assert principal is not None
        refs_q.lock(conn, repo.id)  # before checking what the repo holds: gc takes it too
        ref, head = _writable_ref(conn, repo, revision)
        if req.parent_commit is not None and not head.startswith(req.parent_commit):
            raise StaleParentError(STALE_PARENT)
        pr_num, opened = None, None
        if create_pr:
            if not ref.startswith("refs/heads/"):
                raise InvalidInputError("A pull request is opened against a branch")
            _thread, pr_num, opened = open_thread(
                hub, conn, repo, principal, req.summary.strip()[:MAX_TITLE], req.description,
                True, ref)
            ref = f"refs/pr/{pr_num}"
            refs_q.compare_and_swap(conn, repo.id, ref, None, head)
        oid, new = _build(hub, conn, repo, head, req, _author(principal))
        objects_q.put_many(hub.db, conn, new)
        now = utcnow()
        objects_q.add_repo_commit(hub.db, conn, repo.id, oid, now)
        if not refs_q.compare_and_swap(conn, repo.id, ref, head, oid):
            if req.parent_commit is not None:
                raise StaleParentError(STALE_PARENT)
            raise _RefMoved
        if ref == f"refs/heads/{DEFAULT_BRANCH}":
            search_q.change_sort_keys(conn, repo.id, last_modified=now)
        if ref.startswith("refs/pr/"):
            note_commit(conn, repo, ref, oid, req.summary, principal.account_id)
        old = None if create_pr else head
        event = new_event(hub, conn, repo.id, "ref", ref, old, oid, principal.account_id)
        return CommitResult(oid, pr_num, repo.id, event, opened)


def _used_storage(reader: ObjectReader, conn: Connection, repo: Repo, tree: Oid) -> int:
    """LFS objects the repo holds, the stored (deduplicated, compressed) bytes of its Xet files,
    plus the regular files at the head of main."""
    lfs_total = sum(size for _sha, size in repo_objects(conn, repo.id))
    files = [e.oid for e in walk(reader, tree) if not e.is_dir]
    metas = objects_q.blob_meta(conn, files)
    regular = sum(m[0] for m in metas.values() if m[1] is None)
    return lfs_total + repo_usage(conn, repo.id).physical + regular


def refresh_used_storage(hub: Hub, repo_pk: int) -> None:
    """Recompute ``usedStorage`` (a job after each commit to main; after ``gc`` released files)."""
    with hub.db.write() as conn:
        repo = repos_q.get_by_id(conn, repo_pk)
        head = refs_q.get(conn, repo_pk, f"refs/heads/{DEFAULT_BRANCH}")
        if repo is None or head is None:
            return
        tree = commit_info(cast(Commit, hub.objects.get(Oid(head)))).tree
        repos_q.update_repo(conn, repo_pk, used_storage=_used_storage(hub.objects, conn, repo, tree))


# -- branches, tags, refs, history -------------------------------------------------------------


def _move_ref(
    hub: Hub, conn: Connection, repo: Repo, principal: Principal | None, ref: str, old: str | None,
    new: str | None, conflict: str,
) -> int:
    """Move a ref by compare-and-swap and record the event; ConflictError(``conflict``) if it moved."""
    if not refs_q.compare_and_swap(conn, repo.id, ref, old, new):
        raise ConflictError(conflict)
    return new_event(hub, conn, repo.id, "ref", ref, old, new, principal.account_id if principal else None)


def create_branch(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, branch: str, starting_point: str | None
) -> None:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        target, _ = resolve_revision(conn, repo, starting_point or DEFAULT_BRANCH)
        validate_ref_component(branch, "branch")  # after the revision, as on the Hub
        ref = f"refs/heads/{branch}"
        event = _move_ref(hub, conn, repo, principal, ref, None, target, f"Reference {ref} already exists")
    record_and_enqueue(hub, event)


def delete_branch(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, branch: str) -> None:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        ref = f"refs/heads/{branch}"
        if branch == DEFAULT_BRANCH:
            raise PermissionDeniedError(f"Cannot delete {ref}")
        head = refs_q.get(conn, repo.id, ref)
        if head is None:
            raise RevisionNotFoundError(f"Invalid rev id: {branch}")
        event = _move_ref(hub, conn, repo, principal, ref, head, None, f"Branch {branch!r} changed while deleting it")
    record_and_enqueue(hub, event)


def create_tag(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, tag: str
) -> None:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        target, _ = resolve_revision(conn, repo, revision)
        validate_ref_component(tag, "tag")  # a missing revision is RevisionNotFound first, as on the Hub
        ref = f"refs/tags/{tag}"
        event = _move_ref(hub, conn, repo, principal, ref, None, target, f"Reference {ref} already exists")
    record_and_enqueue(hub, event)


def delete_tag(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, tag: str) -> None:
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        ref = f"refs/tags/{tag}"
        head = refs_q.get(conn, repo.id, ref)
        if head is None:
            raise RevisionNotFoundError(f"Invalid rev id: {tag}")
        event = _move_ref(hub, conn, repo, principal, ref, head, None, f"Tag {tag!r} changed while deleting it")
    record_and_enqueue(hub, event)


def list_refs(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> dict[str, str]:
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        return refs_q.all_refs(conn, repo.id)


def super_squash(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, branch: str, message: str | None
) -> Oid:
    """Replace a branch's history by one commit holding its current tree."""
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        assert principal is not None
        ref, head = _writable_ref(conn, repo, branch)
        tree = commit_info(cast(Commit, hub.objects.get(head))).tree
        commit = raw(make_commit(tree, [], _author(principal), message or "Super-squash branch"))
        new = [(commit.oid, commit.type_num, commit.data, None, None)]
        objects_q.put_many(hub.db, conn, new)
        now = utcnow()
        objects_q.add_repo_commit(hub.db, conn, repo.id, commit.oid, now)
        if not refs_q.compare_and_swap(conn, repo.id, ref, head, commit.oid):
            raise StaleParentError("The branch moved while squashing; try again")
        _forget_unreachable(hub, OverlayReader(hub.objects, new), conn, repo)
        if ref == f"refs/heads/{DEFAULT_BRANCH}":
            search_q.change_sort_keys(conn, repo.id, last_modified=now)
        event = new_event(hub, conn, repo.id, "ref", ref, head, commit.oid, principal.account_id)
    record_and_enqueue(hub, event)
    return commit.oid


def _forget_unreachable(hub: Hub, reader: ObjectReader, conn: Connection, repo: Repo) -> None:
    """Commits no ref reaches any more stop resolving by id (as after a squash on the Hub)."""
    targets = [Oid(t) for t in refs_q.all_refs(conn, repo.id).values()]
    reachable = {c.oid for c in ancestors(reader, targets)}
    stale = [oid for oid in objects_q.repo_commit_ids(conn, repo.id) if oid not in reachable]
    objects_q.forget_repo_commits(conn, repo.id, stale)
