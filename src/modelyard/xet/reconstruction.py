"""Reconstruction planning: which chunk runs of which xorbs make a byte range of a file.

Pure math over a file's terms and its xorbs' indexes; the services turn a plan into the CAS
JSON answer (with signed fetch URLs) or into bytes for a plain HTTP download.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelyard.errors import InvalidInputError
from modelyard.xet.hashing import Node, file_hash, hash_to_str, verification_hash
from modelyard.xet.shard import FileRecord, Term
from modelyard.xet.xorb import XorbIndex

_TERM = struct.Struct("<32sIII")


class ReconstructionError(InvalidInputError):
    """A shard's file entry that does not match the stored xorbs."""


def pack_terms(terms: Sequence[Term]) -> bytes:
    return b"".join(_TERM.pack(t.xorb, t.start, t.end, t.size) for t in terms)


def unpack_terms(data: bytes) -> tuple[Term, ...]:
    return tuple(Term(x, s, e, n) for x, s, e, n in _TERM.iter_unpack(data))


@dataclass(frozen=True)
class FetchRange:
    """Chunks ``[start, end)`` of a xorb, stored at body bytes ``[byte_start, byte_end)``."""

    start: int
    end: int
    byte_start: int
    byte_end: int


@dataclass
class Plan:
    """The terms covering a range, the offset to skip in the first, and what to fetch per xorb."""

    offset_into_first_range: int = 0
    terms: list[Term] = field(default_factory=list)
    fetch: dict[bytes, list[FetchRange]] = field(default_factory=dict)
    length: int = 0  # bytes the caller asked for


def check_file(record: FileRecord, indexes: Mapping[bytes, XorbIndex]) -> None:
    """Check every term of an uploaded file against the stored xorbs.

    Chunk ranges must exist, sizes must add up, each verification hash must match the stored
    chunk hashes (this proves the uploader had the data) and the chunks must hash to the file
    hash. Raises ReconstructionError naming the first inconsistency.
    """
    name = hash_to_str(record.hash)
    if record.verification is None or len(record.verification) != len(record.terms):
        raise ReconstructionError(f"File {name}: every term needs a verification entry")
    nodes: list[Node] = []
    for i, (term, expected) in enumerate(zip(record.terms, record.verification, strict=True)):
        index = indexes[term.xorb]
        if not 0 <= term.start < term.end <= len(index.chunks):
            raise ReconstructionError(
                f"File {name} term {i}: chunks [{term.start}, {term.end}) are outside xorb "
                f"{hash_to_str(term.xorb)} ({len(index.chunks)} chunks)"
            )
        chunks = index.chunks[term.start : term.end]
        size = sum(c.size for c in chunks)
        if size != term.size:
            raise ReconstructionError(
                f"File {name} term {i}: claims {term.size} bytes, the chunks hold {size}"
            )
        if verification_hash([c.hash for c in chunks]) != expected:
            raise ReconstructionError(f"File {name} term {i}: verification hash does not match the stored chunks")
        nodes.extend((c.hash, c.size) for c in chunks)
    actual = file_hash(nodes)
    if actual != record.hash:
        raise ReconstructionError(f"File {name}: its chunks hash to {hash_to_str(actual)}")


def plan(terms: Sequence[Term], indexes: Mapping[bytes, XorbIndex], start: int, end: int) -> Plan:
    """Cover file bytes ``[start, end)`` with whole chunks; ``end`` is clamped by the caller."""
    out = Plan(length=max(0, end - start))
    if end <= start:
        return out
    cum = 0
    for term in terms:
        if cum >= end:
            break
        if cum + term.size <= start:
            cum += term.size
            continue
        chunks = indexes[term.xorb].chunks
        s, e, size = term.start, term.end, term.size
        while cum + chunks[s].size <= start:
            cum += chunks[s].size
            size -= chunks[s].size
            s += 1
        if not out.terms:
            out.offset_into_first_range = start - cum
        while e - 1 > s and cum + size - chunks[e - 1].size >= end:
            size -= chunks[e - 1].size
            e -= 1
        out.terms.append(Term(term.xorb, s, e, size))
        _add_fetch(out.fetch.setdefault(term.xorb, []), s, e, chunks[s].start, chunks[e - 1].end)
        cum += size
    return out


def _add_fetch(ranges: list[FetchRange], s: int, e: int, byte_start: int, byte_end: int) -> None:
    """Merge a chunk run into a xorb's fetch list (runs that overlap or touch become one)."""
    for i, r in enumerate(ranges):
        if s <= r.end and r.start <= e:
            ranges[i] = FetchRange(min(s, r.start), max(e, r.end), min(byte_start, r.byte_start),
                                   max(byte_end, r.byte_end))
            return
    ranges.append(FetchRange(s, e, byte_start, byte_end))
