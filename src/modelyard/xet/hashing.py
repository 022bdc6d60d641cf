"""Xet hashes: chunk hashes, the merkle (aggregated) hash of xorbs and files, verification hashes.

Every hash is a keyed BLAKE3 digest (spec page "hashing"). The string form used on the wire
reverses the byte order inside each 8-byte group before writing hex (spec page "api").
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import blake3

from modelyard.errors import InvalidInputError

DATA_KEY = bytes([
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
    157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
])
INTERNAL_NODE_KEY = bytes([
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
    93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
])
VERIFICATION_KEY = bytes([
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
    164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
])
ZERO_HASH = bytes(32)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}\Z")

#: A merkle node: (hash, number of bytes under it).
Node = tuple[bytes, int]


def hash_to_str(raw: bytes) -> str:
    """32 raw bytes -> the Xet string: each 8-byte group byte-reversed, then lowercase hex."""
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8)).hex()


def str_to_hash(text: str, what: str = "hash") -> bytes:
    """The Xet string of a hash -> 32 raw bytes; InvalidInputError unless it is 64 hex digits."""
    if not isinstance(text, str) or not _HEX64.match(text):
        raise InvalidInputError(f"Invalid Xet {what} {text!r}: expected 64 hex digits")
    b = bytes.fromhex(text)
    return b"".join(b[i : i + 8][::-1] for i in range(0, 32, 8))


def keyed(key: bytes, data: bytes | memoryview) -> bytes:
    return blake3.blake3(data, key=key).digest()


def chunk_hash(data: bytes | memoryview) -> bytes:
    """The hash of one chunk's uncompressed bytes."""
    return blake3.blake3(data, key=DATA_KEY).digest()


def modulo(raw: bytes, n: int) -> int:
    """``hash % n`` as the spec defines it: the last 8 bytes read as a little-endian u64."""
    value: int = struct.unpack_from("<Q", raw, 24)[0]
    return value % n


def _next_cut(level: Sequence[Node], start: int) -> int:
    """How many nodes from ``start`` form the next group of a merkle level (3..9, or the rest)."""
    remaining = len(level) - start
    if remaining <= 2:
        return remaining
    end = min(9, remaining)
    for i in range(2, end):
        if modulo(level[start + i][0], 4) == 0:
            return i + 1
    return end


def _merge(group: Sequence[Node]) -> Node:
    text = "".join(f"{hash_to_str(h)} : {size}\n" for h, size in group)
    return keyed(INTERNAL_NODE_KEY, text.encode()), sum(size for _h, size in group)


def merkle_root(nodes: Sequence[Node]) -> bytes:
    """The aggregated hash of ``(hash, size)`` nodes: a xorb's hash over its chunks."""
    if not nodes:
        return ZERO_HASH
    level = list(nodes)
    while len(level) > 1:
        nxt: list[Node] = []
        i = 0
        while i < len(level):
            n = _next_cut(level, i)
            nxt.append(_merge(level[i : i + n]))
            i += n
        level = nxt
    return level[0][0]


def file_hash(chunks: Sequence[Node]) -> bytes:
    """A file's hash: the merkle root over all its chunks, keyed once more with a zero salt."""
    if not chunks:
        return ZERO_HASH
    return keyed(ZERO_HASH, merkle_root(chunks))


def verification_hash(raw_chunk_hashes: Sequence[bytes]) -> bytes:
    """The range hash a shard gives for a term: over the concatenated raw chunk hashes."""
    return keyed(VERIFICATION_KEY, b"".join(raw_chunk_hashes))


def hmac_hash(raw: bytes, key: bytes) -> bytes:
    """A chunk hash protected for the global dedup answer."""
    return keyed(key, raw)
