"""``modelyard gc``: reclaim LFS objects, Xet files, xorbs and shards that no ref needs.

A large file stays while any ref of the repository that holds it reaches a pointer to it. What
was uploaded (or committed again) less than the grace period ago is kept whatever refs say, so
uploads in flight (a client uploads first and commits afterwards) and clients' local dedup caches
are not broken.

Races with writers are settled in the releasing transaction: gc lets go of a repository's files
only under the repository's row lock and only if its ``refs_version`` is still the one it read
before computing what the refs reach. Every ref change bumps that version, and commits take the
same lock before they check what the repository holds, so a commit, a branch or a tag that
re-references an old file by oid either lands before (gc sees the new version and skips the
repository this time) or after (the commit finds the file released and is refused; nothing is
lost). Each deletion of an object re-checks, in its own transaction, that no repository holds it
any more; the database's foreign keys settle races with concurrent uploads. Bodies leave the blob
store only after their row is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from dulwich.objects import Commit, Tree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelyard.catalog import buckets as buckets_q
from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import mirrors as mirrors_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import scans as scans_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.tables import repos
from modelyard.ids import Oid
from modelyard.services.hub import Hub, utcnow
from modelyard.services.lfs_files import purged_pointers, unpurged
from modelyard.services.xet import shard_key, xorb_key
from modelyard.storage.base import lfs_key
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE, commit_info


@dataclass
class GcReport:
    """What a collection removed (or, in a dry run, would remove)."""

    lfs_objects: int = 0
    lfs_bytes: int = 0
    xet_files: int = 0
    xorbs: int = 0
    xorb_bytes: int = 0
    shards: int = 0
    shard_bytes: int = 0
    repo_files_released: int = 0
    #: Multipart uploads left unfinished (their URLs expired) whose parts were removed.
    uploads_abandoned: int = 0
    upload_files: int = 0
    clone_packs: int = 0  # stored packs of deleted repositories removed
    staged_files: int = 0  # direct uploads never verified, their URLs expired a grace period ago
    file_scans: int = 0  # scan results of large files whose bytes were deleted
    skipped: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return self.lfs_bytes + self.xorb_bytes + self.shard_bytes


@dataclass(frozen=True)
class RepoSnapshot:
    """What one repository's refs and holdings were, read in one transaction."""

    repo_pk: int
    refs_version: int
    targets: frozenset[str]
    commits: tuple[str, ...]  # the commits that resolve by id in the repo
    lfs: tuple[tuple[str, datetime], ...]  # (sha256, pushed_at) of the LFS objects it holds
    xet: tuple[tuple[str, datetime], ...]  # the same for the files it received through Xet


@dataclass(frozen=True)
class Reach:
    commits: frozenset[str]
    pointers: frozenset[str]  # sha256 of every LFS pointer the commits' trees hold


def snapshot(hub: Hub, repo_pk: int) -> RepoSnapshot | None:
    with hub.db.read() as conn:
        version = refs_q.version(conn, repo_pk)
        if version is None:
            return None
        # A mirror's pinned commits count as refs: a commit it once served keeps resolving.
        return RepoSnapshot(
            repo_pk, version, frozenset(refs_q.all_refs(conn, repo_pk).values()) | mirrors_q.pins(conn, repo_pk),
            tuple(objects_q.repo_commit_ids(conn, repo_pk)),
            tuple((sha, when) for _pk, sha, when in lfs_q.repo_objects_pushed(conn, repo_pk)),
            tuple((sha, when) for _pk, sha, when in xet_q.repo_files_pushed(conn, repo_pk)),
        )


def reachable_pointers(hub: Hub, repo_pk: int, snap: RepoSnapshot) -> Reach:
    """The commits the refs of ``snap`` reach, and the sha256 of every LFS pointer in them."""
    commits = frozenset(c.oid for c in ancestors(hub.objects, [Oid(t) for t in snap.targets]))
    trees = [commit_info(cast(Commit, hub.objects.get(Oid(c)))).tree for c in commits]
    seen: set[str] = set()
    blobs: list[Oid] = []
    while trees:
        oid = trees.pop()
        if oid in seen:
            continue
        seen.add(oid)
        for entry in cast(Tree, hub.objects.get(Oid(oid))).items():
            child = entry.sha.decode()
            if entry.mode == DIR_MODE:
                trees.append(Oid(child))
            elif child not in seen:
                seen.add(child)
                blobs.append(Oid(child))
    pointers = frozenset(sha for _size, sha, _lfs in hub.objects.meta(blobs).values() if sha is not None)
    return Reach(commits, pointers)


def _release(
    hub: Hub, snap: RepoSnapshot, reach: Reach, cutoff: datetime, dry_run: bool, report: GcReport
) -> bool:
    """Let go of what ``reach`` does not hold, unless a ref moved since ``snap`` (then nothing:
    a commit, a new branch or tag may have made old files reachable again). True if released."""
    lfs = [sha for sha, pushed in snap.lfs if sha not in reach.pointers and pushed < cutoff]
    xet = [sha for sha, pushed in snap.xet if sha not in reach.pointers and pushed < cutoff]
    stale = [c for c in snap.commits if c not in reach.commits]
    if dry_run:
        report.repo_files_released += len(lfs) + len(xet)
        return bool(lfs or xet)
    with hub.db.write() as conn:
        # The row lock orders this against every commit and ref change of the repo (they take
        # it before checking what the repo holds); the version says whether one came between.
        if refs_q.lock(conn, snap.repo_pk) != snap.refs_version:
            report.skipped.append(f"repo {snap.repo_pk}: its refs moved while gc ran; collected next time")
            return False
        # Commits no ref reaches stop resolving by id: a branch or tag cannot bring back a commit
        # whose files are let go of here.
        objects_q.forget_repo_commits(conn, snap.repo_pk, stale)
        released = sum(lfs_q.forget_repo_object(conn, snap.repo_pk, sha, cutoff) for sha in lfs)
        released += sum(xet_q.forget_repo_file(conn, snap.repo_pk, sha, cutoff) for sha in xet)
    report.repo_files_released += released
    return released > 0


def collect(hub: Hub, grace: int | None = None, dry_run: bool = False) -> GcReport:
    """Remove what no ref needs and that is older than ``grace`` seconds (default: the setting)."""
    grace = hub.settings.gc_grace_period if grace is None else grace
    cutoff = utcnow() - timedelta(seconds=grace)
    report = GcReport()
    with hub.db.read() as conn:
        repo_ids = [int(r.id) for r in conn.execute(select(repos.c.id))]
        buckets = {int(r.id) for r in conn.execute(select(repos.c.id).where(repos.c.type == "bucket"))}

    # 1. Each repository lets go of the large files (and the commits) none of its refs reach.
    released: set[int] = set()
    everywhere: set[str] = set()
    # A pointer whose repository purged its object keeps nothing alive (services/lfs_files.py).
    purged = purged_pointers(hub)
    for pk in repo_ids:
        snap = snapshot(hub, pk)
        if snap is None:
            continue  # deleted meanwhile
        if pk in buckets:  # no refs: a bucket holds the files its paths name (services/buckets.py)
            with hub.db.read() as conn:
                reach = Reach(frozenset(), frozenset(buckets_q.held_sha256(conn, pk)))
        else:
            reach = reachable_pointers(hub, pk, snap)
        everywhere |= unpurged(reach.pointers, pk, purged)
        if _release(hub, snap, reach, cutoff, dry_run, report):
            released.add(pk)
    if dry_run:
        return report  # later steps depend on the rows step 1 would have removed

    # 2. Objects and files that no repository holds any more.
    with hub.db.read() as conn:
        lfs_unused = [(s, n) for s, n in lfs_q.unused_objects(conn, cutoff) if s not in everywhere]
        files_unused = xet_q.unused_files(conn, cutoff)
    for sha, size in lfs_unused:
        with hub.db.write() as conn:
            if lfs_q.delete_object(conn, sha):
                hub.blobs.delete(lfs_key(sha))
                report.lfs_objects += 1
                report.lfs_bytes += size
    for file_hash in files_unused:
        with hub.db.write() as conn:
            if xet_q.delete_file(conn, file_hash):
                report.xet_files += 1
    with hub.db.write() as conn:  # the scan results of what just went
        report.file_scans = scans_q.forget_unheld(conn)

    # 3. Xorbs no file uses, then shards that introduced no remaining file.
    with hub.db.read() as conn:
        xorbs_unused = xet_q.unused_xorbs(conn, cutoff)
    for xorb, size in xorbs_unused:
        try:
            with hub.db.write() as conn:
                if xet_q.delete_xorb(conn, xorb):
                    hub.blobs.delete(xorb_key(xorb))
                    report.xorbs += 1
                    report.xorb_bytes += size
        except IntegrityError:
            report.skipped.append(f"xorb {xorb}: referenced by a shard uploaded meanwhile")
    with hub.db.read() as conn:
        shards_unused = xet_q.unused_shards(conn, cutoff)
    for shard, size in shards_unused:
        with hub.db.write() as conn:
            if xet_q.delete_shard(conn, shard):
                hub.blobs.delete(shard_key(shard))
                report.shards += 1
                report.shard_bytes += size

    # 4. usedStorage of the repositories that let go of files.
    if released:
        from modelyard.services.commits import refresh_used_storage

        for pk in sorted(released - buckets):  # a bucket's size is the sum of its files
            refresh_used_storage(hub, pk)

    _abandoned_uploads(hub, cutoff, report)
    _expired_staged(hub, cutoff, report)
    _orphan_clone_packs(hub, report)
    return report


def _orphan_clone_packs(hub: Hub, report: GcReport) -> None:
    """6. Clone packs (``services/git.py``) of repositories that are gone. The packs of a live
    repo's earlier states are dropped by the job that makes the next one."""
    from modelyard.services.git import PACKS

    files = list(hub.blobs.keys(f"{PACKS}/"))
    with hub.db.read() as conn:
        live = {str(r.uid) for r in conn.execute(select(repos.c.uid))}
    for key in files:
        if key.split("/")[1] not in live:
            hub.blobs.delete(key)
            report.clone_packs += 1


def _expired_staged(hub: Hub, cutoff: datetime, report: GcReport) -> None:
    """6. Objects uploaded straight to the store that were never verified (``services/lfs.py``
    ``STAGED``): their key names when their URL expired; gone once that is before the cutoff."""
    from modelyard.services.lfs import STAGED

    before = cutoff.replace(tzinfo=UTC).timestamp()  # the cutoff is naive UTC

    def expired(key: str) -> bool:
        expiry = key.split("/")[1]
        return expiry.isdigit() and int(expiry) < before

    for key in list(hub.blobs.keys(f"{STAGED}/")):
        if expired(key):
            hub.blobs.delete(key)
            report.staged_files += 1
    parts = hub.blobs.direct_parts()
    if parts is not None:  # the store's multipart uploads never completed: their parts go too
        report.staged_files += parts.abort_expired(f"{STAGED}/", expired)


def _abandoned_uploads(hub: Hub, cutoff: datetime, report: GcReport) -> None:
    """5. Multipart uploads nobody can finish: started ``upload_url_ttl`` before the cutoff (their
    URLs expired a grace period ago), or whose record is gone (a deleted repository, a completion
    that stopped between its last steps). Their files are listed before the records are read: a
    new upload's record exists before any of its files, so a live upload is never taken."""
    expired = cutoff - timedelta(seconds=hub.settings.upload_url_ttl)
    with hub.db.write() as conn:
        report.uploads_abandoned = lfs_q.drop_multiparts_started_before(conn, expired)
    files = list(hub.blobs.keys("uploads/"))
    with hub.db.read() as conn:
        live = lfs_q.multipart_ids(conn)
    for key in files:
        if key.split("/")[1] not in live:
            hub.blobs.delete(key)
            report.upload_files += 1


def usage(hub: Hub) -> dict[str, object]:
    """Per repository: logical bytes of its large files and the physical bytes they occupy."""
    from modelyard.services.xet import repo_usage

    out: list[dict[str, object]] = []
    with hub.db.read() as conn:
        rows = list(conn.execute(select(repos.c.id, repos.c.type, repos.c.namespace, repos.c.name,
                                        repos.c.used_storage)))
        for r in rows:
            lfs = lfs_q.repo_objects(conn, r.id)
            xet = repo_usage(conn, r.id)
            lfs_bytes = sum(size for _s, size in lfs)
            out.append({
                "repo": f"{r.namespace}/{r.name}", "type": r.type,
                "lfs_files": len(lfs), "lfs_bytes": lfs_bytes,
                "xet_files": xet.files, "xet_logical_bytes": xet.logical, "xet_physical_bytes": xet.physical,
                "logical_bytes": lfs_bytes + xet.logical, "physical_bytes": lfs_bytes + xet.physical,
                "used_storage": int(r.used_storage),
            })
        lfs_all = lfs_q.all_objects(conn)
        totals = xet_q.totals(conn)
    return {"repos": out, "lfs_objects": len(lfs_all), "lfs_bytes": sum(s for _h, s in lfs_all), **totals}

