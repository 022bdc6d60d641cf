"""Blobs in a local folder: tmp file + fsync + rename, so no partial blob is ever visible."""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

from modelyard.storage.base import BlobNotFoundError, BlobWriter, HashingSink, WrittenBlob

READ_CHUNK = 1024 * 1024
#: Bytes per memory map in ``read_mapped``: few thread hops per GiB, little resident memory.
MAP_WINDOW = 8 * 1024 * 1024
#: Once a writer gets a write this large, it hashes and writes to disk in two threads.
PARALLEL_WRITE = 1024 * 1024
#: Buffers queued for a writer's disk thread beyond the one being written.
DISK_QUEUE = 8
_MAP_POPULATE: int = getattr(mmap, "MAP_POPULATE", 0)  # Linux: fault the pages in at map time
#: Writers' temporary files live here, beside the blobs so that the final rename stays on one
#: file system; ``keys`` never lists it.
TMP_DIR = "tmp"


def safe_path(root: Path, key: str) -> Path:
    """``root / key``, refusing keys that would escape ``root`` or land among temporary files."""
    parts = key.split("/")
    if not key or key.startswith("/") or ".." in parts or "" in parts or parts[0] == TMP_DIR:
        raise ValueError(f"unsafe blob key {key!r}")
    return root.joinpath(*parts)


BLOCK = 4096
STAGING = 8 * 1024 * 1024
#: Bytes read, hashed and written at a time when composing a blob from others.
COMPOSE_CHUNK = 16 * 1024 * 1024
#: The share of the time a composition may keep the disk and a core busy (bench_head_under_load).
COMPOSE_DUTY = 0.5
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class _TmpFile:
    """A temporary file written with O_DIRECT when the file system allows it.

    Uploads are written once and read later, so there is no point in filling the page cache on
    the way in; on virtual machines whose memory the host backs lazily, allocating that cache is
    the slowest part of an upload (about 2.5 s per GiB here, against 0.4 s for O_DIRECT). Data
    goes through an aligned staging buffer in whole blocks; ``finish`` writes the padded tail,
    truncates to the real size and fsyncs. Where O_DIRECT is refused, a plain buffered file.
    """

    def __init__(self, path: Path) -> None:
        self.size = 0
        self._fd = -1
        self._staging: mmap.mmap | None = None
        self._filled = 0
        if _O_DIRECT:
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_DIRECT, 0o644)
                self._staging = mmap.mmap(-1, STAGING)  # page-aligned, as O_DIRECT requires
            except OSError:
                if self._fd >= 0:
                    os.close(self._fd)
                    path.unlink(missing_ok=True)
                self._fd = -1
        self._plain = open(path, "wb") if self._fd < 0 else None  # noqa: SIM115 - closed in close()

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self._plain is not None:
            self._plain.write(data)
            return
        assert self._staging is not None
        view = memoryview(data)
        while view:
            n = min(len(view), STAGING - self._filled)
            self._staging[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == STAGING:
                self._drain(STAGING)

    def write_aligned(self, data: memoryview) -> None:
        """``write``, but straight from ``data`` (no staging copy) when it is page-aligned memory of
        whole blocks and nothing is staged: the caller's buffer must be an ``mmap``."""
        if self._plain is None and self._filled == 0 and len(data) % BLOCK == 0:
            self.size += len(data)
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:])
            return
        self.write(data)

    def _drain(self, length: int) -> None:
        assert self._staging is not None
        done = 0
        with memoryview(self._staging) as buf:
            while done < length:
                done += os.write(self._fd, buf[done:length])
        self._filled = 0

    def finish(self) -> None:
        """Everything on disk and durable (the caller renames and fsyncs the folder)."""
        if self._plain is not None:
            self._plain.flush()
            os.fsync(self._plain.fileno())
            return
        if self._filled:
            self._drain(-(-self._filled // BLOCK) * BLOCK)  # whole blocks; the padding goes below
        os.ftruncate(self._fd, self.size)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        elif self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._staging is not None:
            self._staging.close()
            self._staging = None


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary file to its key, durably; a no-op (dropping it) if the key
    exists, since keys name their content."""
    if final.exists():
        tmp.unlink(missing_ok=True)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _DiskThread:
    """Writes buffers to a ``_TmpFile`` in order, on its own thread, a bounded queue behind.

    The caller hashes while this thread writes, so the two run side by side without waiting for
    each other on every buffer: O_DIRECT writes happen a whole staging buffer (8 MiB) at a time,
    so joining the two per buffer makes each buffer as slow as the slower of the two (hashing and
    writing 1 GiB from memory took 0.95 s that way here, 0.61 s with the queue). A failed write
    is raised to the caller at its next ``put`` or at ``close``.
    """

    def __init__(self, file: _TmpFile) -> None:
        self._file = file
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=DISK_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blob-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._file.write(data)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def put(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def close(self) -> None:
        """Wait until everything queued is written; raise the first write error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class LocalBlobWriter:
    def __init__(self, root: Path, max_size: int | None, digests: bool = True) -> None:
        self._root = root
        tmp_dir = root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_dir / uuid.uuid4().hex
        self._file = _TmpFile(self._tmp)
        self._sink = HashingSink(max_size, digests)
        self._disk: _DiskThread | None = None
        self._finalizer: weakref.finalize[[], LocalBlobWriter] | None = None
        self._closed = False

    def write(self, data: bytes) -> None:
        # The size limit is checked (and the bytes hashed) before anything is queued for disk.
        self._sink.update(data)
        if self._disk is None and len(data) >= PARALLEL_WRITE and self._sink.hashing:
            # Hashing and the write to disk take comparable time and both release the GIL.
            self._disk = _DiskThread(self._file)
            self._finalizer = weakref.finalize(self, self._disk.close)  # a writer dropped unfinished
        if self._disk is not None:
            # Queued bytes are written later: a caller's reusable buffer is copied first.
            self._disk.put(data if isinstance(data, bytes) else bytes(data))
        else:
            self._file.write(data)

    def _drain(self) -> None:
        if self._disk is not None:
            if self._finalizer is not None:
                self._finalizer.detach()
            disk, self._disk = self._disk, None
            disk.close()

    def digest(self) -> WrittenBlob:
        return self._sink.result()

    def commit(self, key: str) -> None:
        try:
            final = safe_path(self._root, key)
        except ValueError:
            self.abort()
            raise
        try:
            self._drain()
            self._file.finish()
        except BaseException:
            self.abort()
            raise
        self._file.close()
        self._closed = True
        _publish(self._tmp, final)

    def abort(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):  # the write error, if any, is not ours to raise
                self._drain()
            self._file.close()
            self._closed = True
        self._tmp.unlink(missing_ok=True)


class ComposedBlob:
    """Stored blobs concatenated into a new one (``LocalBlobStore.compose``), a ``BlobWriter``
    whose bytes are all in already.

    The parts are read into one reused, page-aligned buffer ``COMPOSE_CHUNK`` at a time and
    written out from it, both with O_DIRECT (no page cache to fill, no copy). With ``sha256``
    (the caller hashed the bytes as they arrived) nothing is hashed again; otherwise every chunk
    is hashed, and the work paces itself (``COMPOSE_DUTY``): hashing gigabytes at full speed
    slows every other request on the machine.
    """

    def __init__(self, root: Path, sources: list[Path], max_size: int | None, sha256: str | None = None) -> None:
        self._root = root
        tmp_dir = root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_dir / uuid.uuid4().hex
        self._known = sha256
        self._sink = HashingSink(max_size, digests=sha256 is None)
        self._closed = False
        out = _TmpFile(self._tmp)
        try:
            with mmap.mmap(-1, COMPOSE_CHUNK) as buffer, memoryview(buffer) as view:
                for source in sources:
                    self._append(source, out, view)
            out.finish()
        except BaseException:
            out.close()
            self.abort()
            raise
        out.close()

    def _append(self, source: Path, out: _TmpFile, view: memoryview) -> None:
        # Read with O_DIRECT where allowed (the buffer is page-aligned): the parts are read once,
        # and filling the page cache with them costs more than the read itself (see _TmpFile).
        fd = -1
        for flags in ((os.O_RDONLY | _O_DIRECT,) if _O_DIRECT else ()) + (os.O_RDONLY,):
            try:
                fd = os.open(source, flags)
                os.readv(fd, [view[:BLOCK]])  # O_DIRECT may be refused only at the first read
                os.lseek(fd, 0, os.SEEK_SET)
                break
            except (FileNotFoundError, IsADirectoryError) as exc:
                raise BlobNotFoundError(source.name) from exc
            except OSError:
                if fd >= 0:
                    os.close(fd)
                    fd = -1
        if fd < 0:
            raise BlobNotFoundError(source.name)
        try:
            while True:
                started = time.monotonic()
                n = os.readv(fd, [view])
                if not n:
                    break
                with view[:n] as chunk:  # released even on an error: the buffer can be closed
                    self._sink.update(chunk)  # type: ignore[arg-type]
                    out.write_aligned(chunk)
                if self._known is None:
                    # Hashing leaves the cores to requests part of the time: on a virtual machine
                    # a lower thread priority alone does not (bench_head_under_load).
                    time.sleep((time.monotonic() - started) * (1 / COMPOSE_DUTY - 1))
        finally:
            os.close(fd)

    def write(self, data: bytes) -> None:
        raise TypeError("a composed blob takes no more bytes")

    def digest(self) -> WrittenBlob:
        written = self._sink.result()
        return written if self._known is None else WrittenBlob(self._known, written.size)

    def commit(self, key: str) -> None:
        try:
            final = safe_path(self._root, key)
        except ValueError:
            self.abort()
            raise
        self._closed = True
        _publish(self._tmp, final)

    def abort(self) -> None:
        self._closed = True
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """A folder of blobs; temporary files live in ``tmp/`` under the same root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def writer(self, max_size: int | None = None, digests: bool = True) -> BlobWriter:
        return LocalBlobWriter(self.root, max_size, digests)

    def _path(self, key: str) -> Path:
        return safe_path(self.root, key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return path.stat().st_size if path.is_file() else None
        except FileNotFoundError:  # deleted between the two calls
            return None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 - closed by the with-block below
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise BlobNotFoundError(key) from exc
        with f:
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

    def read_mapped(self, key: str, start: int = 0, end: int | None = None) -> Iterator[memoryview]:
        """Like ``read``, but each chunk is a read-only view of a memory-mapped window of the file.

        A socket then copies straight from the page cache, with no ``read()`` copy in between.
        Each advance maps (and faults in) the next window, so disk waits stay in the caller's
        thread. A window is unmapped when its last view is dropped, so a transport may keep a
        view until it has sent it. Blobs are never rewritten in place (only created by rename and
        unlinked), so a mapped window cannot shrink under a reader.
        """
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 - closed by the with-block below
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise BlobNotFoundError(key) from exc
        with f:
            size = os.fstat(f.fileno()).st_size
            end = size if end is None else min(end, size)
            pos = start
            while pos < end:
                base = pos - pos % mmap.ALLOCATIONGRANULARITY
                length = min(base + MAP_WINDOW, end) - base
                window = mmap.mmap(
                    f.fileno(), length, flags=mmap.MAP_SHARED | _MAP_POPULATE, prot=mmap.PROT_READ,
                    offset=base,
                )
                yield memoryview(window)[pos - base :]
                pos = base + length

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def compose(self, keys: list[str], max_size: int | None = None, sha256: str | None = None) -> BlobWriter:
        """A writer holding the blobs ``keys`` one after the other (see ``ComposedBlob``);
        ``sha256``: the caller's digest of those bytes, taken as they arrived."""
        return ComposedBlob(self.root, [self._path(key) for key in keys], max_size, sha256)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> Iterator[str]:
        # Walk only the deepest folder the prefix names in full, then filter by plain string
        # prefix, so "lfs/ab/c" finds "lfs/ab/cd/..." as it would in S3.
        folder, _, _ = prefix.rpartition("/")
        if folder.split("/")[0] == TMP_DIR:
            return
        base = safe_path(self.root, folder) if folder else self.root
        if not base.is_dir():
            return
        for dirpath, dirs, files in os.walk(base):
            here = Path(dirpath)
            if here == self.root and TMP_DIR in dirs:
                dirs.remove(TMP_DIR)  # writers' temporary files are not blobs
            for name in files:
                key = (here / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key
