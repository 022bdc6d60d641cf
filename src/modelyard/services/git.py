"""git over smart HTTP: who may clone and push what, and a push as one commit-like transaction.

The protocol itself is dulwich's (``versioning/wire.py``); here are the hub's rules around it:

- Reading is what ``/resolve`` allows (the repo is visible to the caller, a gated repo's
  files only to who has access); objects are served only as the repo holds them: a commit
  counts only if the repo has it (``repo_commits``), so no fetch reaches another repo's history.
- A push is checked whole before anything is stored, then its objects and every ref it moves
  go in one transaction, each ref by compare-and-swap: every ref moves or none does. Its checks
  are the Hub's pre-receive ones (``_Push``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from dulwich.errors import ObjectFormatException
from dulwich.objects import Blob, Commit, ShaFile, Tag, Tree, parse_tree
from sqlalchemy import Connection

from modelyard.catalog import events as events_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog.repos import Repo
from modelyard.errors import AuthenticationError, HubError, InvalidInputError, RefusedContentError, RepoNotFoundError
from modelyard.ids import Oid, validate_ref_component
from modelyard.services.auth import Principal, can_write, check_contribute
from modelyard.services.contributions import check_push, note_commit, pr_number
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.gating import check_download
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import DEFAULT_BRANCH, find_repo
from modelyard.services.tallies import client_key
from modelyard.storage.base import BlobNotFoundError
from modelyard.versioning.lfs import POINTER_MAX_SIZE, parse_pointer
from modelyard.versioning.objects import COMMIT
from modelyard.versioning.wire import (
    ZERO,
    Loader,
    PackBounds,
    PackError,
    RefUpdate,
    ServedRepo,
    advertisement,
    check_pack_bounds,
    clone_request,
    deltify_with_git,
    iter_pack,
    send_pack,
    serve,
    write_whole_pack,
)

log = logging.getLogger("modelyard.git")

UPLOAD, RECEIVE = "git-upload-pack", "git-receive-pack"
SERVICES = (UPLOAD, RECEIVE)

GITLINK_MODE = 0o160000


class GitAuthRequired(AuthenticationError):
    """git must ask for credentials (401 with ``WWW-Authenticate``): an anonymous push, or a
    repo the anonymous caller cannot see (which may exist: the answer does not say)."""


def _open(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, service: str) -> Repo:
    """The repo, if the caller may use ``service`` on it at all (per-ref rights come later)."""
    if service not in SERVICES:
        raise InvalidInputError("Only the smart protocol is served: git-upload-pack or git-receive-pack")
    if service == RECEIVE and principal is None:
        raise GitAuthRequired("Authentication required to push: a user name and an access token")
    if service == UPLOAD and hub.settings.upstream_url is not None:  # a mirror's refs follow the upstream's
        from modelyard.services import mirror

        mirror.before_read(hub, principal, repo_type, repo_id, None)
    try:
        try:
            repo = _find(hub, principal, repo_type, repo_id, service)
        except RepoNotFoundError:
            from modelyard.services import mirror

            if service != UPLOAD or not mirror.materialize(hub, principal, repo_type, repo_id):
                raise
            repo = _find(hub, principal, repo_type, repo_id, service)
    except HubError:
        if principal is None:
            raise GitAuthRequired("Repository not found, or authentication required") from None
        raise
    if service == RECEIVE:
        check_contribute(principal, repo)  # a reader may push to their own pull request; refs decide
    return repo


def _find(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, service: str) -> Repo:
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if service == UPLOAD:
            check_download(conn, principal, repo)
    return repo


#: A fetch loads every commit of a repo at once when it has at most this many (else one by one).
PRIME_COMMITS = 100_000


def _served(hub: Hub, repo: Repo, prime: bool = False, refs: dict[str, str] | None = None) -> ServedRepo:
    """The repo for dulwich's handlers: its refs now (or ``refs``, read by the caller)."""
    with hub.db.read() as conn:
        if refs is None:
            refs = refs_q.all_refs(conn, repo.id)
        commits = objects_q.repo_commit_objects(conn, repo.id, PRIME_COMMITS) if prime else None
    return ServedRepo(_loader(hub, repo.id), refs, DEFAULT_BRANCH, commits)


def _loader(hub: Hub, repo_pk: int) -> Loader:
    """Objects as this repo holds them: a commit only if it is the repo's (``repo_commits``);
    trees and blobs are reached only through the repo's commits."""

    def load(oids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        with hub.db.read() as conn:
            found = objects_q.get_many(conn, list(oids))
            commits = [oid for oid, (t, _d) in found.items() if t == COMMIT]
            if commits:
                held = objects_q.repo_commits_among(conn, repo_pk, commits)
                for oid in commits:
                    if oid not in held:
                        del found[oid]
        return found

    return load


def advertise(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, service: str,
    write: Callable[[bytes], None],
) -> None:
    """``GET info/refs?service=...``."""
    repo = _open(hub, principal, repo_type, repo_id, service)
    advertisement(service, _served(hub, repo), write)


def authorize(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, service: str) -> int:
    """Everything the URL and the token decide, before the body is read; the repo's key."""
    return _open(hub, principal, repo_type, repo_id, service).id


def upload_pack(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: IO[bytes],
    write: Callable[[bytes], None], address: str,
) -> None:
    """``POST git-upload-pack``: negotiate and stream the pack (a clone or fetch counts as one
    download of the repo, like a ``/resolve`` of its counted file)."""
    repo = _open(hub, principal, repo_type, repo_id, UPLOAD)
    with hub.db.read() as conn:
        refs = refs_q.all_refs(conn, repo.id)
    cached = _from_clone_cache(hub, repo, refs, body, write)
    if cached is not True:
        serve(UPLOAD, _served(hub, repo, prime=True, refs=refs), body, write)
        if cached is None:  # a fresh clone with no pack of its state: ask for one, now it is served
            _ask_for_pack(hub, repo.id)
    hub.tallies.count_download(repo.id, client_key(address, principal.token_id if principal is not None else 0))


# -- the clone cache --------------------------------------------------------------------------------
#
# A fresh clone asks for everything; writing that pack from the database object by object (in
# Python, every object whole) takes seconds for a long history, where git sends its own pack,
# deltas and all. So the pack of a repo's whole state is kept in the blob store, made once per
# state in the background (an event of kind ``pack``, on the shared job queue) by git's own
# ``pack-objects``, and a fresh clone of that state is answered with it as it is stored. The key
# names the repo (its never-reused uid) and the exact refs it was made for: a pack is never
# served for any other state; a clone that finds none is served as any fetch, and asks for one.

PACKS = "git-packs"


def _state(refs: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{sha} {ref}\n" for ref, sha in sorted(refs.items())).encode()).hexdigest()


def clone_pack_key(repo_uid: str, refs: dict[str, str]) -> str:
    return f"{PACKS}/{repo_uid}/{_state(refs)}.pack"


def _git_binary() -> str | None:
    return shutil.which("git")


def _from_clone_cache(hub: Hub, repo: Repo, refs: dict[str, str], body: IO[bytes],
                      write: Callable[[bytes], None]) -> bool | None:
    """Answer a fresh clone with the stored pack of this exact state (True); else False, or None
    for a fresh clone of a state with no stored pack yet."""
    if not hub.settings.git_clone_cache or not refs:
        return False
    request = clone_request(body)
    if request is None or not request.wants <= set(refs.values()):
        return False
    if not {b"side-band-64k", b"ofs-delta", b"multi_ack_detailed"} <= request.capabilities:
        return False
    key = clone_pack_key(repo.uid, refs)
    pieces = hub.blobs.read(key)
    try:
        first = next(pieces)  # opened before a byte is answered: a pack gone meanwhile is no pack
    except (BlobNotFoundError, StopIteration):
        return None
    send_pack(itertools.chain([first], pieces), write)
    return True


def _ask_for_pack(hub: Hub, repo_pk: int) -> None:
    """Queue the making of the repo's clone pack, unless it is queued already."""
    if _git_binary() is None:
        return
    with hub.db.write() as conn:
        if events_q.pending_of_kind(conn, repo_pk, "pack"):
            return
        event = new_event(hub, conn, repo_pk, "pack")
    record_and_enqueue(hub, event)


def make_clone_pack(hub: Hub, repo_pk: int) -> None:
    """The job of a ``pack`` event: store the pack of the repo's current state (delta-compressed
    by git), and drop the repo's packs of earlier states. Nothing if the state has one already.
    A failure is logged, not retried: the pack only saves time, and the next fresh clone asks
    again."""
    try:
        _make_clone_pack(hub, repo_pk)
    except Exception:
        log.warning("making the clone pack of repo %s failed; clones are served without it", repo_pk,
                    exc_info=True)


def _make_clone_pack(hub: Hub, repo_pk: int) -> None:
    git = _git_binary()
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, repo_pk)
        refs = refs_q.all_refs(conn, repo_pk) if repo is not None else {}
    if git is None or repo is None or not refs:
        return
    key = clone_pack_key(repo.uid, refs)
    if not hub.blobs.exists(key):
        with tempfile.TemporaryDirectory(prefix="modelyard-pack-") as scratch:
            work = Path(scratch)
            whole = work / "whole.pack"
            with open(whole, "wb") as out:
                write_whole_pack(_served(hub, repo, prime=True, refs=refs), out)  # the state the key names
            packed = deltify_with_git(git, whole, refs, work)
            writer = hub.blobs.writer(digests=False)
            try:
                with open(packed, "rb") as f:
                    while piece := f.read(1024 * 1024):
                        writer.write(piece)
                writer.commit(key)
            except BaseException:
                writer.abort()
                raise
    for old in list(hub.blobs.keys(f"{PACKS}/{repo.uid}/")):
        if old != key:
            hub.blobs.delete(old)


def whole_pack(hub: Hub, repo: Repo, refs: dict[str, str], out: IO[bytes]) -> int:
    """Every object ``refs`` reach in ``repo`` as one pack (objects whole) into ``out``, as a
    clone would receive it (``modelyard bundle export``); how many objects."""
    return write_whole_pack(_served(hub, repo, prime=True, refs=refs), out)


def receive_pack(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: IO[bytes],
    write: Callable[[bytes], None],
) -> None:
    """``POST git-receive-pack``: the push is decided and stored whole (``_Push``)."""
    repo = _open(hub, principal, repo_type, repo_id, RECEIVE)
    assert principal is not None
    served = _served(hub, repo)
    push = _Push(hub, principal, repo)

    def spool() -> IO[bytes]:
        return tempfile.TemporaryFile(prefix="modelyard-push-")

    serve(RECEIVE, served, body, write, apply=push.apply, spool=spool)


# -- a push ---------------------------------------------------------------------------------------


class _Refused(Exception):
    """The push is refused as a whole; ``ref`` (if any) is the one at fault."""

    def __init__(self, reason: str, ref: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ref = ref


#: What the other refs of a refused push are told.
NOT_APPLIED = "not applied: another ref of this push was refused (a push is all or nothing)"


@dataclass
class _Received:
    """The objects of a pack, as the checks need them: commits parsed, trees as their raw bodies
    (parsed again as they are walked: a history of many trees would take hundreds of MB as
    parsed objects), blobs by size (small ones, which may be LFS pointers, with their bytes)."""

    commits: dict[str, Commit] = field(default_factory=dict)
    trees: dict[str, bytes] = field(default_factory=dict)
    blob_sizes: dict[str, int] = field(default_factory=dict)
    small_blobs: dict[str, bytes] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)  # tags: not accepted as ref targets


class _Reach:
    """Objects reachable from a repo's refs, found lazily (newest commits first): what a pushed
    object may refer to without sending it, and what a thin pack may use as a delta base."""

    def __init__(self, hub: Hub, tips: list[str]) -> None:
        self._hub = hub
        self._known: set[str] = set()
        self._frontier = list(dict.fromkeys(tips))
        self._commits: set[str] = set()

    def has(self, oid: str) -> bool:
        while oid not in self._known:
            if not self._expand():
                return False
        return True

    def _expand(self) -> bool:
        if not self._frontier:
            return False
        batch, self._frontier = self._frontier[:16], self._frontier[16:]
        for oid in batch:
            if oid in self._commits:
                continue
            self._commits.add(oid)
            self._known.add(oid)
            commit = cast(Commit, self._hub.objects.get(Oid(oid)))
            self._add_tree(commit.tree.decode())
            self._frontier.extend(p.decode() for p in commit.parents if p.decode() not in self._commits)
        return True

    def _add_tree(self, root: str) -> None:
        todo = [root]
        while todo:
            level = [t for t in todo if t not in self._known]
            self._known.update(level)
            self._hub.objects.prefetch([Oid(t) for t in level])
            todo = []
            for tree_oid in level:
                for item in cast(Tree, self._hub.objects.get(Oid(tree_oid))).iteritems():
                    child = item.sha.decode()
                    if item.mode & 0o170000 == 0o040000:
                        todo.append(child)
                    else:
                        self._known.add(child)

    def resolve(self, oid: str) -> tuple[int, bytes]:
        """A thin pack's base: only an object of this repo."""
        if not self.has(oid):
            raise KeyError(oid)
        with self._hub.db.read() as conn:
            found = objects_q.get(conn, oid)
        if found is None:
            raise KeyError(oid)
        return found


class _Push:
    def __init__(self, hub: Hub, principal: Principal, repo: Repo) -> None:
        self.hub = hub
        self.principal = principal
        self.repo = repo  # found (and the caller's access checked) by ``_open``

    def apply(self, updates: list[RefUpdate], pack: IO[bytes] | None) -> list[tuple[str, str]]:
        try:
            events = self._apply(updates, pack)
        except _Refused as refused:
            return [(u.ref, refused.reason if refused.ref in (None, u.ref) else NOT_APPLIED) for u in updates]
        for event in events:
            record_and_enqueue(self.hub, event)
        return [(u.ref, "ok") for u in updates]

    def _apply(self, updates: list[RefUpdate], pack: IO[bytes] | None) -> list[int]:
        hub, repo = self.hub, self.repo
        with hub.db.read() as conn:
            current = refs_q.all_refs(conn, repo.id)
            for u in updates:
                self._check_ref(conn, repo, u, current)
        reach = _Reach(hub, list(current.values()))
        received = self._read(pack, reach) if pack is not None else _Received()
        new_commits = self._check_content(repo, updates, received, reach)
        for u in updates:
            checked = not hub.settings.git_allow_force_push and u.new != ZERO and u.old != ZERO
            if checked and not self._descends(u.new, u.old, received):
                raise _Refused("non-fast-forward updates are refused on this hub: pull and merge first", u.ref)
        return self._store(repo, updates, pack, reach, new_commits, received)

    # -- refs ---------------------------------------------------------------------------------

    def _check_ref(self, conn: Connection, repo: Repo, u: RefUpdate, current: dict[str, str]) -> None:
        ref = u.ref
        if ref.startswith("refs/heads/") or ref.startswith("refs/tags/"):
            kind = "branch" if ref.startswith("refs/heads/") else "tag"
            try:
                validate_ref_component(ref.split("/", 2)[2], kind)
            except InvalidInputError as exc:
                raise _Refused(exc.message, ref) from None
            if not can_write(self.principal, repo):
                raise _Refused("you may not push to this repository (write access needed); "
                               "push to your pull request's refs/pr/N instead", ref)
            if ref == f"refs/heads/{DEFAULT_BRANCH}" and u.new == ZERO:
                raise _Refused("deleting the default branch is refused", ref)
        elif pr_number(ref) is not None:
            if u.new == ZERO or u.old == ZERO or ref not in current:
                raise _Refused("pull request refs are made and removed on the hub: push only to an "
                               "existing refs/pr/N", ref)
            try:
                check_push(conn, self.principal, repo, ref, False)
            except HubError as exc:
                raise _Refused(exc.message, ref) from None
        else:
            raise _Refused("only refs/heads/*, refs/tags/* and your pull requests' refs/pr/N take pushes", ref)
        if current.get(ref, ZERO) != u.old:
            raise _Refused("the ref has moved since you fetched: fetch first", ref)

    # -- the pack -----------------------------------------------------------------------------

    def _read(self, pack: IO[bytes], reach: _Reach) -> _Received:
        out = _Received()
        check_pack_bounds(pack, pack_bounds(self.hub))  # PackError: reported as the pack's ("unpack") failure
        for obj in iter_pack(pack, reach.resolve):
            self._take(out, obj)
        return out

    @staticmethod
    def _take(out: _Received, obj: ShaFile) -> None:
        oid = obj.id.decode()
        try:
            obj.check()
        except ObjectFormatException as exc:
            raise PackError(f"Object {oid} is malformed: {exc}") from None
        if isinstance(obj, Commit):
            out.commits[oid] = obj
        elif isinstance(obj, Tree):
            out.trees[oid] = obj.as_raw_string()
        elif isinstance(obj, Blob):
            size = obj.raw_length()
            out.blob_sizes[oid] = size
            if size <= POINTER_MAX_SIZE:
                out.small_blobs[oid] = obj.as_raw_string()
        elif isinstance(obj, Tag):
            out.others[oid] = obj.type_num

    def _check_content(self, repo: Repo, updates: list[RefUpdate], got: _Received, reach: _Reach) -> list[str]:
        """The Hub's pre-receive checks over everything the new ref targets bring; returns the
        new commits (oldest last) the repo will hold."""
        hub = self.hub
        new_commits: list[str] = []
        seen: set[str] = set()
        external_commits: set[str] = set()
        todo = []
        for u in updates:
            if u.new == ZERO:
                continue
            if u.new in got.others:
                raise _Refused("annotated tags are not supported: push a lightweight tag", u.ref)
            if u.new in got.trees or u.new in got.blob_sizes:
                raise _Refused("a ref must point at a commit", u.ref)
            if u.new in got.commits:
                todo.append(u.new)
            else:
                external_commits.add(u.new)
        while todo:
            oid = todo.pop()
            if oid in seen:
                continue
            seen.add(oid)
            new_commits.append(oid)
            commit = got.commits[oid]
            for parent in (p.decode() for p in commit.parents):
                if parent in got.commits:
                    todo.append(parent)
                elif parent in got.trees or parent in got.blob_sizes or parent in got.others:
                    raise _Refused(f"commit {oid} has a parent that is not a commit")
                else:
                    external_commits.add(parent)
        if external_commits:
            with hub.db.read() as conn:
                held = objects_q.repo_commits_among(conn, repo.id, sorted(external_commits))
            missing = sorted(external_commits - held)
            if missing:
                raise _Refused(f"the push refers to commit {missing[0]}, which it did not send and this "
                               "repository does not hold")
        self._check_trees(repo, [got.commits[c].tree.decode() for c in new_commits], got, reach)
        return new_commits

    def _check_trees(self, repo: Repo, roots: list[str], got: _Received, reach: _Reach) -> None:
        """Walk the new trees (those the pack brought): every entry is in the pack or already in
        the repo; a pack blob over the regular-file limit must be an LFS pointer; a pointer's
        object must be in the repo's storage."""
        limit = self.hub.settings.max_regular_file_size
        pointers: dict[str, tuple[str, int]] = {}  # sha256 -> (path, size)
        done: set[str] = set()
        todo = [(root, "") for root in roots]
        while todo:
            tree_oid, prefix = todo.pop()
            if tree_oid in done:
                continue
            done.add(tree_oid)
            raw_tree = got.trees.get(tree_oid)
            if raw_tree is None:
                if not reach.has(tree_oid):
                    raise _Refused(f"the push refers to tree {tree_oid} ({prefix or '/'}), which it did not send "
                                   "and this repository does not hold")
                continue
            for name, mode, hexsha in parse_tree(raw_tree, 20):
                child, path = hexsha.decode("ascii"), prefix + name.decode("utf-8", "replace")
                if mode == GITLINK_MODE:
                    raise _Refused(f"{path}: submodules are not supported")
                if mode & 0o170000 == 0o040000:
                    todo.append((child, path + "/"))
                    continue
                if child not in got.blob_sizes:
                    if not reach.has(child):
                        raise _Refused(f"the push refers to {path} ({child}), which it did not send and this "
                                       "repository does not hold")
                    continue
                pointer = parse_pointer(got.small_blobs.get(child, b""))
                if pointer is not None:
                    pointers[pointer.sha256] = (path, pointer.size)
                elif got.blob_sizes[child] > limit:
                    raise _Refused(f"{path} is {got.blob_sizes[child]} bytes, over the {limit}-byte limit for "
                                   "regular files: track it with git-lfs (git lfs track) and push again")
        if pointers:
            with self.hub.db.read() as conn:
                for sha256, (path, size) in sorted(pointers.items()):
                    stored = repos_q.has_lfs_object(conn, repo.id, sha256)
                    if stored is None or stored != size:
                        raise _Refused(f"{path}: its LFS object {sha256} is not on the hub (git lfs push "
                                       "uploads it; is git-lfs installed?)")
            from modelyard.services.scans import check_commit

            try:  # MODELYARD_SCAN_REFUSE_UNSAFE: the large files are scanned before the push lands
                check_commit(self.hub, lambda: repo.id, [], [(path, sha) for sha, (path, _s) in pointers.items()])
            except RefusedContentError as exc:
                raise _Refused(exc.message) from exc

    def _descends(self, new: str, old: str, got: _Received) -> bool:
        seen: set[str] = set()
        todo = [new]
        while todo:
            oid = todo.pop()
            if oid == old:
                return True
            if oid in seen:
                continue
            seen.add(oid)
            commit = got.commits.get(oid) or cast(Commit, self.hub.objects.get(Oid(oid)))
            todo.extend(p.decode() for p in commit.parents)
        return False

    # -- storing ------------------------------------------------------------------------------

    def _store(
        self, repo: Repo, updates: list[RefUpdate], pack: IO[bytes] | None, reach: _Reach, new_commits: list[str],
        got: _Received,
    ) -> list[int]:
        hub, principal = self.hub, self.principal
        wanted = set(new_commits)
        events = []
        with hub.db.write() as conn:
            refs_q.lock(conn, repo.id)
            if pack is not None and new_commits:
                self._insert(conn, pack, reach, wanted)
            now = utcnow()
            for oid in new_commits:
                objects_q.add_repo_commit(hub.db, conn, repo.id, oid, now)
            for u in updates:
                old = None if u.old == ZERO else u.old
                new = None if u.new == ZERO else u.new
                if not refs_q.compare_and_swap(conn, repo.id, u.ref, old, new):
                    raise _Rollback(u.ref)
                if u.ref == f"refs/heads/{DEFAULT_BRANCH}":
                    search_q.change_sort_keys(conn, repo.id, last_modified=now)
                if new is not None and pr_number(u.ref) is not None:
                    commit = got.commits.get(new) or cast(Commit, hub.objects.get(Oid(new)))
                    note_commit(conn, repo, u.ref, new, _subject(commit.message), principal.account_id)
                events.append(new_event(hub, conn, repo.id, "ref", u.ref, old, new, principal.account_id))
        return events

    def _insert(self, conn: Connection, pack: IO[bytes], reach: _Reach, commits: set[str]) -> None:
        """The pack's objects that the new commits reach (the checks passed), in batches."""
        for batch in _rows(pack, reach.resolve, lambda oid: oid in commits):
            objects_q.put_many(self.hub.db, conn, batch)


_Row = tuple[str, int, bytes, str | None, int | None]


def _rows(pack: IO[bytes], resolve: Callable[[str], tuple[int, bytes]],
          keep_commit: Callable[[str], bool]) -> Iterator[list[_Row]]:
    """A pack's objects as ``git_objects`` rows (LFS pointers with their facts), in batches of at
    most 500 objects or 8 MiB; annotated tags and the commits ``keep_commit`` refuses are left out."""
    batch: list[_Row] = []
    held = 0
    for obj in iter_pack(pack, resolve):
        oid = obj.id.decode()
        if isinstance(obj, Tag) or (isinstance(obj, Commit) and not keep_commit(oid)):
            continue
        data = obj.as_raw_string()
        pointer = parse_pointer(data) if isinstance(obj, Blob) else None
        batch.append((oid, obj.type_num, data, pointer.sha256 if pointer else None,
                      pointer.size if pointer else None))
        held += len(data)
        if held > 8 * 1024 * 1024 or len(batch) >= 500:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def pack_bounds(hub: Hub) -> PackBounds:
    """What one pack may hold: a push's, a mirror's fetch, a bundle's."""
    s = hub.settings
    return PackBounds(max(s.git_max_object_size, s.max_regular_file_size), s.git_max_push_inflated,
                      s.git_max_push_objects)


def ingest_pack(hub: Hub, tips: list[str], pack: IO[bytes]) -> dict[str, Commit]:
    """Store the objects of a pack fetched from another hub (a mirror's: services/mirror.py), with
    none of a push's rules: thin-pack bases may be any object the ``tips`` (the repo's refs) reach.
    Each batch is its own transaction: the objects are content-addressed, and no repo sees them
    until its ``repo_commits`` name their commits (the caller's one short transaction after this).
    Returns the pack's commits, parsed."""
    reach = _Reach(hub, tips)
    check_pack_bounds(pack, pack_bounds(hub))
    commits: dict[str, Commit] = {}
    for obj in iter_pack(pack, reach.resolve):  # checked whole before anything is stored
        try:
            obj.check()
        except ObjectFormatException as exc:
            raise PackError(f"Object {obj.id.decode()} is malformed: {exc}") from None
        if isinstance(obj, Commit):
            commits[obj.id.decode()] = obj
    for batch in _rows(pack, reach.resolve, lambda oid: True):
        with hub.db.write() as conn:
            objects_q.put_many(hub.db, conn, batch)
    return commits


class _Rollback(_Refused):
    def __init__(self, ref: str) -> None:
        super().__init__("the ref moved while pushing (another push or commit won): fetch first", ref)


def _subject(message: bytes) -> str:
    return message.decode("utf-8", "replace").split("\n", 1)[0].strip() or "Push"
