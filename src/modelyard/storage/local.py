"""Blobs in a local folder: tmp file + fsync + rename, so no partial blob is ever visible."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import mmap
import os
import struct
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

from modelyard.errors import ConflictError
from modelyard.storage.base import BlobNotFoundError, BlobWriter, HashingSink, HubServed, Stage, WrittenBlob

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
#: Bytes read and hashed at a time when an assembled upload is hashed as a whole.
HASH_CHUNK = 16 * 1024 * 1024
#: The share of the time that hashing a whole assembled upload may keep a core busy.
HASH_DUTY = 0.5
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
#: Linux's open-file-description locks: held per open file, so two threads of one process
#: exclude each other too, and released when the file closes, even if the process dies.
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


class _TmpFile:
    """A temporary file written with O_DIRECT when the file system allows it.

    Uploads are written once and read later, so there is no point in filling the page cache on
    the way in; on virtual machines whose memory the host backs lazily, allocating that cache is
    the slowest part of an upload (about 2.5 s per GiB here, against 0.4 s for O_DIRECT). Data
    goes through an aligned staging buffer in whole blocks; ``finish`` writes the padded tail,
    truncates to the real size and fsyncs. Where O_DIRECT is refused, a plain buffered file.

    With ``offset``, the bytes go into ``path`` from there on instead of into a new file (a part
    of an upload assembled in place, ``_PartWriter``): the file is created if missing and never
    truncated, and O_DIRECT is used only when ``direct`` says that a padded last block may be
    written (it lands past the part, where no other part's bytes are).
    """

    def __init__(self, path: Path, offset: int | None = None, direct: bool = True) -> None:
        self.size = 0
        self._new = offset is None
        self._pos = offset or 0  # where the next block written out goes
        self._fd = -1
        self._staging: mmap.mmap | None = None
        self._filled = 0
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if self._new else 0)
        if _O_DIRECT and direct and self._pos % BLOCK == 0:
            try:
                self._fd = os.open(path, flags | _O_DIRECT, 0o644)
                self._staging = mmap.mmap(-1, STAGING)  # page-aligned, as O_DIRECT requires
            except OSError:
                if self._fd >= 0:
                    os.close(self._fd)
                    if self._new:
                        path.unlink(missing_ok=True)
                self._fd = -1
        self._plain = None
        if self._fd < 0:
            self._plain = os.fdopen(os.open(path, flags, 0o644), "wb")  # never truncates
            self._plain.seek(self._pos)

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

    def _drain(self, length: int) -> None:
        assert self._staging is not None
        done = 0
        with memoryview(self._staging) as buf:
            while done < length:
                done += os.pwrite(self._fd, buf[done:length], self._pos + done)
        self._pos += length
        self._filled = 0

    def finish(self) -> None:
        """Everything on disk and durable (the caller renames and fsyncs the folder)."""
        if self._plain is not None:
            self._plain.flush()
            os.fsync(self._plain.fileno())
            return
        if self._filled:
            self._drain(-(-self._filled // BLOCK) * BLOCK)  # whole blocks; the padding goes below
        if self._new:
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
    _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalBlobWriter:
    def __init__(self, root: Path, max_size: int | None, digests: bool = True) -> None:
        self._root = root
        tmp_dir = root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_dir / uuid.uuid4().hex
        self._file = _TmpFile(self._tmp)
        self._sink = HashingSink(max_size, digests)
        #: writes buffers to the file in order, on its own thread, a bounded queue behind: the
        #: caller hashes while it writes, so the two run side by side instead of waiting for each
        #: other on every buffer (O_DIRECT writes go a whole 8 MiB staging buffer at a time;
        #: hashing and writing 1 GiB from memory took 0.95 s joined per buffer, 0.61 s queued)
        self._disk: Stage | None = None
        self._finalizer: weakref.finalize[[], LocalBlobWriter] | None = None
        self._closed = False

    def write(self, data: bytes) -> None:
        # The size limit is checked (and the bytes hashed) before anything is queued for disk.
        self._sink.update(data)
        if self._disk is None and len(data) >= PARALLEL_WRITE and self._sink.hashing:
            # Hashing and the write to disk take comparable time and both release the GIL.
            self._disk = Stage("blob-write", self._file.write, DISK_QUEUE)
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


class _RangeLock:
    """A write lock on bytes ``[start, start + length)`` of ``path`` (``length`` 0: to the end,
    however far it grows), taken without waiting: ``ConflictError(busy)`` when another open file
    holds any of them. ``fd`` is the file, open for reading and writing; closing it releases."""

    def __init__(self, path: Path, start: int, length: int, busy: str, create: bool = True) -> None:
        assert _OFD_SETLK is not None
        self.fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        try:
            fcntl.fcntl(self.fd, _OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
        except OSError as exc:
            os.close(self.fd)
            self.fd = -1
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ConflictError(busy) from None
            raise

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _PartWriter(LocalBlobWriter):
    """One part of an upload assembled in place (``LocalBlobStore.part_writer``).

    The part's bytes go straight into the assembly file at the part's offset, under a lock on
    that range held until ``commit`` or ``abort``; ``commit`` makes them durable and then creates
    the part's marker, an empty blob. Markers left by an earlier upload of the same part are
    removed before the first byte is written, so a marker always names the bytes in its range.
    """

    def __init__(self, root: Path, assembly: Path, marker_prefix: str, offset: int, size: int, last: bool) -> None:
        self._root = root
        self._marker_prefix = marker_prefix
        assembly.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _RangeLock(assembly, offset, size, "Another request is uploading this part")
        try:
            for old in glob.glob(glob.escape(str(safe_path(root, marker_prefix))) + "*"):
                os.unlink(old)
            # O_DIRECT writes whole blocks: only where the padding of the last one falls past
            # every part (this is the last one) or there is none.
            self._file = _TmpFile(assembly, offset=offset, direct=last or size % BLOCK == 0)
        except BaseException:
            self._lock.release()
            raise
        self._sink = HashingSink(size)
        self._disk = None
        self._finalizer = None
        self._closed = False

    def commit(self, key: str) -> None:
        if not key.startswith(self._marker_prefix):
            self.abort()
            raise ValueError(f"{key!r} is not a marker of this part")
        try:
            marker = safe_path(self._root, key)
            self._drain()
            self._file.finish()
            self._file.close()
            self._closed = True
            with open(marker, "ab"):
                pass
            _fsync_dir(marker.parent)
        except BaseException:
            self.abort()
            raise
        self._lock.release()

    def abort(self) -> None:
        # Bytes already written stay in the range; with no marker, nothing names them.
        if not self._closed:
            with contextlib.suppress(Exception):
                self._drain()
            self._file.close()
            self._closed = True
        self._lock.release()


def _hash_file(path: Path, max_size: int | None) -> WrittenBlob:
    """sha256 and size of a file, read with O_DIRECT where allowed (read once: no page cache to
    fill), leaving the cores to requests part of the time (``HASH_DUTY``: on a virtual machine a
    lower thread priority alone does not)."""
    sink = HashingSink(max_size)
    with mmap.mmap(-1, HASH_CHUNK) as buffer, memoryview(buffer) as view:  # page-aligned
        fd = -1
        for flags in ((os.O_RDONLY | _O_DIRECT,) if _O_DIRECT else ()) + (os.O_RDONLY,):
            fd = os.open(path, flags)
            try:
                os.preadv(fd, [view[:BLOCK]], 0)  # O_DIRECT may be refused only at a read
                break
            except OSError:
                os.close(fd)
                fd = -1
        if fd < 0:
            raise OSError(f"{path} cannot be read")
        try:
            position = 0
            while True:
                started = time.monotonic()
                n = os.preadv(fd, [view], position)
                if not n:
                    return sink.result()
                with view[:n] as chunk:  # released even on an error: the buffer can be closed
                    sink.update(chunk)  # type: ignore[arg-type]
                position += n
                time.sleep((time.monotonic() - started) * (1 / HASH_DUTY - 1))
        finally:
            os.close(fd)


class AssembledBlob:
    """An upload assembled in place, as a ``BlobWriter`` whose bytes are all in
    (``LocalBlobStore.assembled``).

    Holds a lock on the whole assembly file, so no part can be rewritten meanwhile; checks that
    every part's marker exists, cuts the file to ``size`` (the last part's O_DIRECT padding), and
    hashes it unless the caller knows its sha256 (hashed as the parts arrived in order).
    ``commit`` renames the file to its key: no byte is copied. ``abort`` leaves the upload as it
    was, parts included.
    """

    def __init__(self, root: Path, assembly: Path, markers: list[Path], size: int, sha256: str | None) -> None:
        self._root = root
        self._assembly = assembly
        try:
            self._lock = _RangeLock(assembly, 0, 0, "Parts of this upload are still being uploaded", create=False)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(assembly.name) from exc
        try:
            for marker in markers:
                if not marker.is_file():
                    raise BlobNotFoundError(marker.name)
            os.ftruncate(self._lock.fd, size)
            os.fsync(self._lock.fd)
            self._written = WrittenBlob(sha256, size) if sha256 is not None else _hash_file(assembly, size)
        except BaseException:
            self._lock.release()
            raise

    def write(self, data: bytes) -> None:
        raise TypeError("an assembled upload takes no more bytes")

    def digest(self) -> WrittenBlob:
        return self._written

    def commit(self, key: str) -> None:
        try:
            _publish(self._assembly, safe_path(self._root, key))
        finally:
            self._lock.release()

    def abort(self) -> None:
        self._lock.release()


class LocalBlobStore(HubServed):
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

    #: Whether uploads can be assembled in place here (``part_writer``): it needs range locks
    #: that exclude threads of one process too (Linux).
    assembles = _OFD_SETLK is not None

    def part_writer(self, assembly: str, marker_prefix: str, offset: int, size: int, last: bool) -> BlobWriter:
        """A writer for one part of an upload assembled in place: its bytes go into the blob
        ``assembly`` at ``offset`` (at most ``size`` of them), and ``commit(key)`` creates the
        marker ``key`` (which starts with ``marker_prefix``) once they are durable.
        ``ConflictError`` when another writer holds any of these bytes."""
        return _PartWriter(self.root, self._path(assembly), marker_prefix, offset, size, last)

    def assembled(self, assembly: str, markers: list[str], size: int, sha256: str | None = None) -> BlobWriter:
        """The upload assembled in ``assembly`` from parts whose ``markers`` all exist, ``size``
        bytes long, as a writer to commit under its key (see ``AssembledBlob``); ``sha256``: the
        caller's digest of the bytes, taken as they arrived. ``BlobNotFoundError`` when the
        assembly or a marker is missing, ``ConflictError`` while a part is being written."""
        return AssembledBlob(self.root, self._path(assembly), [self._path(m) for m in markers], size, sha256)

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
