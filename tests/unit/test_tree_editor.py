"""``TreeEditor`` edits a stored tree incrementally; the result must be the tree built from scratch
from the same set of files (property test over random trees and random edits)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import EntryNotFoundError, InvalidInputError
from modelyard.ids import Oid
from modelyard.versioning.objects import ObjectReader, parse
from modelyard.versioning.trees import TreeEditor, walk

NAMES = st.sampled_from(["a", "b", "c.txt", "d", "é", "z z"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
BLOBS = [Oid(f"{i:040x}") for i in range(1, 5)]


class Store:
    """Trees by id, as the object cache serves them."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[int, bytes]] = {}

    def get(self, oid: Oid) -> object:
        type_num, data = self.objects[oid]
        return parse(type_num, data, oid)


def build(store: Store, files: dict[str, Oid]) -> Oid:
    editor = TreeEditor(store, None)  # type: ignore[arg-type]
    for path, oid in sorted(files.items()):
        editor.put_file(path, oid)
    root, new = editor.write()
    for obj in new:
        store.objects[obj.oid] = (obj.type_num, obj.data)
    return root


def files_of(store: Store, root: Oid) -> dict[str, Oid]:
    reader: ObjectReader = store  # type: ignore[assignment]
    return {e.path: e.oid for e in walk(reader, root) if not e.is_dir}


def consistent(files: dict[str, Oid]) -> dict[str, Oid]:
    """Drop paths that would need a file and a folder of the same name."""
    out: dict[str, Oid] = {}
    for path, oid in sorted(files.items(), key=lambda kv: len(kv[0])):
        parents = {"/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)}
        if parents & out.keys() or any(p.startswith(path + "/") for p in out):
            continue
        out[path] = oid
    return out


EDITS = st.lists(st.tuples(st.sampled_from(["put", "delete", "rmdir"]), PATHS, st.sampled_from(BLOBS)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(PATHS, st.sampled_from(BLOBS), max_size=12), EDITS)
def test_incremental_edits_equal_a_rebuild(initial: dict[str, Oid], edits: list[tuple[str, str, Oid]]) -> None:
    store = Store()
    expected = consistent(initial)
    root = build(store, expected)
    editor = TreeEditor(store, root)  # type: ignore[arg-type]
    for op, path, oid in edits:
        try:
            if op == "put":
                editor.put_file(path, oid)
                expected = {p: o for p, o in expected.items() if not p.startswith(path + "/")} | {path: oid}
            elif op == "delete":
                editor.delete(path, folder=False)
                del expected[path]
            else:
                editor.delete(path, folder=True)
                expected = {p: o for p, o in expected.items() if not p.startswith(path + "/")}
        except (InvalidInputError, EntryNotFoundError):
            pass  # refused: nothing changed (checked by the comparison below)
    new_root, new = editor.write()
    for obj in new:
        store.objects[obj.oid] = (obj.type_num, obj.data)
    assert files_of(store, new_root) == expected
    assert new_root == build(Store(), expected)  # the same git tree, byte for byte
