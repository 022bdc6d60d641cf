"""The sha256 a shard declares for a new file is checked, from the xorbs as they arrived where it can.

A two-xorb file is built by hand. To show which bytes the server hashed, a test moves xorb blobs
out of storage before sending the shard: a check that needed to read them would fail. They are
put back before anything reads the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelyard.services.xet import xorb_key
from modelyard.xet.hashing import file_hash, hash_to_str, verification_hash
from modelyard.xet.shard import FileRecord, Term, XorbChunkEntry, XorbRecord, build_upload_shard
from modelyard.xet.xorb import Compression, serialize_xorb
from tests.conformance.test_xet_bad_input import commit_lfs_file
from tests.support.server import LiveServer
from tests.support.xet import CHUNK, Cas, Payload, payload


@dataclass(frozen=True)
class Part:
    body: bytes
    name: str
    record: XorbRecord
    term: Term
    verification: bytes
    nodes: list[tuple[bytes, int]]


def part(data: bytes, scheme: Compression) -> Part:
    body, index = serialize_xorb([data[i : i + CHUNK] for i in range(0, len(data), CHUNK)], scheme)
    entries, offset = [], 0
    for c in index.chunks:
        entries.append(XorbChunkEntry(c.hash, offset, c.size))
        offset += c.size
    return Part(body, hash_to_str(index.hash()), XorbRecord(index.hash(), tuple(entries)),
                Term(index.hash(), 0, len(index.chunks), len(data)),
                verification_hash([c.hash for c in index.chunks]), [(c.hash, c.size) for c in index.chunks])


@dataclass(frozen=True)
class TwoXorbFile:
    data: bytes
    parts: tuple[Part, Part]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def shard(self, sha256: bytes | None = None) -> bytes:
        a, b = self.parts
        record = FileRecord(file_hash(a.nodes + b.nodes), (a.term, b.term), (a.verification, b.verification),
                            sha256 or hashlib.sha256(self.data).digest())
        return build_upload_shard([record], [a.record, b.record])

    def as_payload(self) -> Payload:
        """Enough of a ``Payload`` for ``commit_lfs_file`` (sha256 and size)."""
        return Payload(self.data, b"", None, "", None, None)  # type: ignore[arg-type]


def two_xorb_file() -> TwoXorbFile:
    first, second = os.urandom(5 * CHUNK + 1234), os.urandom(3 * CHUNK + 99)
    # One xorb stored as is, one LZ4-compressed (it decompresses while being hashed).
    return TwoXorbFile(first + second, (part(first, Compression.NONE), part(second, Compression.LZ4)))


@contextmanager
def moved_out(server: LiveServer, *parts: Part) -> Iterator[None]:
    """The parts' xorb blobs are absent from storage inside the block, back afterwards."""
    paths = [server.data_dir / "blobs" / xorb_key(p.name) for p in parts]
    for path in paths:
        path.rename(path.with_name(path.name + ".aside"))
    try:
        yield
    finally:
        for path in paths:
            Path(str(path) + ".aside").rename(path)


def upload_xorbs(cas: Cas, *parts: Part) -> None:
    for p in parts:
        r = cas.xorb(p.name, p.body)
        assert r.status_code == 200 and r.json() == {"was_inserted": True}, r.text


def test_in_order_xorbs_need_no_read_back(server: LiveServer, repo: str, cas: Cas) -> None:
    f = two_xorb_file()
    upload_xorbs(cas, *f.parts)
    with moved_out(server, *f.parts):
        r = cas.shard(f.shard())
    assert r.status_code == 200 and r.json()["result"] == 1, r.text
    assert commit_lfs_file(server, repo, "f.bin", f.as_payload()).status_code == 200
    assert httpx.get(f"{server.url}/{repo}/resolve/main/f.bin").content == f.data


def test_a_lying_sha256_is_refused_from_the_arrival_hash(server: LiveServer, repo: str, cas: Cas) -> None:
    f = two_xorb_file()
    upload_xorbs(cas, *f.parts)
    with moved_out(server, *f.parts):
        r = cas.shard(f.shard(sha256=hashlib.sha256(b"something else").digest()))
    assert r.status_code == 400 and "reconstructs to sha256" in r.text, r.text
    assert commit_lfs_file(server, repo, "f.bin", f.as_payload()).status_code == 400


def test_out_of_order_xorbs_resume_from_storage(server: LiveServer, repo: str, cas: Cas) -> None:
    f = two_xorb_file()
    first, second = f.parts
    unrelated = payload(os.urandom(2 * CHUNK))
    upload_xorbs(cas, first)
    assert cas.xorb(unrelated.xorb_hash, unrelated.xorb).status_code == 200  # arrives in between
    upload_xorbs(cas, second)
    with moved_out(server, first):  # hashed on arrival; only the second xorb is read back
        r = cas.shard(f.shard())
    assert r.status_code == 200, r.text
    assert commit_lfs_file(server, repo, "f.bin", f.as_payload()).status_code == 200
    assert httpx.get(f"{server.url}/{repo}/resolve/main/f.bin").content == f.data


def test_a_file_not_at_the_chains_start_is_read_back_in_full(server: LiveServer, repo: str, cas: Cas) -> None:
    f = two_xorb_file()
    earlier = payload(os.urandom(2 * CHUNK))
    assert cas.xorb(earlier.xorb_hash, earlier.xorb).status_code == 200
    upload_xorbs(cas, *f.parts)
    r = cas.shard(f.shard())  # the chain starts with another xorb: everything is read from storage
    assert r.status_code == 200, r.text
    # A known file's sha256 is compared with the one recorded: a lie is still caught.
    lie = cas.shard(f.shard(sha256=hashlib.sha256(b"nope").digest()))
    assert lie.status_code == 400, lie.text
    assert commit_lfs_file(server, repo, "f.bin", f.as_payload()).status_code == 200
    assert httpx.get(f"{server.url}/{repo}/resolve/main/f.bin").content == f.data
