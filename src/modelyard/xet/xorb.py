"""Xorbs: chunks stored back to back, each an 8-byte header and its (possibly compressed) data.

A xorb arrives without its footer (spec page "xorb"); the server keeps the body as uploaded and
a compact index of its chunks (hash, byte range, uncompressed size) in the database.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import lz4.frame

from modelyard.errors import InvalidInputError, PayloadTooLargeError
from modelyard.xet.hashing import chunk_hash, hash_to_str, merkle_root

MAX_CHUNK_SIZE = 128 * 1024
#: A compressed chunk may not be more than twice the largest chunk (the reference reader's bound).
MAX_STORED_CHUNK = 2 * MAX_CHUNK_SIZE
#: Uncompressed bytes per xorb; the body may exceed it by the chunk headers (hf_xet fills xorbs
#: of incompressible data to just under 64 MiB of data, so the body is a few KiB larger).
MAX_XORB_BYTES = 64 * 1024 * 1024
MAX_XORB_CHUNKS = 8192
HEADER_SIZE = 8
MAX_XORB_BODY = MAX_XORB_BYTES + HEADER_SIZE * MAX_XORB_CHUNKS
_FOOTER_MAGIC = b"XETBLOB"
_INDEX_ENTRY = struct.Struct("<32sII")  # chunk hash, end offset in the body, uncompressed size


class Compression(IntEnum):
    NONE = 0
    LZ4 = 1
    BG4_LZ4 = 2


class XorbFormatError(InvalidInputError):
    """A xorb body that does not parse, decompress or hash as its name claims."""


@dataclass(frozen=True)
class ChunkInfo:
    """One chunk of a stored xorb: where its header starts and its data ends in the body."""

    hash: bytes
    start: int
    end: int
    size: int


@dataclass(frozen=True)
class XorbIndex:
    """The chunks of one xorb, in order; enough to plan any range read without the body."""

    chunks: tuple[ChunkInfo, ...]

    @property
    def stored_size(self) -> int:
        return self.chunks[-1].end if self.chunks else 0

    @property
    def unpacked_size(self) -> int:
        return sum(c.size for c in self.chunks)

    def hash(self) -> bytes:
        return merkle_root([(c.hash, c.size) for c in self.chunks])

    def pack(self) -> bytes:
        return b"".join(_INDEX_ENTRY.pack(c.hash, c.end, c.size) for c in self.chunks)

    @classmethod
    def unpack(cls, data: bytes) -> XorbIndex:
        chunks = []
        start = 0
        for h, end, size in _INDEX_ENTRY.iter_unpack(data):
            chunks.append(ChunkInfo(h, start, end, size))
            start = end
        return cls(tuple(chunks))


def bg4_split(data: bytes) -> bytes:
    """Byte grouping: every 4th byte together (offset 0, 1, 2, 3), the groups concatenated."""
    return b"".join(data[k::4] for k in range(4))


def bg4_regroup(data: bytes) -> bytes:
    """Undo ``bg4_split``."""
    n = len(data)
    q, r = divmod(n, 4)
    out = bytearray(n)
    pos = 0
    for k in range(4):
        length = q + (1 if r > k else 0)
        out[k::4] = data[pos : pos + length]
        pos += length
    return bytes(out)


def _lz4_decompress(payload: bytes | memoryview, size: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        out: bytes = decompressor.decompress(payload, max_length=size + 1)
    except RuntimeError as exc:
        raise XorbFormatError(f"Invalid LZ4 frame in chunk: {exc}") from exc
    if len(out) != size or not decompressor.eof or decompressor.unused_data:
        raise XorbFormatError(
            f"A chunk decompresses to {len(out)}{'+' if not decompressor.eof else ''} bytes, its header says {size}"
        )
    return out


def decode_chunk(scheme: int, payload: bytes | memoryview, size: int) -> bytes:
    """A chunk's uncompressed bytes; XorbFormatError on an unknown scheme or a size mismatch."""
    if scheme == Compression.NONE:
        if len(payload) != size:
            raise XorbFormatError(f"An uncompressed chunk holds {len(payload)} bytes, its header says {size}")
        return bytes(payload)
    if scheme == Compression.LZ4:
        return _lz4_decompress(payload, size)
    if scheme == Compression.BG4_LZ4:
        return bg4_regroup(_lz4_decompress(payload, size))
    raise XorbFormatError(f"Unknown chunk compression scheme {scheme}")


def _header(body: bytes | bytearray | memoryview, pos: int) -> tuple[int, int, int]:
    """(stored length, scheme, uncompressed length) of the chunk header at ``pos``."""
    if len(body) - pos < HEADER_SIZE:
        raise XorbFormatError(f"Truncated xorb: {len(body) - pos} stray bytes after the last chunk")
    head = bytes(body[pos : pos + HEADER_SIZE])
    if head[:7] == _FOOTER_MAGIC:
        raise XorbFormatError("Xorbs are uploaded without their footer")
    version = head[0]
    if version != 0:
        raise XorbFormatError(f"Unknown chunk header version {version}")
    stored = int.from_bytes(head[1:4], "little")
    scheme = head[4]
    size = int.from_bytes(head[5:8], "little")
    if scheme not in (0, 1, 2):
        raise XorbFormatError(f"Unknown chunk compression scheme {scheme}")
    if size == 0 or size > MAX_CHUNK_SIZE:
        raise XorbFormatError(f"A chunk must hold 1 to {MAX_CHUNK_SIZE} bytes, not {size}")
    if stored > MAX_STORED_CHUNK:
        raise XorbFormatError(f"A compressed chunk of {stored} bytes is larger than allowed")
    return stored, scheme, size


def parse_xorb(body: bytes | bytearray | memoryview, claimed: bytes | None = None) -> XorbIndex:
    """Validate an uploaded xorb and index it.

    Every chunk must parse, decompress to its declared size and the chunk hashes must aggregate
    to ``claimed`` (when given). Raises XorbFormatError (400) or PayloadTooLargeError (413).
    """
    if len(body) > MAX_XORB_BODY:
        raise PayloadTooLargeError(f"A xorb body may hold at most {MAX_XORB_BODY} bytes")
    if len(body) == 0:
        raise XorbFormatError("Empty xorb")
    view = memoryview(body)
    chunks: list[ChunkInfo] = []
    pos = 0
    while pos < len(view):
        stored, scheme, size = _header(view, pos)
        data_start = pos + HEADER_SIZE
        end = data_start + stored
        if end > len(view):
            raise XorbFormatError(
                f"Truncated xorb: chunk {len(chunks)} needs {stored} bytes, {len(view) - data_start} remain"
            )
        payload = view[data_start:end]
        if scheme == Compression.NONE and stored == size:
            data: bytes | memoryview = payload  # hashed in place: no copy of incompressible chunks
        else:
            data = decode_chunk(scheme, payload, size)
        chunks.append(ChunkInfo(chunk_hash(data), pos, end, size))
        if len(chunks) > MAX_XORB_CHUNKS:
            raise XorbFormatError(f"A xorb may hold at most {MAX_XORB_CHUNKS} chunks")
        pos = end
    index = XorbIndex(tuple(chunks))
    if index.unpacked_size > MAX_XORB_BYTES:
        raise PayloadTooLargeError(f"A xorb may hold at most {MAX_XORB_BYTES} bytes of data")
    if claimed is not None:
        actual = index.hash()
        if actual != claimed:
            raise XorbFormatError(
                f"The xorb's content hashes to {hash_to_str(actual)}, not to its name {hash_to_str(claimed)}"
            )
    return index


def iter_chunks(data: bytes | memoryview) -> Iterator[bytes | memoryview]:
    """Decode back-to-back chunks (a byte range of a stored xorb) into their uncompressed bytes.

    Uncompressed chunks come out as views into ``data`` (no copy).
    """
    for _stored, plain in split_chunks(data):
        yield plain


def split_chunks(data: bytes | memoryview) -> Iterator[tuple[memoryview, bytes | memoryview]]:
    """Back-to-back chunks as stored (header and payload, a valid footer-less xorb piece each)
    with their uncompressed bytes: a mirror lands an upstream's xorb ranges without recompressing."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        stored, scheme, size = _header(view, pos)
        end = pos + HEADER_SIZE + stored
        if end > len(view):
            raise XorbFormatError("Truncated chunk in a xorb range")
        payload = view[pos + HEADER_SIZE : end]
        plain = payload if scheme == Compression.NONE and stored == size else decode_chunk(scheme, payload, size)
        if len(plain) != size:
            raise XorbFormatError("A chunk does not decode to its declared size")
        yield view[pos:end], plain
        pos = end


def serialize_chunk(data: bytes, scheme: Compression = Compression.LZ4) -> bytes:
    """One chunk as a client writes it (falling back to no compression when that is smaller)."""
    if not 0 < len(data) <= MAX_CHUNK_SIZE:
        raise ValueError("chunk size out of range")
    payload = data
    if scheme == Compression.LZ4:
        payload = lz4.frame.compress(data)
    elif scheme == Compression.BG4_LZ4:
        payload = lz4.frame.compress(bg4_split(data))
    if len(payload) >= len(data):
        scheme, payload = Compression.NONE, data
    return (
        bytes([0]) + len(payload).to_bytes(3, "little") + bytes([int(scheme)]) + len(data).to_bytes(3, "little")
        + payload
    )


def serialize_xorb(chunks: Sequence[bytes], scheme: Compression = Compression.LZ4) -> tuple[bytes, XorbIndex]:
    """A footer-less xorb body for ``chunks`` and its index (tests and benchmarks build with it)."""
    parts: list[bytes] = []
    infos: list[ChunkInfo] = []
    pos = 0
    for data in chunks:
        part = serialize_chunk(data, scheme)
        infos.append(ChunkInfo(chunk_hash(data), pos, pos + len(part), len(data)))
        parts.append(part)
        pos += len(part)
    return b"".join(parts), XorbIndex(tuple(infos))
