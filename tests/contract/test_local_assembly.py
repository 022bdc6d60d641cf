"""``LocalBlobStore.part_writer`` / ``assembled``: a multipart upload assembled in place, each part
written at its offset under a lock on its bytes, the whole renamed (not copied) into its key once
every part's marker is there; hashed unless the caller's digest is given."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from modelyard.errors import ConflictError, PayloadTooLargeError
from modelyard.storage.base import BlobNotFoundError
from modelyard.storage.local import BLOCK, HASH_CHUNK, STAGING, LocalBlobStore

pytestmark = pytest.mark.skipif(not LocalBlobStore.assembles, reason="needs Linux open-file-description locks")

ASSEMBLY = "uploads/u1/object"


def _marker(part: int, data: bytes) -> str:
    return f"uploads/u1/{part:05d}-{hashlib.sha256(data).hexdigest()}"


def _write_part(store: LocalBlobStore, part: int, chunk: int, data: bytes, last: bool) -> str:
    writer = store.part_writer(ASSEMBLY, f"uploads/u1/{part:05d}-", (part - 1) * chunk, len(data), last)
    for i in range(0, len(data), 1 << 20):
        writer.write(data[i : i + (1 << 20)])
    assert writer.digest().sha256 == hashlib.sha256(data).hexdigest() and writer.digest().size == len(data)
    key = _marker(part, data)
    writer.commit(key)
    return key


@pytest.mark.parametrize(
    ("chunk", "total"),
    [
        (BLOCK, BLOCK * 3),  # whole blocks
        (BLOCK * 2, BLOCK * 5 + 7),  # the last part ends mid-block (O_DIRECT padding cut off)
        (STAGING + BLOCK, 2 * STAGING + 3 * BLOCK + 1),  # parts span staging buffers
        (1000, 2500),  # parts not block-aligned: written through the page cache
    ],
)
@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_parts_in_any_order_assemble_into_the_object(tmp_path: Path, chunk: int, total: int, order: str) -> None:
    store = LocalBlobStore(tmp_path)
    whole = os.urandom(total)
    parts = [whole[i : i + chunk] for i in range(0, total, chunk)]
    numbers = list(range(1, len(parts) + 1))
    markers = {}
    for n in numbers if order == "in order" else numbers[::-1]:
        markers[n] = _write_part(store, n, chunk, parts[n - 1], last=n == len(parts))
    blob = store.assembled(ASSEMBLY, [markers[n] for n in numbers], total)
    assert blob.digest().sha256 == hashlib.sha256(whole).hexdigest() and blob.digest().size == total
    blob.commit("lfs/whole")
    assert b"".join(store.read("lfs/whole")) == whole
    assert not store.exists(ASSEMBLY)  # renamed, not copied


def test_a_known_digest_is_not_recomputed_and_abort_keeps_the_parts(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = _write_part(store, 1, BLOCK, b"abc", last=True)
    blob = store.assembled(ASSEMBLY, [key], 3, sha256="f" * 64)
    assert blob.digest().sha256 == "f" * 64 and blob.digest().size == 3
    blob.abort()
    assert store.exists(ASSEMBLY) and store.exists(key)
    again = store.assembled(ASSEMBLY, [key], 3)  # the lock went with the abort
    assert again.digest().sha256 == hashlib.sha256(b"abc").hexdigest()
    again.abort()


def test_hashing_a_large_assembly_reads_it_whole(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    whole = os.urandom(HASH_CHUNK + BLOCK + 11)
    key = _write_part(store, 1, len(whole), whole, last=True)
    blob = store.assembled(ASSEMBLY, [key], len(whole))
    assert blob.digest().sha256 == hashlib.sha256(whole).hexdigest()
    blob.abort()


def test_a_missing_marker_or_assembly_is_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        store.assembled(ASSEMBLY, [], 0)
    key = _write_part(store, 1, BLOCK, b"x" * BLOCK, last=False)
    with pytest.raises(BlobNotFoundError):
        store.assembled(ASSEMBLY, [key, _marker(2, b"y")], BLOCK + 1)
    store.assembled(ASSEMBLY, [key], BLOCK).abort()  # and no lock was left behind


def test_a_rewritten_part_drops_its_old_marker_before_its_bytes_change(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    old = _write_part(store, 1, BLOCK, b"a" * 10, last=True)
    writer = store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, 10, True)
    assert not store.exists(old)  # gone before a byte of the new upload is written
    writer.write(b"b" * 4)
    writer.abort()  # a failed re-upload: no marker names the half-written range
    assert not store.exists(old) and not store.exists(_marker(1, b"bbbb"))
    with pytest.raises(BlobNotFoundError):
        store.assembled(ASSEMBLY, [old], 10)


def test_the_same_part_twice_at_once_and_a_completion_during_a_part_are_conflicts(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    first = store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, BLOCK, False)
    with pytest.raises(ConflictError):  # from another thread of the same process too
        store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, BLOCK, False)
    other = store.part_writer(ASSEMBLY, "uploads/u1/00002-", BLOCK, 5, True)  # its own range: fine
    other.write(b"12345")
    other.commit(_marker(2, b"12345"))
    first.write(b"z" * BLOCK)
    with pytest.raises(ConflictError):
        store.assembled(ASSEMBLY, [_marker(1, b"z" * BLOCK), _marker(2, b"12345")], BLOCK + 5)
    first.commit(_marker(1, b"z" * BLOCK))
    blob = store.assembled(ASSEMBLY, [_marker(1, b"z" * BLOCK), _marker(2, b"12345")], BLOCK + 5)
    with pytest.raises(ConflictError):  # and no part can be rewritten while it completes
        store.part_writer(ASSEMBLY, "uploads/u1/00002-", BLOCK, 5, True)
    blob.commit("lfs/zz")
    assert b"".join(store.read("lfs/zz")) == b"z" * BLOCK + b"12345"


def test_parts_written_by_parallel_threads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    chunk = 3 * BLOCK
    whole = os.urandom(chunk * 7 + 99)
    parts = [whole[i : i + chunk] for i in range(0, len(whole), chunk)]
    markers: dict[int, str] = {}

    def write(n: int) -> None:
        markers[n] = _write_part(store, n, chunk, parts[n - 1], n == len(parts))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, len(parts) + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    blob = store.assembled(ASSEMBLY, [markers[n] for n in sorted(markers)], len(whole))
    assert blob.digest().sha256 == hashlib.sha256(whole).hexdigest()
    blob.commit("lfs/par")
    assert b"".join(store.read("lfs/par")) == whole


def test_a_part_larger_than_its_range_is_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, 4, False)
    with pytest.raises(PayloadTooLargeError):
        writer.write(b"12345")
    writer.abort()
    writer = store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, 4, False)  # the lock was released
    writer.abort()


def test_a_marker_outside_the_part_is_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.part_writer(ASSEMBLY, "uploads/u1/00001-", 0, 3, True)
    writer.write(b"abc")
    with pytest.raises(ValueError):
        writer.commit("uploads/u1/00002-" + "0" * 64)
    assert list(store.keys("uploads/u1/0")) == []
