"""Reading file headers through a ``read(offset, length)`` callable, within hard limits.

The metadata parsers never open files or blobs themselves: the caller hands them a ``Read``
callable (a local file, a blob store range request, a bytes object in tests) and the file size.
Everything here refuses to read past the file or past a byte budget, so a hostile header costs
bounded time and memory.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

from modelyard.errors import InvalidInputError

Read = Callable[[int, int], bytes]
"""``read(offset, length)`` returns the ``length`` bytes at ``offset`` (fewer only at the end)."""


class MetadataError(InvalidInputError):
    """A file's header is corrupt, hostile, or beyond the limits the parsers accept."""


def bytes_reader(data: bytes) -> Read:
    """A ``Read`` over bytes held in memory."""
    view = memoryview(data)

    def read(offset: int, length: int) -> bytes:
        return bytes(view[offset : offset + length])

    return read


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over a ``Read`` (for libraries that want a file object: pyarrow,
    the scanners); each read asks for exactly the bytes wanted, or raises MetadataError."""

    def __init__(self, read: Read, size: int) -> None:
        self._read, self._size, self._pos = read, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._size - self._pos)
        if length <= 0:
            return 0
        data = read_exact(self._read, self._pos, length, self._size)
        buffer[:length] = data
        self._pos += length
        return length


def read_exact(read: Read, offset: int, length: int, size: int) -> bytes:
    """Exactly ``length`` bytes at ``offset``, or MetadataError if the file is shorter."""
    if offset < 0 or length < 0 or offset + length > size:
        raise MetadataError(f"Truncated file: {length} bytes at offset {offset} lie past its end ({size} bytes)")
    if length == 0:
        return b""
    data = read(offset, length)
    if len(data) != length:
        raise MetadataError(f"Truncated file: asked for {length} bytes at offset {offset}, got {len(data)}")
    return data


class HeaderReader:
    """Sequential, buffered reads from ``read`` that stop at the file size and a byte budget.

    ``bytes_read`` counts what went through the callable, so tests (and callers) can check that
    only headers were read. Skipping forward inside the file costs nothing.
    """

    def __init__(self, read: Read, size: int, *, budget: int, chunk: int = 256 * 1024) -> None:
        if size < 0:
            raise MetadataError("Negative file size")
        self._read = read
        self.size = size
        self.budget = budget
        self._chunk = chunk
        self._buffer = b""
        self._buffer_start = 0
        self.pos = 0
        self.bytes_read = 0

    def _fetch(self, offset: int, length: int) -> bytes:
        if self.bytes_read + length > self.budget:
            raise MetadataError(f"Header larger than the {self.budget}-byte limit for reading it")
        data = read_exact(self._read, offset, length, self.size)
        self.bytes_read += length
        return data

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes; the position moves past them."""
        if n < 0:
            raise MetadataError("Negative length")
        if self.pos + n > self.size:
            raise MetadataError(f"Truncated file: {n} bytes at offset {self.pos} lie past its end ({self.size} bytes)")
        start = self.pos - self._buffer_start
        if start >= 0 and start + n <= len(self._buffer):
            self.pos += n
            return self._buffer[start : start + n]
        if n >= self._chunk:
            # Large values are read directly rather than through the buffer.
            data = self._fetch(self.pos, n)
            self.pos += n
            return data
        keep = self._buffer[start:] if 0 <= start < len(self._buffer) else b""
        want = min(self._chunk, self.size - self.pos - len(keep))
        self._buffer = keep + self._fetch(self.pos + len(keep), want)
        self._buffer_start = self.pos
        self.pos += n
        return self._buffer[:n]

    def skip(self, n: int) -> None:
        """Move forward ``n`` bytes without reading them."""
        if n < 0 or self.pos + n > self.size:
            raise MetadataError(f"Truncated file: cannot skip {n} bytes at offset {self.pos} ({self.size} bytes)")
        self.pos += n

    def seek(self, pos: int) -> None:
        """Move to an absolute position inside the file (used to revisit an array)."""
        if pos < 0 or pos > self.size:
            raise MetadataError(f"Offset {pos} lies outside the file ({self.size} bytes)")
        self.pos = pos

    def unpack(self, fmt: struct.Struct) -> tuple[int | float | bool, ...]:
        return fmt.unpack(self.take(fmt.size))
