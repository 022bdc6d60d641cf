"""The blob store contract, run against every backend: local folder, memory, and S3 over HTTP.

Each case also exposes what is physically in the backend (files under the root, the dict, every
object in the bucket), so "nothing is visible" means nothing at all, not only nothing listed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard.errors import NotFoundError, PayloadTooLargeError
from modelyard.storage import BlobNotFoundError, BlobStore, BlobStoreError, open_store
from modelyard.storage.base import lfs_key
from modelyard.storage.memory import MemoryBlobStore
from modelyard.storage.s3 import SPOOL_LIMIT
from tests.support.s3 import MotoServer

MiB = 1024 * 1024
S3_PREFIX = "data/hub"


@dataclass
class StoreCase:
    """A store under test and a view of everything its backend physically holds."""

    name: str
    store: BlobStore
    physical: Callable[[], list[str]]
    stored_as: Callable[[str], str]


def _local(tmp_path: Path) -> StoreCase:
    root = tmp_path / "blobs"
    store = open_store(root.as_uri())

    def physical() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    return StoreCase("local", store, physical, lambda key: key)


def _memory() -> StoreCase:
    store = open_store("memory://")
    assert isinstance(store, MemoryBlobStore)
    return StoreCase("memory", store, lambda: sorted(store.blobs), lambda key: key)


def _s3(moto: MotoServer) -> StoreCase:
    bucket = moto.new_bucket()
    store = open_store(f"s3://{bucket}/{S3_PREFIX}", s3_endpoint_url=moto.url)
    return StoreCase("s3", store, lambda: moto.all_keys(bucket), lambda key: f"{S3_PREFIX}/{key}")


def _make(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    if name == "local":
        return _local(tmp_path)
    if name == "memory":
        return _memory()
    moto: MotoServer = request.getfixturevalue("moto")
    return _s3(moto)


@pytest.fixture(params=["local", "memory", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    made = _make(request.param, request, tmp_path)
    assert made.physical() == [], "opening a store must not write anything"
    yield made


@pytest.fixture
def store(case: StoreCase) -> BlobStore:
    return case.store


def put(store: BlobStore, data: bytes, key: str | None = None, chunk: int = 64 * 1024) -> str:
    """Write ``data`` in chunks and commit it under ``key`` (default: its LFS key)."""
    key = key or lfs_key(hashlib.sha256(data).hexdigest())
    writer = store.writer()
    for i in range(0, len(data), chunk):
        writer.write(data[i : i + chunk])
    writer.commit(key)
    return key


def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    chunks = list(store.read(key, start, end))
    assert all(chunks), "read must never yield an empty chunk (readers take it for the end)"
    return b"".join(chunks)


# -- writing -------------------------------------------------------------------------------------


def test_writer_hashes_while_streaming(store: BlobStore) -> None:
    data = os.urandom(300_000)
    writer = store.writer()
    for i in range(0, len(data), 7_001):  # odd chunk sizes: the digest must not depend on them
        writer.write(data[i : i + 7_001])
    written = writer.digest()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.size == len(data)
    writer.abort()


def test_empty_writer_digest_is_that_of_no_bytes(store: BlobStore) -> None:
    writer = store.writer()
    written = writer.digest()
    assert (written.sha256, written.size) == (
        hashlib.sha256(b"").hexdigest(), 0,
    )
    writer.abort()


@pytest.mark.parametrize("size", [0, 100_000, 3 * MiB])  # 3 MiB: past the local store's parallel write
def test_writer_without_digests_counts_and_stores_the_bytes(case: StoreCase, size: int) -> None:
    """``digests=False`` (Xet xorbs and shards): no sha256, but the same size and the same blob."""
    store = case.store
    data = os.urandom(size)
    writer = store.writer(digests=False)
    for i in range(0, len(data), MiB + 7):
        writer.write(data[i : i + MiB + 7])
    written = writer.digest()
    assert (written.sha256, written.size) == ("", size)
    assert case.stored_as("xet/xorbs/aa/bb/no-digests") not in case.physical()
    writer.commit("xet/xorbs/aa/bb/no-digests")
    assert store.size("xet/xorbs/aa/bb/no-digests") == size
    assert read_all(store, "xet/xorbs/aa/bb/no-digests") == data
    assert case.physical() == [case.stored_as("xet/xorbs/aa/bb/no-digests")]


def test_writer_keeps_what_it_was_given_when_the_caller_reuses_its_buffer(case: StoreCase) -> None:
    """The local store writes large buffers to disk later, on its own thread: it must not see later changes."""
    buffer = bytearray(2 * MiB)
    expected = hashlib.sha256()
    writer = case.store.writer()
    for i in range(12):
        buffer[:] = os.urandom(2 * MiB)
        expected.update(buffer)
        writer.write(buffer)  # type: ignore[arg-type]  # callers do pass bytearrays (Xet)
        writer.write(memoryview(buffer)[: MiB + i])
        expected.update(buffer[: MiB + i])
    written = writer.digest()
    assert written.sha256 == expected.hexdigest()
    writer.commit(lfs_key(written.sha256))
    assert hashlib.sha256(read_all(case.store, lfs_key(written.sha256))).hexdigest() == written.sha256


def test_abort_with_large_writes_in_flight_leaves_nothing(case: StoreCase) -> None:
    import threading

    threads = threading.active_count()
    writer = case.store.writer()
    for _ in range(20):
        writer.write(os.urandom(MiB))
    writer.abort()
    assert case.physical() == []
    assert threading.active_count() == threads  # the local store's disk thread is gone


def test_writer_without_digests_enforces_max_size(case: StoreCase) -> None:
    writer = case.store.writer(max_size=100_000, digests=False)
    writer.write(os.urandom(60_000))
    with pytest.raises(PayloadTooLargeError):
        writer.write(os.urandom(60_000))
    writer.abort()
    assert case.physical() == []


def test_writer_without_digests_aborts_cleanly(case: StoreCase) -> None:
    writer = case.store.writer(digests=False)
    writer.write(os.urandom(2 * MiB))
    writer.abort()
    assert list(case.store.keys("")) == []
    assert case.physical() == []


def test_nothing_is_visible_before_commit(case: StoreCase) -> None:
    store = case.store
    data = os.urandom(100_000)
    key = lfs_key(hashlib.sha256(data).hexdigest())
    writer = store.writer()
    writer.write(data)
    assert not store.exists(key)
    assert store.size(key) is None
    assert list(store.keys("")) == []
    assert case.stored_as(key) not in case.physical()
    writer.commit(key)
    assert store.exists(key)
    assert store.size(key) == len(data)
    assert read_all(store, key) == data
    assert list(store.keys("")) == [key]
    assert case.physical() == [case.stored_as(key)], "commit leaves exactly the blob behind"


def test_commit_is_a_no_op_when_the_key_exists(case: StoreCase) -> None:
    store = case.store
    first = put(store, b"first bytes", key="lfs/aa/bb/same")
    second = store.writer()
    second.write(b"other bytes that must not replace the first")
    second.commit(first)
    assert read_all(store, first) == b"first bytes"
    assert store.size(first) == len(b"first bytes")
    assert case.physical() == [case.stored_as(first)]


def test_two_writers_racing_for_one_key_both_succeed(case: StoreCase) -> None:
    store = case.store
    data = os.urandom(50_000)
    key = lfs_key(hashlib.sha256(data).hexdigest())
    a, b = store.writer(), store.writer()
    a.write(data)
    b.write(data)
    b.commit(key)
    a.commit(key)
    assert read_all(store, key) == data
    assert case.physical() == [case.stored_as(key)]


def test_abort_leaves_nothing(case: StoreCase) -> None:
    store = case.store
    writer = store.writer()
    writer.write(os.urandom(200_000))
    writer.abort()
    assert list(store.keys("")) == []
    assert case.physical() == []


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's temporary files go, so that leftovers can be seen."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("finish", ["abort", "commit"])
def test_a_writer_past_the_memory_spool_cleans_up(case: StoreCase, spool_dir: Path, finish: str) -> None:
    """Large enough that the S3 writer has moved from memory to a temporary file."""
    store = case.store
    block = os.urandom(MiB)
    blocks = SPOOL_LIMIT // MiB + 2
    writer = store.writer()
    for _ in range(blocks):
        writer.write(block)
    if case.name == "s3":
        assert list(spool_dir.iterdir()) != [], "past SPOOL_LIMIT the bytes wait on disk"
    if finish == "abort":
        writer.abort()
        assert case.physical() == []
    else:
        writer.commit("blobs/big")
        assert case.physical() == [case.stored_as("blobs/big")]
        assert store.size("blobs/big") == blocks * MiB
    assert list(spool_dir.iterdir()) == [], "the spool file is removed"


def test_max_size_is_enforced_mid_stream(case: StoreCase) -> None:
    store = case.store
    writer = store.writer(max_size=100_000)
    writer.write(os.urandom(60_000))
    with pytest.raises(PayloadTooLargeError):
        writer.write(os.urandom(60_000))  # the write that crosses the limit fails, not commit
    writer.abort()
    assert case.physical() == []


def test_max_size_accepts_exactly_max_size(store: BlobStore) -> None:
    data = os.urandom(100_000)
    writer = store.writer(max_size=len(data))
    writer.write(data[:50_000])
    writer.write(data[50_000:])
    writer.commit("blobs/exact")
    assert store.size("blobs/exact") == len(data)
    assert read_all(store, "blobs/exact") == data


# -- reading -------------------------------------------------------------------------------------


def test_read_ranges_are_half_open_and_clamped(store: BlobStore) -> None:
    data = os.urandom(2 * MiB + 12_345)  # spans several read chunks
    n = len(data)
    key = put(store, data, chunk=MiB)
    windows: list[tuple[int, int | None]] = [
        (0, None), (0, n), (0, 1), (5, 17), (n - 1, n), (n - 1, None), (MiB - 3, MiB + 3),
        (1000, None), (10, n + 500), (n, None), (n + 10, n + 20), (7, 7), (9, 3),
    ]
    for start, end in windows:
        assert read_all(store, key, start, end) == data[start:end], (start, end)


def test_read_an_empty_blob(store: BlobStore) -> None:
    key = put(store, b"")
    assert store.exists(key)
    assert store.size(key) == 0
    assert read_all(store, key) == b""
    assert read_all(store, key, 0, 10) == b""


def test_missing_key(store: BlobStore) -> None:
    assert store.size("lfs/00/00/missing") is None
    assert not store.exists("lfs/00/00/missing")
    with pytest.raises(BlobNotFoundError) as info:
        read_all(store, "lfs/00/00/missing")
    assert isinstance(info.value, NotFoundError)
    assert info.value.key == "lfs/00/00/missing"


def test_local_path_is_absent_or_holds_the_bytes(case: StoreCase) -> None:
    key = put(case.store, b"zero-copy")
    path = case.store.local_path(key)
    if case.name == "local":
        assert path is not None and path.read_bytes() == b"zero-copy"
    else:
        assert path is None


# -- deleting and listing ------------------------------------------------------------------------


def test_delete(case: StoreCase) -> None:
    store = case.store
    keep = put(store, b"keep me")
    gone = put(store, b"delete me")
    store.delete(gone)
    assert not store.exists(gone)
    assert store.size(gone) is None
    with pytest.raises(BlobNotFoundError):
        read_all(store, gone)
    assert list(store.keys("")) == [keep]
    store.delete(gone)  # deleting what is not there is not an error
    store.delete("lfs/ff/ff/never-written")
    assert case.physical() == [case.stored_as(keep)]


def test_keys_by_prefix(store: BlobStore) -> None:
    keys = ["lfs/ab/cd/one", "lfs/ab/ce/two", "lfs/ef/01/three", "uploads/u1/00001", "uploads/u1/00002",
            "uploads/u10/00001", "xet/xorbs/x1"]
    for i, key in enumerate(keys):
        put(store, f"blob {i}".encode(), key=key)
    assert sorted(store.keys("")) == keys
    assert sorted(store.keys("lfs/")) == keys[:3]
    assert sorted(store.keys("lfs/ab/")) == keys[:2]
    assert sorted(store.keys("lfs/ab/c")) == keys[:2]  # a plain string prefix, as in S3
    assert sorted(store.keys("lfs/ab/cd")) == keys[:1]
    assert sorted(store.keys("uploads/u1/")) == keys[3:5]
    assert sorted(store.keys("uploads/u1")) == keys[3:6]
    assert sorted(store.keys("xet/xorbs/x1")) == keys[6:]
    assert list(store.keys("nothing/")) == []
    assert list(store.keys("lfs/zz")) == []


def test_keys_skip_blobs_being_written(store: BlobStore) -> None:
    put(store, b"done", key="lfs/00/11/done")
    pending = store.writer()
    pending.write(b"still streaming")
    assert list(store.keys("")) == ["lfs/00/11/done"]
    pending.abort()


# -- bounded memory ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_writes_stay_memory_bounded(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """24 MiB through a writer (multipart on S3) never holds more than a few MiB at once."""
    store = _make(backend, request, tmp_path).store
    block = os.urandom(MiB)
    blocks = 24
    sha = hashlib.sha256()
    for _ in range(blocks):
        sha.update(block)
    key = lfs_key(sha.hexdigest())
    tracemalloc.start()
    try:
        writer = store.writer(max_size=blocks * MiB)
        for _ in range(blocks):
            writer.write(block)
        writer.commit(key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SPOOL_LIMIT + 4 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert store.size(key) == blocks * MiB
    got = hashlib.sha256()
    for chunk in store.read(key):
        got.update(chunk)
    assert got.hexdigest() == sha.hexdigest()


# -- S3 errors stop at the edge -------------------------------------------------------------------


def test_s3_missing_bucket_is_a_store_error(moto: MotoServer) -> None:
    store = open_store("s3://no-such-bucket-here/p", s3_endpoint_url=moto.url)
    writer = store.writer()
    writer.write(b"x")
    with pytest.raises(BlobStoreError) as info:
        writer.commit("lfs/aa/bb/x")
    assert info.value.code == "NoSuchBucket"
    with pytest.raises(BlobStoreError):
        read_all(store, "lfs/aa/bb/x")
    with pytest.raises(BlobStoreError):
        list(store.keys(""))
    assert "no-such-bucket-here" not in moto.bucket_names(), "the store never creates buckets"


def test_local_disk_write_failure_is_raised_and_nothing_is_stored(tmp_path: Path) -> None:
    """A write that fails on the local store's disk thread surfaces at a later write or the commit."""
    case = _local(tmp_path)
    writer = case.store.writer()
    writer.write(os.urandom(2 * MiB))  # starts the disk thread
    tmp_file = writer._file  # type: ignore[attr-defined]
    real_fd = tmp_file._fd
    tmp_file._fd = os.open(tmp_path / "read-only", os.O_RDONLY | os.O_CREAT)  # writes now fail (EBADF)
    try:
        with pytest.raises(OSError):
            for _ in range(16):  # past the staging buffer and the queue: a write hits the bad fd
                writer.write(os.urandom(2 * MiB))
            writer.commit("blobs/failed")
        writer.abort()  # what every caller does when a write raises
    finally:
        os.close(real_fd)
    assert case.physical() == []


def test_copy_makes_the_bytes_visible_under_a_second_key(store: BlobStore) -> None:
    data = os.urandom(200_000)
    source = put(store, data, "staged/1/a")
    store.copy(source, "lfs/copied")
    assert read_all(store, "lfs/copied") == data and read_all(store, source) == data
    store.copy("staged/1/missing-but-target-exists", "lfs/copied")  # a no-op: the key exists
    store.delete(source)
    assert read_all(store, "lfs/copied") == data


def test_only_s3_hands_out_store_urls(case: StoreCase, store: BlobStore) -> None:
    key = put(store, b"x" * 10, "lfs/u")
    urls = (store.signed_url(key, 60), store.signed_url(key, 60, window=(0, 5)), store.signed_put_url("k", 60, 10))
    if case.name == "s3":
        assert all(u is not None and "X-Amz-Signature=" in u for u in urls)
        assert "range" in str(urls[1]).lower() and "content-length" in str(urls[2]).lower()  # signed headers
    else:
        assert urls == (None, None, None)
