"""LFS file management (hub-api.md §9.4): list a repository's large files, delete them for good.

A permanent deletion lets the repository go of the object at once, remembers that its owner
deleted it (``repo_purged_lfs``), and removes the bytes from the blob store unless another
repository holds the same object (objects are content-addressed and shared). With
``rewriteHistory`` (the client's default, what the Hub does) the history of every ref is rebuilt
without the pointers (``services/rewrite.py``): the files leave every tree and the old commit ids
stop resolving. Without it commit ids stay, the pointers stay in every tree, and ``/resolve`` of
such a pointer answers 410 with ``X-Error-Code: EntryNotFound`` (the client raises
``RemoteEntryNotFoundError`` carrying our message); a later upload of the same bytes to the
repository makes those revisions whole again. ``fsck`` does not count purged pointers as missing objects, and
``gc`` does not keep an object alive for a pointer whose repository purged it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from dulwich.objects import Commit, Tree
from sqlalchemy import Connection

from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.repos import Repo
from modelyard.errors import EntryNotFoundError, InvalidInputError
from modelyard.ids import Oid, validate_sha256
from modelyard.services.audit import record, repo_subject
from modelyard.services.auth import Principal, check_write
from modelyard.services.events import record_and_enqueue
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import find_repo
from modelyard.services.rewrite import rewrite_without
from modelyard.storage.base import lfs_key
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE, commit_info

#: The client sends deletions in batches of this many oids.
MAX_DELETIONS = 1000
PAGE = 1000


class EntryPurgedError(EntryNotFoundError):
    """The file's large object was permanently deleted from the repository (410 Gone)."""


def purged_message(sha256: str, path: str | None = None) -> str:
    what = f"{path} is not available: its LFS object {sha256}" if path else f"LFS object {sha256}"
    return f"{what} was permanently deleted from this repository"


@dataclass(frozen=True)
class LfsFile:
    """One item of ``lfs-files``: a large file the repository holds."""

    sha256: str
    size: int
    pushed_at: datetime
    filename: str  # a path that names it in some revision ("" if no ref reaches it)
    ref: str | None  # the ref through which that path was found
    xet_hash: str | None


def _ref_order(name: str) -> tuple[int, str]:
    return (0 if name == "refs/heads/main" else 1 if name.startswith("refs/heads/") else 2, name)


def _names(hub: Hub, refs: dict[str, str], wanted: set[str]) -> dict[str, tuple[str, str]]:
    """``sha256 -> (path, ref)`` for the wanted objects: heads of main, other branches, tags and
    pull requests first, then their histories; each tree is read once (trees are shared)."""
    found: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    order = sorted(refs, key=_ref_order)

    def scan(tree: Oid, ref: str) -> None:
        stack: list[tuple[Oid, str]] = [(tree, "")]
        while stack:
            oid, prefix = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            blobs: dict[Oid, str] = {}
            for entry in cast(Tree, hub.objects.get(oid)).items():
                path = prefix + entry.path.decode(errors="replace")
                if entry.mode == DIR_MODE:
                    stack.append((Oid(entry.sha.decode()), f"{path}/"))
                else:
                    blobs.setdefault(Oid(entry.sha.decode()), path)
            for blob, (_size, sha, _lfs_size) in hub.objects.meta(list(blobs)).items():
                if sha is not None and sha in wanted and sha not in found:
                    found[sha] = (blobs[blob], ref)

    for ref in order:
        scan(commit_info(cast(Commit, hub.objects.get(Oid(refs[ref])))).tree, ref)
    for ref in order:
        if len(found) == len(wanted):
            break
        for commit in ancestors(hub.objects, [Oid(refs[ref])]):
            scan(commit.tree, ref)
            if len(found) == len(wanted):
                break
    return found


def list_lfs_files(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, after: str | None, limit: int = PAGE
) -> tuple[list[LfsFile], str | None]:
    """A page of the large files the repo holds (by sha256, after ``after``) and the cursor of the
    next page (None on the last one). Anyone who may read the repo may list them."""
    if after is not None:
        validate_sha256(after)
    limit = max(1, min(limit, PAGE))
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        held = lfs_files_q.held_page(conn, repo.id, after, limit + 1)
        refs = refs_q.all_refs(conn, repo.id)
    page, more = held[:limit], len(held) > limit
    names = _names(hub, refs, {f.sha256 for f in page})
    out = []
    for f in page:
        filename, ref = names.get(f.sha256, ("", None))
        out.append(LfsFile(f.sha256, f.size, f.pushed_at, filename, ref, f.xet_hash))
    return out, (page[-1].sha256 if more else None)


@dataclass
class PurgeReport:
    deleted: list[str]  # the oids the repository held and let go of
    blobs_removed: int = 0  # LFS bodies removed from the blob store (no other repo held them)
    xet_files_removed: int = 0  # Xet file records no repo holds any more (their xorbs: next gc)


def _oids(shas: object) -> list[str]:
    if not isinstance(shas, list) or not all(isinstance(s, str) for s in shas):
        raise InvalidInputError("'deletions.sha' must be a list of sha256 oids")
    if len(shas) > MAX_DELETIONS:
        raise InvalidInputError(f"At most {MAX_DELETIONS} oids per request")
    for sha in shas:
        validate_sha256(sha)
    return list(dict.fromkeys(cast(list[str], shas)))


def authorize_purge(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> Repo:
    """Only writers may delete large files (checked before the body is read)."""
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
    check_write(principal, repo)
    return repo


def permanently_delete(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, shas: object,
    rewrite_history: bool = True,
) -> PurgeReport:
    """Delete large files from the repository for good, in every revision.

    Oids the repository does not hold are ignored (deleting twice is harmless). With
    ``rewrite_history`` (the client's default) every ref's history is rebuilt without the pointers
    to them (``services/rewrite.py``), as the Hub does; without it the pointers stay and their
    downloads answer 410.
    """
    oids = _oids(shas)
    now = utcnow()
    lfs_gone: list[str] = []
    xet_gone: list[str] = []
    report = PurgeReport([])
    events: list[int] = []
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_write(principal, repo)
        # The row lock orders this against commits (which check what the repo holds under it) and gc.
        refs_q.lock(conn, repo.id)
        for sha in oids:
            size, xet_hash = lfs_files_q.release(conn, repo.id, sha)
            if size is None:
                continue
            lfs_files_q.mark_purged(hub.db, conn, repo.id, sha, size, now)
            report.deleted.append(sha)
            lfs_gone.append(sha)
            if xet_hash is not None:
                xet_gone.append(xet_hash)
        if rewrite_history:  # also the pointers of objects purged earlier without a rewrite
            strip = set(report.deleted) | lfs_files_q.purged(conn, repo.id, oids)
            events = rewrite_without(hub, conn, repo, strip, principal.account_id if principal else None)
        if report.deleted:
            record(conn, "lfs.permanently_deleted", repo.owner_id, principal, repo_subject(repo.type, repo.repo_id),
                   {"oids": report.deleted, "rewriteHistory": rewrite_history})
    for event in events:
        record_and_enqueue(hub, event)
    # Bodies leave the store only after their row is gone, and only when no repository holds
    # the object (re-checked in the deleting transaction), as gc does.
    for sha in lfs_gone:
        with hub.db.write() as conn:
            deleted = lfs_q.delete_object(conn, sha)
        if deleted:
            hub.blobs.delete(lfs_key(sha))
            report.blobs_removed += 1
    for file_hash in xet_gone:
        with hub.db.write() as conn:
            if xet_q.delete_file(conn, file_hash):
                report.xet_files_removed += 1
    if report.deleted:
        from modelyard.services.commits import refresh_used_storage

        refresh_used_storage(hub, repo.id)
    return report


def downloadable(conn: Connection, repo_pk: int, path: str, sha256: str, commit: Oid) -> str | None:
    """The Xet hash a large file about to be downloaded was received as (None: an LFS object);
    EntryPurgedError if the repository's owner permanently deleted it. One statement: the
    download path's second and last round trip to the database."""
    return admitted(lfs_files_q.download_facts(conn, repo_pk, sha256), path, sha256, commit)


def admitted(facts: tuple[str | None, bool], path: str, sha256: str, commit: Oid) -> str | None:
    """The Xet hash of ``download_facts`` (``facts``), or EntryPurgedError if they say purged."""
    xet_hash, purged = facts
    if purged:
        raise EntryPurgedError(purged_message(sha256, path), commit=commit)
    return xet_hash


def purged_pointers(hub: Hub) -> set[tuple[int, str]]:
    """``(repo id, sha256)`` of every object a repository purged and holds no more."""
    with hub.db.read() as conn:
        return lfs_files_q.all_purged(conn)


def unpurged(pointers: Iterable[str], repo_pk: int, purged: set[tuple[int, str]]) -> frozenset[str]:
    """The pointers of a repository whose objects it did not purge."""
    return frozenset(sha for sha in pointers if (repo_pk, sha) not in purged)
