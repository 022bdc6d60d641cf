"""Walking the commit graph: the one place that follows parents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from dulwich.objects import Commit

from modelyard.ids import Oid
from modelyard.versioning.objects import CommitInfo, ObjectReader, commit_info


def ancestors(reader: ObjectReader, heads: Iterable[Oid]) -> list[CommitInfo]:
    """Every commit reachable from ``heads`` (included), each once, newest first (by commit
    time; ties keep the breadth-first order of discovery)."""
    seen: set[str] = set()
    out: list[CommitInfo] = []
    frontier = list(heads)
    while frontier:
        batch = []
        for oid in frontier:
            if oid in seen:
                continue
            seen.add(oid)
            batch.append(commit_info(cast(Commit, reader.get(oid))))
        out.extend(batch)
        frontier = [p for c in batch for p in c.parents if p not in seen]
    out.sort(key=lambda c: c.date, reverse=True)
    return out
