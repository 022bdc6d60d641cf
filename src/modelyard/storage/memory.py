"""Blobs in a dict: for unit tests of code above the storage layer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from modelyard.storage.base import BlobNotFoundError, BlobWriter, HashingSink, HubServed, WrittenBlob


class MemoryBlobWriter:
    def __init__(self, store: MemoryBlobStore, max_size: int | None, digests: bool = True) -> None:
        self._store = store
        self._parts: list[bytes] = []
        self._sink = HashingSink(max_size, digests)

    def write(self, data: bytes) -> None:
        self._sink.update(data)
        self._parts.append(bytes(data))

    def digest(self) -> WrittenBlob:
        return self._sink.result()

    def commit(self, key: str) -> None:
        with self._store.lock:
            self._store.blobs.setdefault(key, b"".join(self._parts))
        self._parts = []

    def abort(self) -> None:
        self._parts = []


class MemoryBlobStore(HubServed):
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def writer(self, max_size: int | None = None, digests: bool = True) -> BlobWriter:
        return MemoryBlobWriter(self, max_size, digests)

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def size(self, key: str) -> int | None:
        blob = self.blobs.get(key)
        return None if blob is None else len(blob)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        blob = self.blobs.get(key)
        if blob is None:
            raise BlobNotFoundError(key)
        window = blob[start:end]
        if window:  # readers take an empty chunk for the end of the stream
            yield window

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        with self.lock:
            self.blobs.pop(key, None)

    def keys(self, prefix: str) -> Iterator[str]:
        yield from [k for k in list(self.blobs) if k.startswith(prefix)]
