"""Xet formats against published and captured vectors, plus property tests.

``xet_vectors/``: merkle vectors from xet-core's ``aggregated_hashes.rs`` test (Apache-2.0, data
only); ``file_vectors.json`` hashes confirmed by hf_xet 1.8.0's ``hash_files``; ``hello_world.*``
bodies exactly as hf_xet 1.8.0 uploaded them, and a dedup answer shard that 1.8.0 accepted.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import hf_xet
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidInputError, PayloadTooLargeError
from modelyard.xet.hashing import (
    ZERO_HASH,
    chunk_hash,
    file_hash,
    hash_to_str,
    keyed,
    merkle_root,
    str_to_hash,
    verification_hash,
)
from modelyard.xet.reconstruction import check_file, pack_terms, plan, unpack_terms
from modelyard.xet.shard import (
    FileRecord,
    ShardFormatError,
    Term,
    XorbRecord,
    build_dedup_shard,
    build_upload_shard,
    parse_shard,
)
from modelyard.xet.xorb import (
    MAX_XORB_BODY,
    Compression,
    XorbFormatError,
    XorbIndex,
    bg4_regroup,
    bg4_split,
    iter_chunks,
    parse_xorb,
    serialize_xorb,
)

VECTORS = Path(__file__).parent / "xet_vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def test_hash_string_is_byte_reordered_per_8_byte_group() -> None:
    raw = bytes(range(32))
    assert hash_to_str(raw) == "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
    raw = bytes([22, 175, 58, 132, 4, 75, 131, 214, 190, 153, 138, 66, 226, 3, 153, 242,
                 204, 86, 80, 234, 249, 153, 80, 99, 159, 80, 65, 138, 236, 231, 149, 78])
    assert hash_to_str(raw) == "d6834b04843aaf16f29903e2428a99be635099f9ea5056cc4e95e7ec8a41509f"
    assert str_to_hash(hash_to_str(raw).upper()) == raw
    for bad in ("", "ab", "g" * 64, "0" * 63, "0" * 65, "0" * 64 + "\n"):
        with pytest.raises(InvalidInputError):
            str_to_hash(bad)


@given(st.binary(min_size=32, max_size=32))
def test_hash_string_round_trip(raw: bytes) -> None:
    assert str_to_hash(hash_to_str(raw)) == raw


def test_merkle_vectors() -> None:
    vectors = load("merkle_vectors.json")["vectors"]
    assert len(vectors) == 18
    for v in vectors:
        nodes = [(str_to_hash(h), size) for h, size in v["chunks"]]
        assert hash_to_str(merkle_root(nodes)) == v["xorb_hash"]
        for salted in v["file_hash_with_salt"]:
            salt = str_to_hash(salted["salt"])
            expected = ZERO_HASH if not nodes else keyed(salt, merkle_root(nodes))
            assert hash_to_str(expected) == salted["file_hash"]
            if salt == ZERO_HASH:
                assert hash_to_str(file_hash(nodes)) == salted["file_hash"]


def make(recipe: str) -> bytes:
    if recipe.startswith("r = random.Random(42)"):
        r = random.Random(42)
        return bytes(r.getrandbits(8) for _ in range(1 << 20))
    data: bytes = eval(recipe, {"bytes": bytes})  # the recipes are literals like bytes(300 * 1024)
    return data


def test_file_vectors_and_hf_xet_agree(tmp_path: Path) -> None:
    for v in load("file_vectors.json")["inputs"]:
        data = make(v["recipe"])
        assert hashlib.sha256(data).hexdigest() == v["sha256"]
        chunks = [(str_to_hash(c["hash"]), c["length"]) for c in v["chunks"]]
        for c in v["chunks"]:
            piece = data[c["offset"] : c["offset"] + c["length"]]
            assert hash_to_str(chunk_hash(piece)) == c["hash"]
        assert hash_to_str(file_hash(chunks)) == v["file_hash"]
        assert hash_to_str(merkle_root(chunks)) == v["xorb_hash_if_all_chunks_in_one_xorb"]
        if chunks:
            assert hash_to_str(verification_hash([h for h, _ in chunks])) == (
                v["verification_hash_for_term_covering_all_chunks"]
            )
        # The installed client agrees, which pins these vectors to the real implementation.
        path = tmp_path / v["name"]
        path.write_bytes(data)
        [info] = hf_xet.hash_files([str(path)])
        assert info.hash == v["file_hash"] and info.file_size == len(data)


def test_hello_world_xorb_and_shard_from_hf_xet() -> None:
    body = (VECTORS / "hello_world.xorb").read_bytes()
    index = parse_xorb(body, str_to_hash("4e39378b9d359f118190557a1f44130219a54e5fcfa07bd96cf50b466fe651b1"))
    assert [(c.start, c.end, c.size) for c in index.chunks] == [(0, 19, 11)]
    assert list(iter_chunks(body)) == [b"hello world"]
    raw = (VECTORS / "hello_world.shard").read_bytes()
    shard = parse_shard(raw)
    [f] = shard.files
    assert hash_to_str(f.hash) == "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f"
    assert f.sha256 is not None and f.sha256.hex() == hashlib.sha256(b"hello world").hexdigest()
    assert f.verification is not None
    assert hash_to_str(f.verification[0]) == "22ef2fdcff5cea306e42ad7e15ed8a0c5e789e7d2ec34658c10d2758946847da"
    check_file(f, {index.hash(): index})
    assert build_upload_shard(list(shard.files), list(shard.xorbs)) == raw  # byte-identical writer


def test_dedup_shard_layout_matches_what_hf_xet_accepted() -> None:
    shard = parse_shard((VECTORS / "hello_world.shard").read_bytes())
    x = shard.xorbs[0]
    built = build_dedup_shard([XorbRecord(x.hash, x.chunks, 19)], bytes(range(32)), 1700000000, 1700604800)
    assert built == (VECTORS / "hello_world_dedup_example.shard").read_bytes()
    parsed = parse_shard(built)
    assert parsed.footer["hmac_key"] == bytes(range(32)) and parsed.files == ()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000))
def test_bg4_round_trip(data: bytes) -> None:
    assert bg4_regroup(bg4_split(data)) == data


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12),
       st.sampled_from(list(Compression)))
def test_xorb_round_trip(chunks: list[bytes], scheme: Compression) -> None:
    body, index = serialize_xorb(chunks, scheme)
    parsed = parse_xorb(body, index.hash())
    assert parsed == index == XorbIndex.unpack(index.pack())
    assert list(iter_chunks(body)) == chunks


def test_xorb_validation_errors() -> None:
    chunks = [bytes(range(256)) * 40, b"\x00" * 9000, b"tail"]
    body, index = serialize_xorb(chunks, Compression.BG4_LZ4)
    with pytest.raises(XorbFormatError, match="hashes to"):
        parse_xorb(body, ZERO_HASH)
    with pytest.raises(XorbFormatError, match="Truncated"):
        parse_xorb(body[:-1], index.hash())
    with pytest.raises(XorbFormatError, match="Truncated"):
        parse_xorb(body + b"\x00\x00\x00", index.hash())
    bad = bytearray(body)
    bad[4] = 3
    with pytest.raises(XorbFormatError, match="compression scheme 3"):
        parse_xorb(bytes(bad))
    bad = bytearray(body)
    bad[0] = 1
    with pytest.raises(XorbFormatError, match="version"):
        parse_xorb(bytes(bad))
    big = bytes([0]) + (10).to_bytes(3, "little") + bytes([0]) + (200_000).to_bytes(3, "little")
    with pytest.raises(XorbFormatError, match="1 to 131072"):
        parse_xorb(big + bytes(10))
    with pytest.raises(XorbFormatError, match="footer"):
        parse_xorb(b"XETBLOB\x01" + bytes(40))
    with pytest.raises(PayloadTooLargeError):
        parse_xorb(bytes(MAX_XORB_BODY + 1))
    # 513 full chunks (64 MiB + 128 KiB of data) fit in a body but are too much data.
    full, _ = serialize_xorb([bytes(131072)], Compression.LZ4)
    with pytest.raises(PayloadTooLargeError, match="of data"):
        parse_xorb(full * 513)
    lz4_garbage = bytes([0]) + (5).to_bytes(3, "little") + bytes([1]) + (5).to_bytes(3, "little") + b"abcde"
    with pytest.raises(XorbFormatError, match="LZ4|decompresses"):
        parse_xorb(lz4_garbage)


def _file(data: bytes, chunk: int) -> tuple[FileRecord, XorbIndex, bytes]:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    body, index = serialize_xorb(pieces)
    nodes = [(c.hash, c.size) for c in index.chunks]
    term = Term(index.hash(), 0, len(pieces), len(data))
    record = FileRecord(file_hash(nodes), (term,), (verification_hash([c.hash for c in index.chunks]),),
                        hashlib.sha256(data).digest())
    return record, index, body


def test_plan_covers_any_range_exactly() -> None:
    rng = random.Random(3)
    data = rng.randbytes(50_000)
    record, index, body = _file(data, 4096)
    # Two terms over the same xorb, the second overlapping the first: ranges merge per xorb.
    terms = (Term(index.hash(), 0, 8, 8 * 4096), Term(index.hash(), 5, len(index.chunks), len(data) - 5 * 4096))
    content = data[: 8 * 4096] + data[5 * 4096 :]
    indexes = {index.hash(): index}
    assert unpack_terms(pack_terms(terms)) == terms
    for _ in range(200):
        start = rng.randrange(len(content))
        end = rng.randrange(start + 1, len(content) + 1)
        p = plan(terms, indexes, start, end)
        out = b""
        for t in p.terms:
            [r] = [r for r in p.fetch[t.xorb] if r.start <= t.start and t.end <= r.end]
            chunk_bytes = body[r.byte_start : r.byte_end]
            decoded = b"".join(iter_chunks(chunk_bytes))
            first = sum(c.size for c in index.chunks[r.start : t.start])
            out += decoded[first : first + t.size]
        assert out[p.offset_into_first_range : p.offset_into_first_range + end - start] == content[start:end]
        assert len(p.fetch[index.hash()]) == 1  # overlapping terms share one fetch range


def test_check_file_catches_inconsistencies() -> None:
    record, index, _ = _file(b"abc" * 20_000, 8192)
    indexes = {index.hash(): index}
    check_file(record, indexes)
    t = record.terms[0]
    broken = [
        FileRecord(record.hash, (Term(t.xorb, 0, t.end + 1, t.size),), record.verification, record.sha256),
        FileRecord(record.hash, (Term(t.xorb, 0, t.end, t.size + 1),), record.verification, record.sha256),
        FileRecord(record.hash, record.terms, (ZERO_HASH,), record.sha256),
        FileRecord(record.hash, record.terms, None, record.sha256),
        FileRecord(ZERO_HASH, record.terms, record.verification, record.sha256),
    ]
    for bad in broken:
        with pytest.raises(InvalidInputError):
            check_file(bad, indexes)


def test_shard_parser_refuses_malformed_input() -> None:
    raw = (VECTORS / "hello_world.shard").read_bytes()
    for bad in (raw[:40], raw[:-1], raw + b"\x00" * 48, b"X" + raw[1:], raw[:32] + (3).to_bytes(8, "little") + raw[40:],
                raw[:40] + (7).to_bytes(8, "little") + raw[48:]):
        with pytest.raises(ShardFormatError):
            parse_shard(bad)
    # A file entry that declares more terms than the shard holds.
    lying = bytearray(raw)
    lying[48 + 36 : 48 + 40] = (1000).to_bytes(4, "little")
    with pytest.raises(ShardFormatError, match="Truncated"):
        parse_shard(bytes(lying))
