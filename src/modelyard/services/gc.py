"""``modelyard gc``: reclaim LFS objects, Xet files, xorbs and shards that no ref needs.

A large file stays while any ref of the repository that holds it reaches a pointer to it. What
was uploaded less than the grace period ago is kept whatever refs say, so uploads in flight (a
client uploads first and commits afterwards) and clients' local dedup caches are not broken.
Each deletion re-checks, in its own transaction, that nothing references the row any more; the
database's foreign keys settle races with concurrent uploads. Bodies leave the blob store only
after their row is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from dulwich.objects import Commit, Tree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.tables import repos
from modelyard.ids import Oid
from modelyard.services.hub import Hub, utcnow
from modelyard.services.xet import shard_key, xorb_key
from modelyard.storage.base import lfs_key
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
    skipped: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return self.lfs_bytes + self.xorb_bytes + self.shard_bytes


def reachable_pointers(hub: Hub, repo_pk: int) -> set[str]:
    """The sha256 of every LFS pointer that any ref of the repository reaches."""
    with hub.db.read() as conn:
        targets = set(refs_q.all_refs(conn, repo_pk).values())
    found: set[str] = set()
    seen: set[str] = set()
    commits = list(targets)
    trees: list[str] = []
    while commits:
        oid = commits.pop()
        if oid in seen:
            continue
        seen.add(oid)
        info = commit_info(cast(Commit, hub.objects.get(Oid(oid))))
        trees.append(info.tree)
        commits.extend(p for p in info.parents if p not in seen)
    blobs: list[Oid] = []
    while trees:
        oid = trees.pop()
        if oid in seen:
            continue
        seen.add(oid)
        for entry in cast(Tree, hub.objects.get(Oid(oid))).items():
            child = entry.sha.decode()
            if entry.mode == DIR_MODE:
                trees.append(child)
            elif child not in seen:
                seen.add(child)
                blobs.append(Oid(child))
    for _oid, (_size, sha, _lfs_size) in hub.objects.meta(blobs).items():
        if sha is not None:
            found.add(sha)
    return found


def collect(hub: Hub, grace: int | None = None, dry_run: bool = False) -> GcReport:
    """Remove what no ref needs and that is older than ``grace`` seconds (default: the setting)."""
    grace = hub.settings.gc_grace_period if grace is None else grace
    cutoff = utcnow() - timedelta(seconds=grace)
    report = GcReport()
    with hub.db.read() as conn:
        repo_ids = [int(r.id) for r in conn.execute(select(repos.c.id))]
        lfs_rows = lfs_q.all_repo_objects(conn)
        xet_rows = xet_q.all_repo_files(conn)
    reach = {pk: reachable_pointers(hub, pk) for pk in repo_ids}
    everywhere = set().union(*reach.values()) if reach else set()

    # 1. Each repository lets go of the large files none of its refs reach.
    released: set[int] = set()
    with hub.db.write() as conn:
        for pk, sha, pushed in lfs_rows:
            if sha not in reach.get(pk, set()) and pushed < cutoff:
                report.repo_files_released += 1
                released.add(pk)
                if not dry_run:
                    lfs_q.forget_repo_object(conn, pk, sha)
        for pk, sha, pushed in xet_rows:
            if sha not in reach.get(pk, set()) and pushed < cutoff:
                report.repo_files_released += 1
                released.add(pk)
                if not dry_run:
                    xet_q.forget_repo_file(conn, pk, sha)
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

        for pk in sorted(released):
            refresh_used_storage(hub, pk)
    return report


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

