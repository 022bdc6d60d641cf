"""Hand-built Xet payloads and a minimal CAS client for tests that send what hf_xet never would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from modelyard.services.grants import sign
from modelyard.xet.hashing import file_hash, hash_to_str, verification_hash
from modelyard.xet.shard import FileRecord, Term, XorbChunkEntry, XorbRecord, build_upload_shard
from modelyard.xet.xorb import Compression, XorbIndex, serialize_xorb
from tests.support.server import LiveServer

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Payload:
    """One file in one xorb: the bodies to upload and the names to check."""

    data: bytes
    xorb: bytes
    index: XorbIndex
    xorb_hash: str
    file: FileRecord
    xorb_record: XorbRecord

    @property
    def file_hash(self) -> str:
        return hash_to_str(self.file.hash)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def shard(self, **changes: Any) -> bytes:
        """The upload shard, optionally with fields of the file record replaced."""
        record = FileRecord(**{**self.file.__dict__, **changes})
        return build_upload_shard([record], [self.xorb_record])


def payload(data: bytes, scheme: Compression = Compression.LZ4, chunk: int = CHUNK) -> Payload:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    body, index = serialize_xorb(pieces, scheme)
    nodes = [(c.hash, c.size) for c in index.chunks]
    term = Term(index.hash(), 0, len(index.chunks), len(data))
    record = FileRecord(file_hash(nodes), (term,), (verification_hash([c.hash for c in index.chunks]),),
                        hashlib.sha256(data).digest())
    entries, offset = [], 0
    for c in index.chunks:
        entries.append(XorbChunkEntry(c.hash, offset, c.size))
        offset += c.size
    return Payload(data, body, index, hash_to_str(index.hash()), record,
                   XorbRecord(index.hash(), tuple(entries)))


class Cas:
    """The CAS of a live server, as a token holder sees it."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.base = f"{server.url}/xet"
        self.headers = {"Authorization": f"Bearer {token}"}

    def xorb(self, name: str, body: bytes, prefix: str = "default") -> httpx.Response:
        return httpx.post(f"{self.base}/v1/xorbs/{prefix}/{name}", content=body, headers=self.headers, timeout=60)

    def shard(self, body: bytes) -> httpx.Response:
        return httpx.post(f"{self.base}/v1/shards", content=body, headers=self.headers, timeout=60)

    def reconstruction(self, file_hash: str, range_: str | None = None, version: int = 1) -> httpx.Response:
        headers = dict(self.headers)
        if range_:
            headers["Range"] = range_
        return httpx.get(f"{self.base}/v{version}/reconstructions/{file_hash}", headers=headers)

    def upload(self, p: Payload) -> None:
        assert self.xorb(p.xorb_hash, p.xorb).status_code == 200
        r = self.shard(p.shard())
        assert r.status_code == 200, r.text


def xet_token(server: LiveServer, repo_id: str, mode: str, hf_token: str | None,
              revision: str = "main", query: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {hf_token}"} if hf_token else {}
    return httpx.get(f"{server.url}/api/models/{repo_id}/xet-{mode}-token/{revision}{query}", headers=headers)


def cas_token(server: LiveServer, repo_id: str, mode: str, hf_token: str) -> str:
    r = xet_token(server, repo_id, mode, hf_token)
    assert r.status_code == 200, r.text
    return str(r.json()["accessToken"])


class _Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def signing_key(self) -> bytes:
        return self._key


def signing_key(server: LiveServer) -> bytes:
    """The server's HMAC key, read from its key file (to mint an expired but genuine token)."""
    return bytes.fromhex((server.data_dir / "signing.key").read_text().strip())


def mint(server: LiveServer, payload: dict[str, Any]) -> str:
    return sign(_Signer(signing_key(server)), payload)  # type: ignore[arg-type]
