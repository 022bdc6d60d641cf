"""Shards (MDB files): file reconstructions and xorb chunk lists, in 48-byte records.

Uploads arrive without footer or lookup tables (header ``footer_size = 0``); the global dedup
answer is a shard with a footer whose chunk hashes are protected by an HMAC key (spec page
"shard"). All integers are little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from modelyard.errors import InvalidInputError, PayloadTooLargeError
from modelyard.xet.hashing import ZERO_HASH, hmac_hash

TAG = bytes([
    72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85,
    105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
])
VERSION = 2
RECORD = 48
FOOTER_SIZE = 200
FOOTER_VERSION = 1
BOOKEND = b"\xff" * 32 + b"\x00" * 16
MAX_SHARD_BYTES = 64 * 1024 * 1024
FLAG_VERIFICATION = 0x80000000
FLAG_METADATA_EXT = 0x40000000

_HEADER = struct.Struct("<32sQQ")
_FILE_HEADER = struct.Struct("<32sIIQ")
_FILE_ENTRY = struct.Struct("<32sIIII")
_XORB_HEADER = struct.Struct("<32sIIII")
_XORB_ENTRY = struct.Struct("<32sIIII")
_FOOTER = struct.Struct("<9Q32sQQ6QQQQQ")


class ShardFormatError(InvalidInputError):
    """A shard that does not parse, or whose records contradict each other."""


@dataclass(frozen=True)
class Term:
    """A run of chunks ``[start, end)`` of one xorb that makes ``size`` bytes of a file."""

    xorb: bytes
    start: int
    end: int
    size: int


@dataclass(frozen=True)
class FileRecord:
    """A file as a shard describes it."""

    hash: bytes
    terms: tuple[Term, ...]
    verification: tuple[bytes, ...] | None = None
    sha256: bytes | None = None  # raw digest (not the shard's byte-reordered layout)

    @property
    def size(self) -> int:
        return sum(t.size for t in self.terms)


@dataclass(frozen=True)
class XorbChunkEntry:
    hash: bytes
    offset: int  # cumulative uncompressed offset inside the xorb
    size: int
    flags: int = 0


@dataclass(frozen=True)
class XorbRecord:
    """A xorb's chunk list as a shard's CAS section carries it."""

    hash: bytes
    chunks: tuple[XorbChunkEntry, ...]
    bytes_on_disk: int = 0

    @property
    def unpacked_size(self) -> int:
        return sum(c.size for c in self.chunks)


@dataclass(frozen=True)
class Shard:
    files: tuple[FileRecord, ...] = ()
    xorbs: tuple[XorbRecord, ...] = ()
    footer: dict[str, object] = field(default_factory=dict)


def reorder(raw: bytes) -> bytes:
    """Shards store a sha256 with each 8-byte group reversed (the same swap undoes it)."""
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8))


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview, end: int) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.end = end

    def record(self, what: str) -> bytes:
        if self.end - self.pos < RECORD:
            raise ShardFormatError(f"Truncated shard: {what} missing at byte {self.pos}")
        out = bytes(self.data[self.pos : self.pos + RECORD])
        self.pos += RECORD
        return out

    def remaining_records(self) -> int:
        return (self.end - self.pos) // RECORD


def parse_shard(body: bytes | bytearray | memoryview) -> Shard:
    """Parse and structurally validate a shard (upload form, or with a footer)."""
    if len(body) > MAX_SHARD_BYTES:
        raise PayloadTooLargeError(f"A shard may hold at most {MAX_SHARD_BYTES} bytes")
    if len(body) < _HEADER.size:
        raise ShardFormatError("Truncated shard: no header")
    tag, version, footer_size = _HEADER.unpack_from(body, 0)
    if tag != TAG:
        raise ShardFormatError("Not a Xet shard: bad header tag")
    if version != VERSION:
        raise ShardFormatError(f"Unsupported shard version {version}")
    footer: dict[str, object] = {}
    end = len(body)
    if footer_size == FOOTER_SIZE:
        if len(body) < _HEADER.size + FOOTER_SIZE:
            raise ShardFormatError("Truncated shard: no footer")
        footer = _parse_footer(body)
        end = int(footer["file_lookup_offset"])  # type: ignore[call-overload]  # lookup tables, if any, are not needed
        if not _HEADER.size <= end <= len(body) - FOOTER_SIZE:
            raise ShardFormatError("Shard footer offsets are out of range")
    elif footer_size != 0:
        raise ShardFormatError(f"Invalid shard footer size {footer_size}")
    reader = _Reader(body, end)
    reader.pos = _HEADER.size
    files = _parse_files(reader)
    xorbs = _parse_xorbs(reader)
    if reader.pos != end:
        raise ShardFormatError(f"{end - reader.pos} unexpected bytes after the shard's last section")
    return Shard(tuple(files), tuple(xorbs), footer)


def _parse_files(reader: _Reader) -> list[FileRecord]:
    files: list[FileRecord] = []
    while True:
        rec = reader.record("file section end")
        if rec == BOOKEND:
            return files
        file_hash, flags, n, _unused = _FILE_HEADER.unpack(rec)
        extra = (n if flags & FLAG_VERIFICATION else 0) + (1 if flags & FLAG_METADATA_EXT else 0)
        if n + extra > reader.remaining_records():
            raise ShardFormatError(f"Truncated shard: file entry declares {n} terms that are not there")
        terms = []
        for _ in range(n):
            xorb, _xflags, size, start, stop = _FILE_ENTRY.unpack(reader.record("file term"))
            terms.append(Term(xorb, start, stop, size))
        verification = None
        if flags & FLAG_VERIFICATION:
            verification = tuple(reader.record("verification entry")[:32] for _ in range(n))
        sha256 = None
        if flags & FLAG_METADATA_EXT:
            sha256 = reorder(reader.record("file metadata")[:32])
        files.append(FileRecord(file_hash, tuple(terms), verification, sha256))


def _parse_xorbs(reader: _Reader) -> list[XorbRecord]:
    xorbs: list[XorbRecord] = []
    while True:
        rec = reader.record("xorb section end")
        if rec == BOOKEND:
            return xorbs
        xorb_hash, _flags, n, _num_bytes, on_disk = _XORB_HEADER.unpack(rec)
        if n > reader.remaining_records():
            raise ShardFormatError(f"Truncated shard: xorb entry declares {n} chunks that are not there")
        chunks = []
        for _ in range(n):
            h, offset, size, cflags, _u = _XORB_ENTRY.unpack(reader.record("xorb chunk"))
            chunks.append(XorbChunkEntry(h, offset, size, cflags))
        xorbs.append(XorbRecord(xorb_hash, tuple(chunks), on_disk))


def _parse_footer(body: bytes | bytearray | memoryview) -> dict[str, object]:
    values = _FOOTER.unpack_from(body, len(body) - FOOTER_SIZE)
    names = ["version", "file_info_offset", "xorb_info_offset", "file_lookup_offset", "file_lookup_num_entry",
             "xorb_lookup_offset", "xorb_lookup_num_entry", "chunk_lookup_offset", "chunk_lookup_num_entry",
             "hmac_key", "created", "expiry"]
    footer = dict(zip(names, values[:12], strict=True))
    footer["footer_offset"] = values[-1]
    if footer["version"] != FOOTER_VERSION or footer["footer_offset"] != len(body) - FOOTER_SIZE:
        raise ShardFormatError("Invalid shard footer")
    return footer


# -- writing --------------------------------------------------------------------------------------


def _write_files(files: list[FileRecord] | tuple[FileRecord, ...]) -> bytes:
    out = bytearray()
    for f in files:
        flags = (FLAG_VERIFICATION if f.verification is not None else 0) | (
            FLAG_METADATA_EXT if f.sha256 is not None else 0
        )
        out += _FILE_HEADER.pack(f.hash, flags, len(f.terms), 0)
        for t in f.terms:
            out += _FILE_ENTRY.pack(t.xorb, 0, t.size, t.start, t.end)
        for v in f.verification or ():
            out += v + bytes(16)
        if f.sha256 is not None:
            out += reorder(f.sha256) + bytes(16)
    return bytes(out + BOOKEND)


def _write_xorbs(xorbs: list[XorbRecord] | tuple[XorbRecord, ...]) -> bytes:
    out = bytearray()
    for x in xorbs:
        out += _XORB_HEADER.pack(x.hash, 0, len(x.chunks), x.unpacked_size, x.bytes_on_disk)
        for c in x.chunks:
            out += _XORB_ENTRY.pack(c.hash, c.offset, c.size, c.flags, 0)
    return bytes(out + BOOKEND)


def build_upload_shard(files: list[FileRecord], xorbs: list[XorbRecord]) -> bytes:
    """A shard as a client uploads it: no footer, no lookup tables."""
    return _HEADER.pack(TAG, VERSION, 0) + _write_files(files) + _write_xorbs(xorbs)


def build_dedup_shard(xorbs: list[XorbRecord], hmac_key: bytes, created: int, expiry: int) -> bytes:
    """The global dedup answer: the xorbs' chunk lists with HMAC-protected chunk hashes, and a footer.

    Offsets and sizes stay in clear; a client that holds a chunk computes its HMAC to find it.
    """
    if len(hmac_key) != 32 or hmac_key == ZERO_HASH:
        raise ValueError("a dedup shard needs a non-zero 32-byte HMAC key")
    protected = [
        XorbRecord(x.hash, tuple(XorbChunkEntry(hmac_hash(c.hash, hmac_key), c.offset, c.size, c.flags)
                                 for c in x.chunks), x.bytes_on_disk)
        for x in xorbs
    ]
    files = _write_files([])
    xorb_section = _write_xorbs(protected)
    xorb_offset = _HEADER.size + len(files)
    footer_offset = xorb_offset + len(xorb_section)
    footer = _FOOTER.pack(
        FOOTER_VERSION, _HEADER.size, xorb_offset,
        footer_offset, 0, footer_offset, 0, footer_offset, 0,
        hmac_key, created, expiry,
        0, 0, 0, 0, 0, 0,
        sum(x.bytes_on_disk for x in xorbs), 0, sum(x.unpacked_size for x in xorbs), footer_offset,
    )
    return _HEADER.pack(TAG, VERSION, FOOTER_SIZE) + files + xorb_section + footer
