"""Editing git trees: apply file additions and deletions, write only the changed trees."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union, cast

from dulwich.objects import ObjectID, ShaFile, Tree

from modelyard.errors import EntryNotFoundError, InvalidInputError
from modelyard.ids import Oid
from modelyard.versioning.objects import DIR_MODE, FILE_MODE, ObjectReader, RawObject, raw


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree: ``path`` is from the repo root."""

    path: str
    mode: int
    oid: Oid

    @property
    def is_dir(self) -> bool:
        return self.mode == DIR_MODE


def read_tree(reader: ObjectReader, oid: Oid) -> list[tuple[str, int, Oid]]:
    tree = cast(Tree, reader.get(oid))
    return [(e.path.decode("utf-8", "surrogateescape"), e.mode, Oid(e.sha.decode())) for e in tree.items()]


def lookup(reader: ObjectReader, root: Oid, path: str) -> TreeEntry | None:
    """Find ``path`` under the tree ``root`` (a file or a folder), or None.

    One dictionary look-up per path segment (trees are cached parsed): the cost does not grow
    with the size of the folders on the way.
    """
    if path == "":
        return TreeEntry("", DIR_MODE, root)
    current = root
    parts = path.split("/")
    for i, part in enumerate(parts):
        tree = cast(Tree, reader.get(current))
        try:
            mode, sha = tree[part.encode("utf-8", "surrogateescape")]
        except (KeyError, UnicodeEncodeError):
            return None
        oid = Oid(sha.decode())
        if i == len(parts) - 1:
            return TreeEntry(path, mode, oid)
        if mode != DIR_MODE:
            return None
        current = oid
    return None


def walk(reader: ObjectReader, root: Oid, prefix: str = "", recursive: bool = True) -> Iterator[TreeEntry]:
    """Entries under a tree, folders before their contents, in git order."""
    for name, mode, oid in read_tree(reader, root):
        path = f"{prefix}{name}"
        entry = TreeEntry(path, mode, oid)
        yield entry
        if recursive and mode == DIR_MODE:
            yield from walk(reader, oid, path + "/", recursive)


def added_files(reader: ObjectReader, old: Oid | None, new: Oid, prefix: str = "") -> Iterator[TreeEntry]:
    """The files of tree ``new`` that tree ``old`` does not hold at the same path with the same
    content (every file when ``old`` is None); folders the two share are not opened."""
    before = {name: (mode, oid) for name, mode, oid in read_tree(reader, old)} if old is not None else {}
    for name, mode, oid in read_tree(reader, new):
        path = f"{prefix}{name}"
        if before.get(name) == (mode, oid):
            continue
        if mode == DIR_MODE:
            was_mode, was_oid = before.get(name, (0, None))
            yield from added_files(reader, was_oid if was_mode == DIR_MODE else None, oid, path + "/")
        else:
            yield TreeEntry(path, mode, oid)


_Child = Union["_Dir", tuple[int, Oid], None]  # a folder, a file (mode, oid), or deleted


@dataclass
class _Dir:
    """A folder being edited: its stored tree (if any) and what changed in it, by name.

    Only the changes are kept in Python: a commit that adds one file to a folder of 10,000 costs
    a dictionary copy of that folder (in C), not 10,000 Python objects.
    """

    oid: Oid | None
    changes: dict[str, _Child] = field(default_factory=dict)
    dirty: bool = False
    _base: Tree | None = field(default=None, repr=False)


class TreeEditor:
    """Applies additions and deletions to a tree, loading only the folders touched."""

    def __init__(self, reader: ObjectReader, root: Oid | None) -> None:
        self._reader = reader
        self._root = _Dir(root)

    def _base(self, node: _Dir) -> Tree | None:
        if node._base is None and node.oid is not None:
            node._base = cast(Tree, self._reader.get(node.oid))
        return node._base

    def _child(self, node: _Dir, name: str) -> _Child:
        """What ``name`` is in ``node`` now (its change, else its stored entry)."""
        if name in node.changes:
            return node.changes[name]
        base = self._base(node)
        if base is None:
            return None
        try:
            mode, sha = base[name.encode("utf-8", "surrogateescape")]
        except KeyError:
            return None
        if mode == DIR_MODE:
            folder = _Dir(Oid(sha.decode()))
            node.changes[name] = folder  # edits below it are kept in it
            return folder
        return (mode, Oid(sha.decode()))

    def _walk_to(self, parts: list[str], create: bool, path: str) -> list[_Dir] | None:
        nodes = [self._root]
        for part in parts:
            child = self._child(nodes[-1], part)
            if child is None:
                if not create:
                    return None
                child = _Dir(None)
                nodes[-1].changes[part] = child
            elif not isinstance(child, _Dir):
                if not create:
                    return None
                raise InvalidInputError(
                    f"Cannot add {path!r}: {'/'.join(parts[: len(nodes)])!r} is a file"
                )
            nodes.append(child)
        return nodes

    def put_file(self, path: str, oid: Oid, mode: int = FILE_MODE) -> None:
        *folders, name = path.split("/")
        nodes = self._walk_to(folders, create=True, path=path)
        assert nodes is not None
        if isinstance(self._child(nodes[-1], name), _Dir):
            raise InvalidInputError(f"Cannot add file {path!r}: a folder has that name")
        nodes[-1].changes[name] = (mode, oid)
        for node in nodes:
            node.dirty = True

    def get(self, path: str) -> tuple[int, Oid] | None:
        *folders, name = path.split("/")
        nodes = self._walk_to(folders, create=False, path=path)
        if nodes is None:
            return None
        child = self._child(nodes[-1], name)
        return child if isinstance(child, tuple) else None

    def delete(self, path: str, folder: bool | None) -> None:
        """Remove the file (``folder=False``), the folder with everything in it (``True``), or
        whichever of the two ``path`` names (``None``)."""
        *folders, name = path.split("/")
        nodes = self._walk_to(folders, create=False, path=path)
        child = None if nodes is None else self._child(nodes[-1], name)
        if nodes is None or child is None or (folder is not None and isinstance(child, _Dir) != folder):
            kind = "folder" if folder else "file"
            raise EntryNotFoundError(
                f"Cannot delete {path!r}: A {kind} with this name doesn't exist"
                if folder
                else f"Cannot delete {path!r}: A file with this name doesn't exist"
            )
        nodes[-1].changes[name] = None
        for node in nodes:
            node.dirty = True

    def write(self) -> tuple[Oid, list[RawObject]]:
        """Encode every changed tree; returns the root id and the new tree objects."""
        new: list[RawObject] = []
        oid = self._write(self._root, new)
        if oid is None:  # an empty repository still has a (empty) root tree
            empty = raw(Tree())
            new.append(empty)
            oid = empty.oid
        return oid, new

    def _write(self, node: _Dir, new: list[RawObject]) -> Oid | None:
        if not node.dirty:
            return node.oid
        base = self._base(node)
        # A private copy of the stored tree (parsing its raw form is one C call), then the changes.
        tree = Tree() if base is None else cast(Tree, ShaFile.from_raw_string(Tree.type_num, base.as_raw_string()))
        for name, child in node.changes.items():
            key = name.encode("utf-8", "surrogateescape")
            if isinstance(child, _Dir):
                child_oid = self._write(child, new)
                if child_oid is None:  # git has no empty folders
                    if key in tree:
                        del tree[key]
                    continue
                tree[key] = (DIR_MODE, ObjectID(child_oid.encode()))
            elif child is None:
                if key in tree:
                    del tree[key]
            else:
                tree[key] = (child[0], ObjectID(child[1].encode()))
        if not len(tree) and node is not self._root:
            return None
        obj = raw(tree)
        new.append(obj)
        return obj.oid
