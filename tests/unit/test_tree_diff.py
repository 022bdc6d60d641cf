"""Comparing trees for pull requests (``versioning/diff.py``): the changed files between two trees,
conflicts, and applying one side's changes onto the other (property test: applying the changes
from A to B onto A gives B), plus merge bases over real commits and the unified diff."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.ids import Oid
from modelyard.versioning.diff import apply_changes, changed_files, conflicts, merge_base, tree_of, unified_diff
from modelyard.versioning.objects import BLOB, ObjectReader, Signature, make_blob, make_commit, raw
from tests.unit.test_tree_editor import BLOBS, PATHS, Store, build, consistent, files_of

FILES = st.dictionaries(PATHS, st.sampled_from(BLOBS), max_size=8).map(consistent)


@settings(max_examples=200, deadline=None)
@given(FILES, FILES)
def test_applying_the_changes_from_a_to_b_onto_a_gives_b(a: dict[str, Oid], b: dict[str, Oid]) -> None:
    store = Store()
    reader: ObjectReader = store  # type: ignore[assignment]
    ta, tb = build(store, a), build(store, b)
    changes = changed_files(reader, ta, tb)
    assert set(changes) == {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}
    root, new = apply_changes(reader, ta, changes).write()
    for obj in new:
        store.objects[obj.oid] = (obj.type_num, obj.data)
    assert files_of(store, root) == b


def test_conflicts_are_paths_changed_differently_on_both_sides() -> None:
    one, two = (Oid(f"{i:040x}") for i in (1, 2))
    ours = {"a.txt": (0o100644, one), "same.txt": (0o100644, one), "dir": None}
    theirs = {"a.txt": (0o100644, two), "same.txt": (0o100644, one), "dir/x": (0o100644, one), "b": None}
    assert conflicts(ours, theirs) == ["a.txt", "dir/x"]  # same change twice is no conflict


def test_merge_base_and_unified_diff() -> None:
    store = Store()
    reader: ObjectReader = store  # type: ignore[assignment]
    me = Signature("t", "t@example.com")

    def blob(data: bytes) -> Oid:
        b = make_blob(data)
        store.objects[b.id.decode()] = (BLOB, data)
        return Oid(b.id.decode())

    def commit(files: dict[str, bytes], parents: list[Oid], message: str) -> Oid:
        c = raw(make_commit(build(store, {p: blob(d) for p, d in files.items()}), parents, me, message))
        store.objects[c.oid] = (c.type_num, c.data)
        return c.oid

    root = commit({"a.txt": b"one\n"}, [], "root")
    main = commit({"a.txt": b"one\n", "m.txt": b"m\n"}, [root], "main")
    pr = commit({"a.txt": b"two\n"}, [root], "pr")
    assert merge_base(reader, main, pr) == root
    assert merge_base(reader, root, pr) == root
    assert unified_diff(reader, None, None, 1000) == ""
    text = unified_diff(reader, tree_of(reader, root), tree_of(reader, pr), 10_000)
    assert "diff --git a/a.txt b/a.txt" in text and "-one" in text and "+two" in text
    assert unified_diff(reader, tree_of(reader, root), tree_of(reader, pr), 10).endswith("[diff truncated]\n")
