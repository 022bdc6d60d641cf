"""Blobs in a local folder: tmp file + fsync + rename, so no partial blob is ever visible."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from modelyard.storage.base import BlobWriter, HashingSink, WrittenBlob

READ_CHUNK = 1024 * 1024


class LocalBlobWriter:
    def __init__(self, root: Path, max_size: int | None) -> None:
        self._root = root
        tmp_dir = root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_dir / uuid.uuid4().hex
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        self._sink = HashingSink(max_size)
        self._closed = False

    def write(self, data: bytes) -> None:
        self._sink.update(data)
        self._file.write(data)

    def digest(self) -> WrittenBlob:
        return self._sink.result()

    def commit(self, key: str) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._closed = True
        final = self._root / key
        if final.exists():
            self._tmp.unlink(missing_ok=True)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def abort(self) -> None:
        if not self._closed:
            self._file.close()
            self._closed = True
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """A folder of blobs; temporary files live in ``tmp/`` under the same root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def writer(self, max_size: int | None = None) -> BlobWriter:
        return LocalBlobWriter(self.root, max_size)

    def _path(self, key: str) -> Path:
        if ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"unsafe blob key {key!r}")
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                n = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                data = f.read(n)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.exists():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                yield str(Path(dirpath, name).relative_to(self.root))
