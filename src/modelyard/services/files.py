"""Reading files at a revision: resolve, tree listings, paths-info, last commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import cast

from dulwich.objects import Blob, Commit, Tree
from sqlalchemy import Connection

from modelyard.errors import EntryNotFoundError, InvalidInputError
from modelyard.ids import Oid, validate_path
from modelyard.services.auth import Principal
from modelyard.services.gating import check_download
from modelyard.services.hub import Hub
from modelyard.services.lfs_files import admitted, downloadable
from modelyard.services.mirror import UpstreamFile, send_whole, upstream_file
from modelyard.services.repos import Located, RepoSnapshot, locate, snapshot
from modelyard.services.tallies import client_key
from modelyard.services.xet import files_for
from modelyard.storage.base import lfs_key
from modelyard.storage.local import LocalBlobStore
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE, ObjectReader, commit_info
from modelyard.versioning.objects import CommitInfo as CommitInfo  # re-exported for the http layer
from modelyard.versioning.trees import TreeEntry, lookup, walk

#: The Hub's message for a path that is not in the revision (the client shows "Entry Not Found
#: for url: ..." before it, and maps the 404 by its ``X-Error-Code: EntryNotFound``).
ENTRY_NOT_FOUND = "Entry not found"


@dataclass(frozen=True)
class FileEntry:
    """A file or folder at a revision, with the sizes and LFS facts the API reports."""

    path: str
    is_dir: bool
    oid: Oid
    size: int
    lfs_sha256: str | None = None
    lfs_size: int | None = None
    pointer_size: int | None = None
    xet_hash: str | None = None  # set when the bytes were uploaded to this repo through Xet


@dataclass(frozen=True)
class ResolvedFile:
    """What ``/resolve`` needs: the commit, the entry, and where the bytes are."""

    commit: Oid
    entry: FileEntry
    blob_key: str | None  # LFS object in the blob store
    #: a regular file's bytes (None for a large file, or when not asked for: ``with_bytes``)
    inline: bytes | None
    #: a mirror's large file not held yet: fetched from the upstream as it is sent (services/mirror.py)
    upstream: UpstreamFile | None = None
    #: send the whole file whatever ``Range`` asks (a mirror's file whose transfer failed: ``send_whole``)
    whole: bool = False


def blob_pieces(hub: Hub, key: str, start: int, end: int) -> Iterator[bytes | memoryview]:
    """Bytes ``[start, end)`` of a stored blob, for streaming. Local blobs go out as memory-mapped
    windows: one copy (page cache -> socket) instead of two, and one thread hop per 8 MiB."""
    if isinstance(hub.blobs, LocalBlobStore):
        return hub.blobs.read_mapped(key, start, end)
    return hub.blobs.read(key, start, end)


def direct_url(hub: Hub, resolved: ResolvedFile, filename: str, media_type: str) -> str | None:
    """Where a client may GET an LFS file's bytes from the store itself (a presigned URL of S3
    storage, when direct downloads are on), as the Hub redirects to its CDN; None: the hub sends them.
    Regular files stay on the hub (their bytes are in the database), and so do Xet files for plain
    HTTP readers (their bytes are rebuilt from xorbs; Xet clients read the xorbs directly)."""
    if resolved.blob_key is None or not hub.settings.direct_downloads or resolved.whole:
        return None
    return hub.store_url(
        resolved.blob_key, hub.settings.download_url_ttl, filename=filename, media_type=media_type
    )


def file_entries(
    hub: Hub, items: list[TreeEntry], repo_pk: int | None = None, conn: Connection | None = None
) -> list[FileEntry]:
    """Sizes, LFS and Xet facts of tree entries (``conn``: reuse the caller's read transaction)."""
    metas = hub.objects.meta([i.oid for i in items if not i.is_dir])
    xet: dict[str, tuple[str, int]] = {}
    if repo_pk is not None:
        xet = files_for(hub, repo_pk, [m[1] for m in metas.values() if m[1] is not None], conn)
    out = []
    for item in items:
        if item.is_dir:
            out.append(FileEntry(item.path, True, item.oid, 0))
            continue
        size, lfs_sha, lfs_size = metas.get(item.oid, (0, None, None))
        if lfs_sha is not None and lfs_size is not None:
            xet_hash = xet[lfs_sha][0] if lfs_sha in xet else None
            out.append(FileEntry(item.path, False, item.oid, lfs_size, lfs_sha, lfs_size, size, xet_hash))
        else:
            out.append(FileEntry(item.path, False, item.oid, size))
    return out


#: The file whose metadata request stands for one load of a repo, as the Hub counts downloads:
#: every client loading a model asks for config.json once (GGUF-only repos: the .gguf file), and
#: `load_dataset` asks for README.md once.
def counts_as_download(repo_type: str, path: str) -> bool:
    if repo_type == "dataset":
        return path == "README.md"
    return path == "config.json" or ("/" not in path and path.endswith(".gguf"))


def resolve_file(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, path: str,
    counting_address: str | None = None, with_bytes: bool = True,
) -> ResolvedFile:
    """Find a file (``with_bytes``: read a regular file's bytes too; a HEAD does not need them);
    a metadata request the client flags as a download (``counting_address``: the
    caller's network address) counts one load of the repo when it finds the file the repo's loads
    are counted by, once per client and period (``services/tallies.py``).

    The hot path of every download and HEAD: one statement for the repo, its access and the
    branch or tag, trees from the cache, and for a large file its Xet and purge facts: in the
    same statement when ``hub.download_hints`` guessed the file right, else one more
    (``Database.quick``: no transaction around them); and no write (a count is only noted in
    memory, ``services/tallies.py``).
    """

    # The large file this path named at the commit the revision last resolved to: its facts
    # come with the repo and branch, and count if the revision still resolves to that commit.
    hint_key = (repo_type, repo_id.lower(), revision, path)
    hint = hub.download_hints.get(hint_key)

    def find(conn: Connection) -> Located:
        located = locate(conn, principal, repo_type, repo_id, revision, hint[1] if hint is not None else "")
        check_download(conn, principal, located.repo)
        return located

    located = hub.db.quick(find)
    repo, commit = located.repo, located.commit
    tree = commit_info(cast(Commit, hub.objects.get(commit))).tree
    try:
        validate_path(path)
    except InvalidInputError as exc:
        raise EntryNotFoundError(ENTRY_NOT_FOUND, commit=commit) from exc
    item = lookup(hub.objects, tree, path)
    if item is None or item.is_dir:
        raise EntryNotFoundError(ENTRY_NOT_FOUND, commit=commit)
    entry = file_entries(hub, [item])[0]
    sha256 = entry.lfs_sha256
    if sha256 is not None:
        if hint == (commit, sha256):
            xet_hash = admitted(located.facts, entry.path, sha256, commit)
        else:
            xet_hash = hub.db.quick(lambda conn: downloadable(conn, repo.id, entry.path, sha256, commit))
            hub.download_hints.put(hint_key, (commit, sha256))
        entry = replace(entry, xet_hash=xet_hash)
    if counting_address is not None and counts_as_download(repo_type, path):
        client = client_key(counting_address, principal.token_id if principal is not None else 0)
        hub.tallies.count_download(repo.id, client)
    whole = repo.upstream is not None and sha256 is not None and send_whole(hub, repo.id, sha256)
    if entry.xet_hash is not None:  # bytes rebuilt from xorbs (services/xet.py read_range)
        return ResolvedFile(commit, entry, None, None, whole=whole)
    if sha256 is not None:
        if repo.upstream is not None:  # a mirror: held here yet?
            pending = upstream_file(hub, repo, commit, entry.path, sha256, entry.size)
            if pending is not None:
                return ResolvedFile(commit, entry, None, None, pending, whole)
        return ResolvedFile(commit, entry, lfs_key(sha256), None, whole=whole)
    if not with_bytes:
        return ResolvedFile(commit, entry, None, None)
    blob = cast(Blob, hub.objects.get(item.oid))
    return ResolvedFile(commit, entry, None, blob.as_raw_string())


def list_tree(
    hub: Hub,
    principal: Principal | None,
    repo_type: str,
    repo_id: str,
    revision: str,
    path: str,
    recursive: bool,
) -> tuple[RepoSnapshot, list[FileEntry]]:
    """Entries under ``path``; a file path lists just that file."""
    snap = snapshot(hub, principal, repo_type, repo_id, revision)
    path = path.strip("/")
    item = lookup(hub.objects, snap.commit.tree, path) if path else None
    if path and item is None:
        raise EntryNotFoundError(ENTRY_NOT_FOUND, commit=snap.commit.oid)
    if item is not None and not item.is_dir:
        return snap, file_entries(hub, [item], snap.repo.id)
    root = item.oid if item is not None else snap.commit.tree
    return snap, file_entries(hub, list(tree_entries(hub, root, path, recursive)), snap.repo.id)


def tree_entries(hub: Hub, root: Oid, path: str, recursive: bool) -> tuple[TreeEntry, ...]:
    """The entries under the tree ``root`` (named ``path``), directories first when recursive;
    walked once per tree (trees never change) and kept in ``hub.walks``."""
    key = (root, path, recursive)
    found = hub.walks.get(key)
    if found is None:
        items = list(walk(hub.objects, root, f"{path}/" if path else "", recursive))
        if recursive:  # directories first, as the Hub lists them
            items.sort(key=lambda e: (not e.is_dir,))
        found = tuple(items)
        hub.walks.put(key, found)
    return found


def file_paths(hub: Hub, roots: list[Oid]) -> dict[Oid, list[str]]:
    """The file paths under each of several root trees (a listing's ``siblings``): the trees of
    one level of all of them are loaded in one statement, and each walk is cached."""
    out: dict[Oid, list[str]] = {}
    todo = []
    for root in dict.fromkeys(roots):
        cached = hub.walks.get((root, "", True))
        if cached is None:
            todo.append(root)
        else:
            out[root] = [e.path for e in cached if not e.is_dir]
    level = list(todo)
    while level:  # prefetch breadth first, so the walks below read only the cache
        hub.objects.prefetch(level)
        level = [Oid(e.sha.decode()) for oid in level
                 for e in cast(Tree, hub.objects.get(oid)).items() if e.mode == DIR_MODE]
    for root in todo:
        out[root] = [e.path for e in tree_entries(hub, root, "", True) if not e.is_dir]
    return out


def paths_info(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, paths: list[str]
) -> tuple[RepoSnapshot, list[FileEntry]]:
    snap = snapshot(hub, principal, repo_type, repo_id, revision)
    items = []
    for p in paths:
        p = p.strip("/")
        if not p:
            continue
        item = lookup(hub.objects, snap.commit.tree, p)
        if item is not None:
            items.append(item)
    return snap, file_entries(hub, items, snap.repo.id)


def history(hub: Hub, head: Oid, reader: ObjectReader | None = None) -> list[CommitInfo]:
    """Every ancestor of ``head``, newest first (by commit time, then discovery order); computed
    once per head (commits never change) and kept in ``hub.histories``."""
    if reader is not None:
        return ancestors(reader, [head])
    found = hub.histories.get(head)
    if found is None:
        found = tuple(ancestors(hub.objects, [head]))
        hub.histories.put(head, found)
    return list(found)


def path_history(hub: Hub, head: Oid, path: str) -> list[CommitInfo]:
    """The commits of ``head``'s history that changed ``path`` (a file or a folder), newest first:
    those where it differs from the first parent's (or that made it, with no parent). Kept in
    ``hub.histories`` by head and path, as the whole history is."""
    key = f"{head}:{path}"
    found = hub.histories.get(key)
    if found is None:
        commits = history(hub, head)
        at = {c.oid: (e.oid if (e := lookup(hub.objects, c.tree, path)) else None) for c in commits}
        found = tuple(c for c in commits if at[c.oid] != (at.get(c.parents[0]) if c.parents else None))
        hub.histories.put(key, found)
    return list(found)


def commit_list(hub: Hub, snap: RepoSnapshot, path: str = "") -> list[CommitInfo]:
    """The snapshot's history, or (with ``path``) the commits that changed that file or folder;
    EntryNotFoundError for a path no commit of it ever had."""
    if not path.strip("/"):
        return history(hub, snap.commit.oid)
    path = validate_path(path.strip("/"))
    found = path_history(hub, snap.commit.oid, path)
    if not found:
        raise EntryNotFoundError(f"{path} is not in the history of {snap.repo.repo_id}")
    return found


def large_files(hub: Hub, tree: Oid) -> set[str]:
    """The sha256 of every LFS pointer under ``tree``."""
    blobs = [e.oid for e in walk(hub.objects, tree) if not e.is_dir]
    return {sha for _size, sha, _lfs in hub.objects.meta(blobs).values() if sha is not None}


LAST_COMMIT_DEPTH = 500


def last_commits(hub: Hub, head: Oid, paths: list[str]) -> dict[str, CommitInfo]:
    """For each path, the newest commit (first-parent walk) that changed it."""
    result: dict[str, CommitInfo] = {}
    pending = set(paths)
    current = commit_info(cast(Commit, hub.objects.get(head)))
    depth = 0
    while pending and depth < LAST_COMMIT_DEPTH:
        parent = (
            commit_info(cast(Commit, hub.objects.get(current.parents[0]))) if current.parents else None
        )
        for p in list(pending):
            mine = lookup(hub.objects, current.tree, p)
            theirs = lookup(hub.objects, parent.tree, p) if parent else None
            if parent is None or (mine and mine.oid) != (theirs and theirs.oid):
                result[p] = current
                pending.discard(p)
        if parent is None:
            break
        current = parent
        depth += 1
    for p in pending:  # history deeper than we walk: report the oldest commit seen
        result[p] = current
    return result
