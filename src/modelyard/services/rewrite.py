"""Rewrite a repository's history without the pointers to some large files (``rewriteHistory``).

Every commit any ref reaches is rebuilt with the same author, committer, dates and message, on the
rebuilt parents, with its tree stripped of the LFS pointers to the given objects (folders left
empty go too). Commits that held none of them and whose ancestors held none keep their ids; the
others get new ids, the refs move to them by compare-and-swap, and the old ids stop resolving
in the repository (as after a squash). One event per moved ref refreshes the catalog and storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from dulwich.objects import Commit, ObjectID, Tree
from sqlalchemy import Connection

from modelyard.catalog import objects as objects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog.repos import Repo
from modelyard.errors import ConflictError
from modelyard.ids import Oid
from modelyard.services.events import new_event
from modelyard.services.hub import Hub, OverlayReader, utcnow
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE, RawObject, raw

Row = tuple[str, int, bytes, str | None, int | None]


class _Rewriter:
    def __init__(self, hub: Hub, shas: set[str]) -> None:
        self.hub = hub
        self.shas = shas
        self.trees: dict[Oid, Oid | None] = {}  # old tree -> stripped tree (None: left empty)
        self.commits: dict[Oid, Oid] = {}
        self.new: dict[str, RawObject] = {}

    def _keep(self, obj: Tree | Commit) -> Oid:
        r = raw(obj)
        self.new[r.oid] = r
        return r.oid

    def tree(self, oid: Oid) -> Oid | None:
        if oid in self.trees:
            return self.trees[oid]
        old = cast(Tree, self.hub.objects.get(oid))
        entries = list(old.items())
        metas = self.hub.objects.meta([Oid(e.sha.decode()) for e in entries if e.mode != DIR_MODE])
        stripped = Tree()
        changed = False
        for e in entries:
            child = Oid(e.sha.decode())
            if e.mode == DIR_MODE:
                sub = self.tree(child)
                changed |= sub != child
                if sub is not None:
                    stripped.add(e.path, e.mode, ObjectID(sub.encode()))
            elif metas.get(child, (0, None, None))[1] in self.shas:
                changed = True
            else:
                stripped.add(e.path, e.mode, e.sha)
        result: Oid | None = oid
        if changed:
            result = self._keep(stripped) if stripped.items() else None
        self.trees[oid] = result
        return result

    def commit(self, head: Oid) -> Oid:
        """The rewritten id of ``head``, its ancestors rewritten first (iteratively: histories are deep)."""
        stack = [head]
        while stack:
            oid = stack[-1]
            if oid in self.commits:
                stack.pop()
                continue
            old = cast(Commit, self.hub.objects.get(oid))
            parents = [Oid(p.decode()) for p in old.parents]
            todo = [p for p in parents if p not in self.commits]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            tree = self.tree(Oid(old.tree.decode()))
            if tree is None:  # the root left empty: an empty tree, as git writes it
                tree = self._keep(Tree())
            new_parents = [self.commits[p] for p in parents]
            if tree == old.tree.decode() and new_parents == parents:
                self.commits[oid] = oid
                continue
            rebuilt = cast(Commit, old.copy())
            rebuilt.tree = ObjectID(tree.encode())
            rebuilt.parents = [ObjectID(p.encode()) for p in new_parents]
            self.commits[oid] = self._keep(rebuilt)
        return self.commits[head]


def rewrite_without(
    hub: Hub, conn: Connection, repo: Repo, shas: Iterable[str], actor_id: int | None
) -> list[int]:
    """Rewrite every ref of ``repo`` (in the caller's write transaction, under the repo's row
    lock) without the pointers to ``shas``; the ids of the events of the refs that moved."""
    wanted = set(shas)
    if not wanted:
        return []
    rewriter = _Rewriter(hub, wanted)
    refs = refs_q.all_refs(conn, repo.id)
    moves = {ref: rewriter.commit(Oid(target)) for ref, target in refs.items()}
    moves = {ref: new for ref, new in moves.items() if new != refs[ref]}
    if not moves:
        return []
    rows: list[Row] = [(r.oid, r.type_num, r.data, None, None) for r in rewriter.new.values()]
    objects_q.put_many(hub.db, conn, rows)
    now = utcnow()
    for new in set(moves.values()):
        for c in ancestors(OverlayReader(hub.objects, rows), [new]):
            objects_q.add_repo_commit(hub.db, conn, repo.id, c.oid, now)
    events = []
    for ref, new in sorted(moves.items()):
        if not refs_q.compare_and_swap(conn, repo.id, ref, refs[ref], new):
            raise ConflictError(f"{ref} moved while its history was rewritten; try again")
        events.append(new_event(hub, conn, repo.id, "ref", ref, refs[ref], new, actor_id))
    reachable = {c.oid for c in ancestors(OverlayReader(hub.objects, rows), [Oid(t) for t in
                                                                          refs_q.all_refs(conn, repo.id).values()])}
    stale = [oid for oid in objects_q.repo_commit_ids(conn, repo.id) if oid not in reachable]
    objects_q.forget_repo_commits(conn, repo.id, stale)
    return events
