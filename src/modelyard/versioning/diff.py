"""Comparing trees and commits: changed paths, merge bases, three-way merges, unified diffs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, cast

from dulwich.objects import Commit, ShaFile
from dulwich.patch import write_object_diff

from modelyard.errors import InvalidInputError
from modelyard.ids import Oid
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE, ObjectReader, commit_info
from modelyard.versioning.trees import TreeEditor, read_tree

#: A file as a tree holds it: (mode, blob oid); None where there is no file.
FileState = tuple[int, Oid] | None


def changes(
    reader: ObjectReader, old: Oid | None, new: Oid | None, prefix: str = "",
) -> dict[str, tuple[FileState, FileState]]:
    """Every file path whose content or mode differs between two trees: (before, after), None
    where there is no file. Identical subtrees are skipped without being read."""
    if old == new:
        return {}
    before = {name: (mode, oid) for name, mode, oid in read_tree(reader, old)} if old else {}
    after = {name: (mode, oid) for name, mode, oid in read_tree(reader, new)} if new else {}
    out: dict[str, tuple[FileState, FileState]] = {}
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        path = f"{prefix}{name}"
        a_dir, b_dir = a is not None and a[0] == DIR_MODE, b is not None and b[0] == DIR_MODE
        if a_dir or b_dir:
            out.update(changes(reader, a[1] if a is not None and a_dir else None,
                               b[1] if b is not None and b_dir else None, f"{path}/"))
        a_file, b_file = None if a_dir else a, None if b_dir else b
        if a_file is not None or b_file is not None:
            out[path] = (a_file, b_file)
    return out


def changed_files(reader: ObjectReader, old: Oid | None, new: Oid | None) -> dict[str, FileState]:
    """The files that differ between two trees, with their state in ``new`` (None: deleted)."""
    return {path: after for path, (_before, after) in changes(reader, old, new).items()}


def merge_base(reader: ObjectReader, ours: Oid, theirs: Oid) -> Oid | None:
    """The newest commit both histories share (None if they share none)."""
    theirs_all = {c.oid for c in ancestors(reader, [theirs])}
    for c in ancestors(reader, [ours]):
        if c.oid in theirs_all:
            return c.oid
    return None


def tree_of(reader: ObjectReader, commit: Oid) -> Oid:
    return commit_info(cast(Commit, reader.get(commit))).tree


def conflicts(ours: dict[str, FileState], theirs: dict[str, FileState]) -> list[str]:
    """Paths both sides changed to different results, or where one side's file is the other
    side's folder (``a`` against ``a/b``)."""
    found = {p for p in ours.keys() & theirs.keys() if ours[p] != theirs[p]}
    for side, other in ((ours, theirs), (theirs, ours)):
        for path in side:
            parts = path.split("/")
            found.update(path for i in range(1, len(parts)) if "/".join(parts[:i]) in other)
    return sorted(found)


def apply_changes(reader: ObjectReader, base_tree: Oid, changes: dict[str, FileState]) -> TreeEditor:
    """A ``TreeEditor`` on ``base_tree`` with ``changes`` applied (write it to get the tree)."""
    editor = TreeEditor(reader, base_tree)
    # Deletions first: a file may take the name of a folder whose files are going away.
    for path, state in sorted(changes.items()):
        if state is None and editor.get(path) is not None:
            editor.delete(path, folder=False)
    for path, state in sorted(changes.items()):
        if state is None:
            continue
        try:
            editor.put_file(path, state[1], state[0])
        except InvalidInputError:
            # A file where a folder is: the folder's files are all among the deletions (a tree
            # holds no file under a file's name; a merge refuses such paths as conflicts first).
            editor.delete(path, folder=True)
            editor.put_file(path, state[1], state[0])
    return editor


class _Store:
    """dulwich's ``store[sha]`` over our object reader."""

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader

    def __getitem__(self, sha: bytes) -> ShaFile:
        return self._reader.get(Oid(sha.decode()))


def _diff_pieces(reader: ObjectReader, old: Oid | None, new: Oid | None) -> Iterator[tuple[str, bytes]]:
    store = _Store(reader)
    for path, (a, b) in sorted(changes(reader, old, new).items()):
        old_file = (path.encode(), a[0], a[1].encode()) if a else (None, None, None)
        new_file = (path.encode(), b[0], b[1].encode()) if b else (None, None, None)
        out = io.BytesIO()
        # Our reader stands in for dulwich's object store: it only asks ``store[sha]``.
        write_object_diff(out, cast(Any, store), cast(Any, old_file), cast(Any, new_file))
        yield path, out.getvalue()


def unified_diff(reader: ObjectReader, old: Oid | None, new: Oid | None, limit: int) -> str:
    """A git-style unified diff from tree ``old`` to tree ``new`` (LFS files as their pointer
    text), cut at ``limit`` bytes with a note."""
    out = bytearray()
    for _path, piece in _diff_pieces(reader, old, new):
        if len(out) + len(piece) > limit:
            out += b"\n[diff truncated]\n"
            break
        out += piece
    return out.decode("utf-8", "replace")


def file_diffs(
    reader: ObjectReader, old: Oid | None, new: Oid | None, limit: int
) -> tuple[list[tuple[str, str]], bool]:
    """The same diff file by file: (path, its git diff text), and whether it was cut at ``limit``
    bytes in all (the files past it are left out)."""
    out: list[tuple[str, str]] = []
    used = 0
    for path, piece in _diff_pieces(reader, old, new):
        used += len(piece)
        if used > limit:
            return out, True
        out.append((path, piece.decode("utf-8", "replace")))
    return out, False
