"""The blob store protocol shared by every backend."""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from modelyard.errors import HubError, InvalidInputError, NotFoundError, PayloadTooLargeError


class BlobNotFoundError(NotFoundError):
    """``read`` named a key that holds no blob."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Blob {key!r} does not exist in storage")
        self.key = key


class BlobStoreError(HubError):
    """The backend failed or is misconfigured (unreachable endpoint, missing bucket, denied)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WrittenBlob:
    """What a finished writer measured while the bytes streamed through it.

    ``sha256`` is an empty string when the writer was opened with ``digests=False``. (No md5:
    nothing needs it, and it cost more CPU than the sha256 on every upload.)
    """

    sha256: str
    size: int


class BlobWriter(Protocol):
    """A blob being written: bytes go in, and nothing is visible until ``commit``.

    Call ``commit`` or ``abort`` exactly once; either releases everything the writer holds.
    """

    def write(self, data: bytes) -> None:
        """Hash and keep ``data``; raise PayloadTooLargeError as soon as ``max_size`` is passed."""

    def digest(self) -> WrittenBlob:
        """What was written so far (sha256, size), available before ``commit``.

        Without digests (``writer(digests=False)``) only the size is measured; the hashes are ``""``.
        """

    def commit(self, key: str) -> None:
        """Make the bytes visible under ``key`` (atomically; a no-op if ``key`` exists)."""

    def abort(self) -> None:
        """Drop the bytes: nothing of this writer remains in the store."""


class BlobStore(Protocol):
    """Blobs keyed by strings such as ``lfs/ab/cd/<sha256>``."""

    def writer(self, max_size: int | None = None, digests: bool = True) -> BlobWriter:
        """A new writer; ``digests=False`` skips the sha256, for blobs whose key already proves
        their content (Xet xorbs and shards): only the size is counted and ``max_size`` enforced."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """The blob's size, or None when it does not exist."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of the blob in non-empty chunks.

        ``end`` past the blob's size is clamped and a window starting at or past it is empty;
        a missing key raises BlobNotFoundError when the iterator is first advanced.
        """

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the blob for zero-copy serving, when the backend has one."""

    def signed_url(self, key: str, ttl: int, *, window: tuple[int, int] | None = None,
                   filename: str | None = None, media_type: str | None = None) -> str | None:
        """A URL that lets anyone holding it GET the blob from the store itself for ``ttl`` seconds,
        or None when the backend cannot hand out such URLs (clients then read through the hub).

        ``window`` (``[start, end)``) binds the URL to exactly that byte range: the client must send
        that ``Range`` and no other. ``filename``/``media_type`` set the answer's
        ``Content-Disposition`` and ``Content-Type``.
        """

    def signed_put_url(self, key: str, ttl: int, size: int) -> str | None:
        """A URL that lets anyone holding it PUT exactly ``size`` bytes under ``key`` in the store
        itself for ``ttl`` seconds (the length is signed), or None when the backend has no such URLs."""

    def copy(self, source: str, key: str) -> None:
        """Make ``source``'s bytes visible under ``key`` too (atomically; a no-op if ``key`` exists)."""

    def direct_parts(self) -> DirectParts | None:
        """Multipart uploads straight into the store (S3), or None when the backend has none."""

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key does nothing."""

    def keys(self, prefix: str) -> Iterator[str]:
        """Every committed key that starts with ``prefix`` (a plain string prefix), in no order."""


class DirectParts(Protocol):
    """A store's own multipart uploads: clients PUT parts to presigned URLs, the hub assembles."""

    def start(self, key: str) -> str:
        """Begin a multipart upload to ``key``; its upload id."""

    def part_url(self, key: str, upload_id: str, part: int, ttl: int, size: int) -> str:
        """A presigned PUT of part ``part`` (1-based) of the upload, of exactly ``size`` bytes."""

    def finish(self, key: str, upload_id: str, etags: list[str]) -> None:
        """Assemble the parts (``etags`` in part order, as the store answered their PUTs) into
        ``key``; BlobStoreError if the store refuses (a part missing, an ETag that does not match)."""

    def abort_expired(self, prefix: str, expired: Callable[[str], bool]) -> int:
        """Abort the unfinished uploads under ``prefix`` whose key ``expired``; how many."""


class HashingSink:
    """Hashes and counts bytes, enforcing a size limit mid-stream."""

    def __init__(self, max_size: int | None, digests: bool = True) -> None:
        self._sha = hashlib.sha256() if digests else None
        self.size = 0
        self._max = max_size

    @property
    def hashing(self) -> bool:
        return self._sha is not None

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise PayloadTooLargeError(f"Upload exceeds the declared size of {self._max} bytes")
        if self._sha is not None:
            self._sha.update(data)

    def result(self) -> WrittenBlob:
        if self._sha is None:
            return WrittenBlob("", self.size)
        return WrittenBlob(self._sha.hexdigest(), self.size)


class Stage:
    """A thread that applies ``work`` to each item ``put``, in order, a bounded queue behind the
    caller: the caller goes on (hashing, fetching) while this step (writing, hashing) runs beside
    it. A failure is raised to the caller at its next ``put`` or at ``close``."""

    _END = object()

    def __init__(self, name: str, work: Callable[[Any], object], depth: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._work = work
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._END:
            if self._error is None:
                try:
                    self._work(item)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every item put is done; raise the first failure, if any."""
        self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error


def lfs_key(sha256: str) -> str:
    """Where an LFS object lives: fanned out by its first bytes."""
    return f"lfs/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


def check_digest(written: WrittenBlob, sha256: str, size: int | None) -> None:
    """Raise unless the streamed bytes match the declared oid and size (constant-time compare)."""
    if size is not None and written.size != size:
        raise InvalidInputError(
            f"Size mismatch: received {written.size} bytes, expected {size}"
        )
    if not hmac.compare_digest(written.sha256, sha256):
        raise InvalidInputError(
            f"Checksum mismatch: content hashes to {written.sha256}, expected {sha256}"
        )


def open_store(
    url: str, *, s3_endpoint_url: str | None = None, s3_region: str = "us-east-1",
    s3_public_endpoint_url: str | None = None,
) -> BlobStore:
    """Open the backend that ``url`` names: ``file:///path``, ``s3://bucket/prefix`` or ``memory://``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from modelyard.storage.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from modelyard.storage.s3 import S3BlobStore

        return S3BlobStore(
            parsed.netloc, parsed.path.strip("/"), endpoint_url=s3_endpoint_url, region=s3_region,
            public_endpoint_url=s3_public_endpoint_url,
        )
    if parsed.scheme == "memory":
        from modelyard.storage.memory import MemoryBlobStore

        return MemoryBlobStore()
    raise InvalidInputError(f"Unsupported storage URL {url!r}: use file://, s3:// or memory://")


class HubServed:
    """For stores with no server of their own (a folder, memory): no URLs into the store, so the
    hub sends and receives every byte, and ``copy`` reads the blob into a new one."""

    def signed_url(self, key: str, ttl: int, *, window: tuple[int, int] | None = None,
                   filename: str | None = None, media_type: str | None = None) -> str | None:
        return None

    def signed_put_url(self, key: str, ttl: int, size: int) -> str | None:
        return None

    def direct_parts(self) -> None:
        return None

    def copy(self: BlobStore, source: str, key: str) -> None:
        if self.exists(key):
            return
        writer = self.writer(digests=False)
        try:
            for chunk in self.read(source):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        writer.commit(key)
