"""``LocalBlobStore.compose``: stored blobs concatenated into a new one, hashed (or trusted to a
digest taken as the parts arrived), published atomically or not at all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard.storage.base import BlobNotFoundError
from modelyard.storage.local import BLOCK, COMPOSE_CHUNK, LocalBlobStore


def put(store: LocalBlobStore, key: str, data: bytes) -> None:
    writer = store.writer()
    writer.write(data)
    writer.commit(key)


@pytest.mark.parametrize("sizes", [[0], [1, 2], [BLOCK, BLOCK + 1, 3], [COMPOSE_CHUNK + 5, BLOCK * 3, 7]])
def test_compose_concatenates_and_hashes(tmp_path: Path, sizes: list[int]) -> None:
    store = LocalBlobStore(tmp_path)
    parts = [os.urandom(n) for n in sizes]
    for i, data in enumerate(parts):
        put(store, f"parts/{i}", data)
    whole = b"".join(parts)
    composed = store.compose([f"parts/{i}" for i in range(len(parts))])
    assert composed.digest().sha256 == hashlib.sha256(whole).hexdigest() and composed.digest().size == len(whole)
    assert list((tmp_path / "tmp").iterdir())  # nothing visible yet
    composed.commit("whole")
    assert b"".join(store.read("whole")) == whole and list((tmp_path / "tmp").iterdir()) == []


def test_compose_with_a_known_digest_does_not_hash(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    put(store, "a", b"abc")
    composed = store.compose(["a"], sha256="f" * 64)
    assert composed.digest().sha256 == "f" * 64 and composed.digest().size == 3
    composed.abort()
    assert list((tmp_path / "tmp").iterdir()) == [] and not store.exists("f" * 64)


def test_compose_of_a_missing_blob_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    put(store, "a", b"abc")
    with pytest.raises(BlobNotFoundError):
        store.compose(["a", "missing"])
    assert list((tmp_path / "tmp").iterdir()) == []


def test_compose_enforces_the_size_limit(tmp_path: Path) -> None:
    from modelyard.errors import PayloadTooLargeError

    store = LocalBlobStore(tmp_path)
    put(store, "a", b"x" * 10)
    with pytest.raises(PayloadTooLargeError):
        store.compose(["a", "a"], max_size=15)
    assert list((tmp_path / "tmp").iterdir()) == []
