"""The catalog indexer: facts derived from the files at the head of a repo's default branch.

Reads only what it needs: small files whole (README.md, config.json, index files) and the
headers of weight files through ranged reads of the blob store. Never the weights themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, cast

from dulwich.objects import Blob, Commit

from modelyard.catalog import facts as facts_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog.facts import RepoFacts
from modelyard.catalog.repos import Repo
from modelyard.errors import HubError
from modelyard.ids import Oid
from modelyard.metadata.reader import MetadataError, Read
from modelyard.services.files import FileEntry, file_entries
from modelyard.services.hub import Hub
from modelyard.storage.base import BlobNotFoundError, BlobStoreError, lfs_key
from modelyard.versioning.objects import commit_info
from modelyard.versioning.trees import walk

log = logging.getLogger("modelyard.indexer")
SMALL_FILE_LIMIT = 2 * 1024 * 1024
SEARCH_BODY_LIMIT = 100_000


class RepoFiles:
    """The files of one revision, readable by path: small files whole, big ones by range."""

    def __init__(self, hub: Hub, entries: list[FileEntry],
                 remote: Callable[[FileEntry], Read | None] | None = None) -> None:
        self._hub = hub
        self.entries = {e.path: e for e in entries if not e.is_dir}
        #: a mirror's large files not held yet: read in ranges from its upstream (services/mirror.py)
        self._remote = remote

    @property
    def paths(self) -> list[str]:
        return sorted(self.entries)

    def size(self, path: str) -> int | None:
        entry = self.entries.get(path)
        return None if entry is None else entry.size

    def reader(self, path: str) -> tuple[Read, int]:
        entry = self.entries.get(path)
        if entry is None:
            raise MetadataError(f"{path} is not in the repository")
        if entry.xet_hash is not None:  # uploaded through Xet: ranges rebuilt from its xorbs
            from modelyard.services.xet import read_range, stored_file

            hub, stored = self._hub, stored_file(self._hub, entry.xet_hash)

            def read_xet(offset: int, length: int) -> bytes:
                return b"".join(read_range(hub, stored, offset, offset + length))

            return read_xet, entry.size
        if entry.lfs_sha256 is not None:
            remote = self._remote(entry) if self._remote is not None else None
            if remote is not None:
                return remote, entry.size
            key = lfs_key(entry.lfs_sha256)
            blobs = self._hub.blobs

            def read(offset: int, length: int) -> bytes:
                return b"".join(blobs.read(key, offset, offset + length))

            return read, entry.size
        data = cast(Blob, self._hub.objects.get(entry.oid)).as_raw_string()

        def read_inline(offset: int, length: int) -> bytes:
            return data[offset : offset + length]

        return read_inline, len(data)

    def text(self, path: str) -> str | None:
        """A small file's text, or None if it is missing, too big or not UTF-8."""
        size = self.size(path)
        if size is None or size > SMALL_FILE_LIMIT:
            return None
        read, length = self.reader(path)
        try:
            return read(0, length).decode("utf-8")
        except UnicodeDecodeError:
            return None

    def json(self, path: str) -> dict[str, Any] | None:
        raw = self.text(path)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


Extractor = Callable[[Repo, RepoFiles, RepoFacts], None]


def compute_facts(hub: Hub, repo: Repo, files: RepoFiles, strict: bool = True) -> RepoFacts:
    """Run every extractor; one that fails on hostile input leaves its fields empty.

    A storage failure (a blob missing or unreadable) is not the content's fault: ``strict``
    (indexing, a job) raises it so that the job is retried; otherwise (facts of a revision
    computed for one request) the extractor's fields are left empty.
    """
    from modelyard.services.extractors import EXTRACTORS

    facts = RepoFacts()
    for extract in EXTRACTORS:
        try:
            extract(repo, files, facts)
        except (BlobNotFoundError, BlobStoreError) as exc:
            if strict:
                raise
            log.warning("facts of %s: %s skipped, storage failed: %s", repo.repo_id, extract.__name__, exc)
        except (MetadataError, HubError, ValueError, KeyError, TypeError, RecursionError) as exc:
            log.info("indexing %s: %s skipped: %s", repo.repo_id, extract.__name__, exc)
    return facts


def index_repo(hub: Hub, repo_pk: int, force: bool = True) -> bool:
    """Recompute a repo's catalog entry from its default branch; False if main moved meanwhile.

    Without ``force``, a repo already indexed at its head is left as it is.
    """
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, repo_pk)
        head = refs_q.get(conn, repo_pk, "refs/heads/main") if repo else None
    if repo is None or head is None:
        return True  # deleted meanwhile, or no default branch: nothing to index
    if not force and repo.indexed_commit == head:
        return True
    tree = commit_info(cast(Commit, hub.objects.get(Oid(head)))).tree
    entries = file_entries(hub, list(walk(hub.objects, tree)), repo_pk)
    with hub.db.read() as conn:  # permanently deleted large files have no bytes to read, ever
        purged = lfs_files_q.purged(conn, repo_pk, [e.lfs_sha256 for e in entries if e.lfs_sha256])
    remote = None
    if repo.upstream is not None:
        from modelyard.services.mirror import remote_reader

        remote = remote_reader(hub, repo, head)
    files = RepoFiles(hub, [e for e in entries if e.lfs_sha256 is None or e.lfs_sha256 not in purged], remote)
    facts = compute_facts(hub, repo, files)
    readme = files.text("README.md") or ""
    body = " ".join([readme[:SEARCH_BODY_LIMIT], " ".join(facts.tags)])
    with hub.db.write() as conn:
        if refs_q.get(conn, repo_pk, "refs/heads/main") != head:
            return False  # a newer commit landed; its own indexing wins
        facts_q.store(conn, repo_pk, head, facts)
        name = f"{repo.namespace} {repo.name} {repo.namespace}/{repo.name}"
        search_q.set_search_text(hub.db, conn, repo_pk, name, body, facts.tags)
    return True


def reindex(hub: Hub, repo_id: str | None = None, repo_type: str | None = None) -> int:
    """Recompute the catalog for one repo or for all of them; returns how many were indexed."""
    from sqlalchemy import select

    from modelyard.catalog.tables import repos
    from modelyard.errors import RepoNotFoundError

    stmt = select(repos.c.id)
    if repo_type:
        stmt = stmt.where(repos.c.type == repo_type)
    if repo_id:
        stmt = stmt.where(repos.c.key == repo_id.lower())
    with hub.db.read() as conn:
        ids = [row.id for row in conn.execute(stmt.order_by(repos.c.id))]
    if repo_id and not ids:
        raise RepoNotFoundError(f"Repository Not Found: {repo_id!r}")
    done = 0
    for pk in ids:
        while not index_repo(hub, pk):  # main moved while indexing: index the new head
            pass
        done += 1
    return done
