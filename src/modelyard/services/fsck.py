"""``modelyard fsck``: verify that everything every ref reaches is present and intact."""

from __future__ import annotations

import hashlib
from typing import cast

from dulwich.errors import FileFormatException
from dulwich.objects import Blob, Commit, ShaFile, Tree
from sqlalchemy import select

from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.tables import repos
from modelyard.ids import Oid
from modelyard.services.hub import Hub
from modelyard.services.xet import verify_file
from modelyard.storage.base import lfs_key
from modelyard.versioning.lfs import parse_pointer
from modelyard.versioning.objects import BLOB, COMMIT, DIR_MODE, TREE


def check(hub: Hub) -> list[str]:
    """Every problem found, one line each; an empty list means the hub is consistent."""
    problems: list[str] = []
    with hub.db.read() as conn:
        repo_rows = list(conn.execute(select(repos.c.id, repos.c.type, repos.c.namespace, repos.c.name,
                                             repos.c.upstream)))
        recorded = dict(lfs_q.all_objects(conn))
        ref_sets = {r.id: refs_q.all_refs(conn, r.id) for r in repo_rows}
        purged = lfs_files_q.all_purged(conn)
    seen: set[str] = set()
    lfs_needed: dict[str, str] = {}
    pointer_sizes: dict[str, int] = {}
    #: pointers only mirrors need: a mirror fetches its files when asked (services/mirror.py), so
    #: one it does not hold yet is not damage
    not_fetched: set[str] = set()
    for row in repo_rows:
        label = f"{row.type} {row.namespace}/{row.name}"
        # A repo that purged large files is walked on its own: trees it shares with other repos
        # must still be checked for them, with their pointers counted as needed.
        repo_purged = {sha for pk, sha in purged if pk == row.id}
        visited = set() if repo_purged else seen
        if "refs/heads/main" not in ref_sets[row.id]:
            problems.append(f"{label}: branch main is missing")
        for ref, target in sorted(ref_sets[row.id].items()):
            stack = [(target, COMMIT, f"{label} {ref}")]
            while stack:
                oid, expected, where = stack.pop()
                if oid in visited:
                    continue
                try:
                    obj = hub.objects.get(Oid(oid))
                except KeyError:
                    problems.append(f"{where}: object {oid} is missing")
                    continue
                except (FileFormatException, ValueError) as exc:
                    problems.append(f"{where}: object {oid} is unreadable ({exc})")
                    continue
                if obj.type_num != expected:
                    problems.append(f"{where}: object {oid} is a {obj.type_name.decode()}, not the expected type")
                    continue
                # obj.id is the id it was looked up by, not a hash: hash the stored bytes.
                actual = ShaFile.from_raw_string(obj.type_num, obj.as_raw_string()).id.decode()
                if actual != oid:
                    problems.append(f"{where}: object {oid} is corrupt (its bytes hash to {actual})")
                    continue
                visited.add(oid)
                if expected == COMMIT:
                    commit = cast(Commit, obj)
                    stack.append((commit.tree.decode(), TREE, where))
                    stack.extend((p.decode(), COMMIT, where) for p in commit.parents)
                elif expected == TREE:
                    for entry in cast(Tree, obj).items():
                        kind = TREE if entry.mode == DIR_MODE else BLOB
                        stack.append((entry.sha.decode(), kind, f"{where}:{entry.path.decode(errors='replace')}"))
                else:
                    pointer = parse_pointer(cast(Blob, obj).as_raw_string())
                    if pointer is not None and pointer.sha256 in repo_purged:
                        continue  # permanently deleted by the repo's owner: gone on purpose
                    if pointer is not None:
                        if row.upstream is not None and pointer.sha256 not in lfs_needed:
                            not_fetched.add(pointer.sha256)
                        elif row.upstream is None:
                            not_fetched.discard(pointer.sha256)
                        lfs_needed.setdefault(pointer.sha256, where)
                        pointer_sizes.setdefault(pointer.sha256, pointer.size)
                        if recorded.get(pointer.sha256, pointer.size) != pointer.size:
                            problems.append(f"{where}: LFS size differs from the recorded object")
    with hub.db.read() as conn:  # files that arrived through Xet: verified by reconstructing them
        xet_files = xet_q.files_by_sha256(conn, [s for s in lfs_needed if s not in recorded])
    for sha256, where in sorted(lfs_needed.items()):
        if sha256 not in recorded and sha256 in xet_files:
            found = xet_files[sha256]
            if found.size != pointer_sizes[sha256]:
                problems.append(f"{where}: Xet file {found.hash} has {found.size} bytes, the pointer says "
                                f"{pointer_sizes[sha256]}")
            problems.extend(f"{where}: Xet file {found.hash}: {p}" for p in verify_file(hub, found))
            continue
        if sha256 not in recorded:
            if sha256 not in not_fetched:
                problems.append(f"{where}: LFS object {sha256} is not recorded")
            continue
        problems.extend(_check_blob(hub, sha256, recorded[sha256], where))
    return problems


def _check_blob(hub: Hub, sha256: str, size: int, where: str) -> list[str]:
    key = lfs_key(sha256)
    actual = hub.blobs.size(key)
    if actual is None:
        return [f"{where}: LFS object {sha256} is missing from storage"]
    if actual != size:
        return [f"{where}: LFS object {sha256} has {actual} bytes, expected {size}"]
    digest = hashlib.sha256()
    for chunk in hub.blobs.read(key):
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        return [f"{where}: LFS object {sha256} is corrupt (content hashes to {digest.hexdigest()})"]
    return []
