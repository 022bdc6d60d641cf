"""Xet storage: CAS tokens, xorb and shard uploads, reconstructions, global dedup, file reads.

The CAS is served by the same server under ``/xet`` (see docs/xet.md). A CAS token is an HMAC
signed claim ``(repo, read|write, expiry)`` issued by the Hub token routes; every CAS call checks
it. Xorbs are global and content-addressed (their hash proves their content); files belong to
the repositories they were uploaded to, which is what reads are scoped by.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from modelyard.catalog import repos as repos_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.repos import Repo
from modelyard.catalog.xet import StoredFile
from modelyard.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
)
from modelyard.ranges import parse_range
from modelyard.services.auth import Principal, visibility
from modelyard.services.contributions import check_push
from modelyard.services.gating import check_download
from modelyard.services.grants import Grant, check_grant, claims, sign, verify_signature
from modelyard.services.hub import Hub, utcnow
from modelyard.services.pools import long_work_executor
from modelyard.services.repos import find_repo
from modelyard.xet.hashing import ZERO_HASH, hash_to_str, modulo, str_to_hash
from modelyard.xet.reconstruction import check_file, pack_terms, plan, unpack_terms
from modelyard.xet.shard import MAX_SHARD_BYTES as MAX_SHARD_BYTES  # re-exported for the http layer
from modelyard.xet.shard import (
    ShardFormatError,
    Term,
    XorbChunkEntry,
    XorbRecord,
    build_dedup_shard,
    parse_shard,
)
from modelyard.xet.xorb import MAX_XORB_BODY as MAX_XORB_BODY  # re-exported for the http layer
from modelyard.xet.xorb import XorbFormatError, XorbIndex, iter_chunks, parse_xorb

CAS_PATH = "/xet"
#: The xorb prefixes clients use: hf_xet 1.8 sends "default", the spec says "default-merkledb".
PREFIXES = frozenset({"default", "default-merkledb"})
#: A chunk is offered for global dedup when it starts a file or when its hash is 0 modulo this.
DEDUP_MODULUS = 1024
#: A dedup answer describes at most this many xorbs (about 48 bytes per chunk: a few MiB at most),
#: taken from at most this many files that use the queried chunk's xorb.
DEDUP_MAX_XORBS = 64
DEDUP_RELATED_FILES = 8
#: Bytes of a stored xorb read at once when reconstructing a file on the server.
READ_WINDOW = 8 * 1024 * 1024
#: Upload scopes (repos) whose xorbs this process hashes in arrival order (``_Chain``), the most
#: xorbs one chain follows (256 GiB), and how long an idle chain is kept.
CHAIN_SCOPES = 32
CHAIN_MAX_XORBS = 4096
CHAIN_IDLE = 600.0


def xorb_key(xorb_hash: str) -> str:
    return f"xet/xorbs/{xorb_hash[0:2]}/{xorb_hash[2:4]}/{xorb_hash}"


def shard_key(shard_hash: str) -> str:
    return f"xet/shards/{shard_hash[0:2]}/{shard_hash[2:4]}/{shard_hash}"


# -- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XetToken:
    access_token: str
    exp: int
    cas_url: str


def issue_token(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, mode: str, base_url: str,
    revision: str = "main", create_pr: bool = False,
) -> XetToken:
    """A CAS token for one repository: ``read`` needs read access, ``write`` write access.

    The revision in the route only names where the upload will be committed (or ``None`` for a
    new pull request); the token is scoped to the repository, and the commit checks the ref.
    The token is a grant (``services/grants.py``): every CAS call re-checks it.
    """
    contributor = False
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if mode == "read":  # a read token reaches every file's bytes
            check_download(conn, principal, repo)
        if mode == "write":  # a reader may upload the files of their own (or a new) pull request
            ref = revision if revision.startswith("refs/") else f"refs/heads/{revision}"
            contributor = check_push(conn, principal, repo, ref, create_pr)
    exp = int(time.time()) + hub.settings.xet_token_ttl
    grant = claims(principal, repo) | ({"c": 1} if contributor else {})
    token = sign(hub, {"k": "xet", **grant, "w": mode == "write", "exp": exp})
    return XetToken(token, exp, base_url + CAS_PATH)


def issue_bucket_token(hub: Hub, principal: Principal | None, bucket: Repo, mode: str, base_url: str) -> XetToken:
    """A CAS token for a bucket (``services/buckets.py`` checked the caller's access): a grant
    on the bucket's row like a repo's, re-checked at every CAS call."""
    exp = int(time.time()) + hub.settings.xet_token_ttl
    token = sign(hub, {"k": "xet", **claims(principal, bucket), "w": mode == "write", "exp": exp})
    return XetToken(token, exp, base_url + CAS_PATH)


def cas_scope(hub: Hub, token: str | None, write: bool) -> Grant:
    """The repository a CAS call acts on, and for whom; 401 for a missing, forged, expired or
    revoked token, 403 for a read token used to write, 404 when the repo is gone or hidden now."""
    if not token:
        raise AuthenticationError("A Xet CAS token is required (Authorization: Bearer ...)")
    try:
        payload = verify_signature(hub, token, "xet")
    except AuthenticationError as exc:
        raise AuthenticationError("Invalid or expired Xet token: ask the xet token route for a new one") from exc
    if write and not payload.get("w"):
        raise PermissionDeniedError("This Xet token is read-only; uploads need a xet-write-token")
    return check_grant(hub, payload, write=write)


def _check_prefix(prefix: str) -> None:
    if prefix not in PREFIXES:
        raise InvalidInputError(f"Unknown Xet prefix {prefix!r}: expected 'default'")


# -- xorbs -------------------------------------------------------------------------------------


def load_indexes(conn: Connection, hashes: Sequence[str]) -> dict[str, XorbIndex]:
    # Not cached across requests: a xorb removed by gc and uploaded again may be compressed
    # differently, so the same name can come back with other byte offsets.
    return {h: XorbIndex.unpack(stored.chunks) for h, stored in xet_q.xorbs(conn, hashes).items()}


def indexes_for(conn: Connection, terms: Sequence[Term]) -> dict[bytes, XorbIndex]:
    """The stored index of every xorb the terms use, keyed by raw hash; NotFoundError if one is gone."""
    names = {t.xorb: hash_to_str(t.xorb) for t in terms}
    found = load_indexes(conn, list(names.values()))
    out = {}
    for raw, name in names.items():
        if name not in found:
            raise NotFoundError(f"Xorb {name} is missing from the database")
        out[raw] = found[name]
    return out


# -- sha256 of new files, computed while their xorbs arrive ----------------------------------------


@dataclass(frozen=True)
class _Link:
    xorb: bytes
    chunks: int
    digest: Any  # hashlib's sha256 state after this xorb's data


class _Chain:
    """The sha256 of one repo's uploaded xorbs, in the order they were validated (a cache).

    A shard only arrives after all its xorbs, and checking the sha256 each new file declares then
    means reading the whole file back from storage (about 1 s per GiB here). But ``hf_xet`` packs
    a new file's chunks into xorbs in file order and uploads them roughly in that order, so the
    server hashes each validated xorb's data as it arrives, keeping the state after each one.
    At the shard, a file whose terms are whole xorbs in the chain's order from its start gets its
    sha256 from the chain; where the order first differs (say two xorbs finished out of order),
    hashing resumes from the state there and reads only the rest from storage. Nothing here is
    trusted beyond what was hashed: a file that does not match from the first xorb is read back
    in full. The chain lives in this process only; another worker or server just reads back.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.links: list[_Link] = []
        self.digest = hashlib.sha256()
        self.used = time.monotonic()


_chains: OrderedDict[int, _Chain] = OrderedDict()
_chains_lock = threading.Lock()


def _chain(repo_pk: int, create: bool) -> _Chain | None:
    with _chains_lock:
        now = time.monotonic()
        for stale in [k for k, c in _chains.items() if now - c.used > CHAIN_IDLE]:
            del _chains[stale]
        chain = _chains.get(repo_pk)
        if chain is None and create:
            chain = _chains[repo_pk] = _Chain()
            while len(_chains) > CHAIN_SCOPES:
                _chains.popitem(last=False)
        if chain is not None:
            chain.used = now
            _chains.move_to_end(repo_pk)
        return chain


def _drop_chain(repo_pk: int) -> None:
    with _chains_lock:
        _chains.pop(repo_pk, None)


def _extend_chain(repo_pk: int, xorb: bytes, index: XorbIndex, body: bytes | bytearray | memoryview) -> None:
    """Hash a validated xorb's data onto its repo's chain."""
    chain = _chain(repo_pk, create=True)
    assert chain is not None
    with chain.lock:
        if len(chain.links) >= CHAIN_MAX_XORBS:
            return
        try:
            for piece in iter_chunks(memoryview(body)):
                chain.digest.update(piece)
        except BaseException:
            chain.links, chain.digest = [], hashlib.sha256()  # never leave a half-hashed xorb behind
            raise
        chain.links.append(_Link(xorb, len(index.chunks), chain.digest.copy()))


def upload_xorb(
    hub: Hub, repo_pk: int, prefix: str, xorb_hash: str, body: bytes | bytearray | memoryview
) -> bool:
    """Validate and store an uploaded xorb; False when it was already stored (nothing is written)."""
    _check_prefix(prefix)
    claimed = str_to_hash(xorb_hash, "xorb hash")
    name = hash_to_str(claimed)
    with hub.db.read() as conn:
        if xet_q.has_xorb(conn, name):
            return False
    index = parse_xorb(body, claimed)  # raises before anything is stored
    _extend_chain(repo_pk, claimed, index, body)
    return store_xorb(hub, name, index, body)


def store_xorb(hub: Hub, name: str, index: XorbIndex, body: bytes | bytearray | memoryview) -> bool:
    """Store a xorb whose ``index`` the caller computed from ``body`` itself (every chunk decoded
    and hashed, ``name`` their merkle hash: what ``parse_xorb`` checks of an upload; a mirror's
    landing does it as the bytes arrive). False when it was stored already."""
    dedup = [hash_to_str(c.hash) for c in index.chunks if modulo(c.hash, DEDUP_MODULUS) == 0]
    key = xorb_key(name)
    _write_blob(hub, key, body)
    with hub.db.write() as conn:
        inserted = xet_q.insert_xorb(
            hub.db, conn, name, len(index.chunks), index.unpacked_size, index.stored_size, index.pack(), dedup,
            utcnow(),
        )
        # The body in place must be this one: gc may have removed it meanwhile, or another upload
        # of the same chunks (compressed otherwise) or a crashed one may have left its own there.
        if hub.blobs.size(key) != len(body) if inserted else not hub.blobs.exists(key):
            hub.blobs.delete(key)
            _write_blob(hub, key, body)
    return inserted


def _write_blob(hub: Hub, key: str, body: bytes | bytearray | memoryview) -> None:
    # No sha256/md5 while storing: a xorb's name is its verified merkle hash, a shard's key the
    # sha256 computed above; nothing reads those digests.
    writer = hub.blobs.writer(digests=False)
    try:
        writer.write(cast(bytes, body))  # every store takes any bytes-like object; no copy
    except BaseException:
        writer.abort()
        raise
    writer.commit(key)


# -- shards ------------------------------------------------------------------------------------


def upload_shard(hub: Hub, grant: Grant, body: bytes | bytearray) -> int:
    """Validate a shard against the stored xorbs, verify each new file's sha256, and record it.

    Returns 1 when the shard is new, 0 when the same shard was uploaded before. The repo's xorb
    chain (see ``_Chain``) is used for the sha256 checks and then dropped: the upload is over.
    """
    repo_pk = grant.repo.id
    chain = _chain(repo_pk, create=False)
    _drop_chain(repo_pk)
    shard = parse_shard(body)
    needed = {t.xorb for f in shard.files for t in f.terms} | {x.hash for x in shard.xorbs}
    with hub.db.read() as conn:
        found = load_indexes(conn, [hash_to_str(h) for h in needed])
    indexes: dict[bytes, XorbIndex] = {}
    for raw in needed:
        name = hash_to_str(raw)
        if name not in found:
            raise ShardFormatError(f"The shard references xorb {name}, which was never uploaded")
        indexes[raw] = found[name]
    for block in shard.xorbs:
        _check_xorb_record(block, indexes[block.hash])
    files: list[StoredFile] = []
    for record in shard.files:
        name = hash_to_str(record.hash)
        if not record.terms:
            if record.hash != ZERO_HASH:
                raise ShardFormatError(f"File {name} has no terms but is not the empty file")
            continue  # the empty file: committed as a regular file, nothing to record
        check_file(record, indexes)
        if record.sha256 is None or record.sha256 == ZERO_HASH:
            if grant.repo.type != "bucket":
                raise ShardFormatError(f"File {name} carries no sha256 (metadata extension)")
            # Bucket uploads skip the sha256 (the client sends none): the hub computes it,
            # below, from the xorbs just uploaded, so every stored file has one.
            files.append(StoredFile(name, "", record.size, pack_terms(record.terms)))
            continue
        files.append(StoredFile(name, record.sha256.hex(), record.size, pack_terms(record.terms)))
    with hub.db.read() as conn:
        known = {f.hash: xet_q.file(conn, f.hash) for f in files}
    for i, f in enumerate(files):
        existing = known[f.hash]
        if not f.sha256:
            files[i] = replace(f, sha256=existing.sha256 if existing is not None else _sha256_of(hub, f, chain))
            continue
        if existing is not None:
            if existing.sha256 != f.sha256:
                raise ShardFormatError(f"File {f.hash} has sha256 {existing.sha256}, the shard claims {f.sha256}")
            continue
        actual = _sha256_of(hub, f, chain)
        if actual != f.sha256:
            raise ShardFormatError(f"File {f.hash} reconstructs to sha256 {actual}, the shard claims {f.sha256}")
    shard_hash = hashlib.sha256(body).hexdigest()
    _write_blob(hub, shard_key(shard_hash), body)
    now = utcnow()
    try:
        with hub.db.write() as conn:
            # The shard is recorded even when the repo went away meanwhile: an unused shard is
            # what ``gc`` reclaims, an unrecorded blob would stay forever.
            new = xet_q.record_shard(hub.db, conn, shard_hash, len(body), now)
            repo = repos_q.get_by_id(conn, repo_pk)
            gone = repo is None or repo.uid != grant.repo.uid
            for f in [] if gone else files:
                terms = unpack_terms(f.terms)
                xet_q.record_file(hub.db, conn, f, (hash_to_str(t.xorb) for t in terms), shard_hash, now)
                xet_q.record_repo_file(hub.db, conn, repo_pk, f.sha256, f.hash, f.size, now)
                first = indexes[terms[0].xorb].chunks[terms[0].start].hash
                xet_q.add_dedup_chunks(hub.db, conn, [(hash_to_str(first), hash_to_str(terms[0].xorb))])
    except IntegrityError as exc:
        raise InvalidInputError("A xorb this shard references was just removed; upload it again") from exc
    if gone:
        raise NotFoundError("The repository was deleted during the upload")
    return 1 if new else 0


def _check_xorb_record(record: XorbRecord, index: XorbIndex) -> None:
    """A shard's CAS block must describe the stored xorb exactly."""
    name = hash_to_str(record.hash)
    if len(record.chunks) != len(index.chunks):
        raise ShardFormatError(
            f"Xorb {name}: the shard lists {len(record.chunks)} chunks, the stored xorb has {len(index.chunks)}"
        )
    offset = 0
    for i, (entry, chunk) in enumerate(zip(record.chunks, index.chunks, strict=True)):
        if entry.hash != chunk.hash or entry.size != chunk.size or entry.offset != offset:
            raise ShardFormatError(f"Xorb {name} chunk {i}: hash, size or offset differ from the stored xorb")
        offset += chunk.size


def _sha256_of(hub: Hub, f: StoredFile, chain: _Chain | None = None) -> str:
    """The sha256 of the rebuilt file: one thread reads and decodes windows, another hashes them
    in order (hashlib releases the GIL), at most two windows ahead.

    With a ``chain``, the longest run of whole xorbs it hashed that starts the file is not read
    again: hashing resumes from the chain's state after that run.
    """
    digest, start = hashlib.sha256(), 0
    if chain is not None:
        with chain.lock:
            links = list(chain.links)
        terms = unpack_terms(f.terms)
        matched = 0
        for term, link in zip(terms, links, strict=False):
            if term.xorb != link.xorb or term.start != 0 or term.end != link.chunks:
                break
            matched += 1
        if matched:
            digest = links[matched - 1].digest.copy()
            start = sum(t.size for t in terms[:matched])
    if start >= f.size:
        return digest.hexdigest()

    def update(pieces: list[bytes | memoryview]) -> None:
        for piece in pieces:
            digest.update(piece)

    with long_work_executor(1, "xet-sha256") as hasher:  # one thread: in order
        pending: deque[Future[None]] = deque()
        for pieces in _read_pieces(hub, f, start, f.size):
            if len(pending) >= 2:
                pending.popleft().result()
            pending.append(hasher.submit(update, pieces))
        for done in pending:
            done.result()
    return digest.hexdigest()


# -- reading -----------------------------------------------------------------------------------


def stored_file(hub: Hub, file_hash: str) -> StoredFile:
    with hub.db.read() as conn:
        found = xet_q.file(conn, file_hash)
    if found is None:
        raise NotFoundError(f"Xet file {file_hash} does not exist")
    return found


def read_range(hub: Hub, f: StoredFile, start: int, end: int) -> Iterator[bytes]:
    """File bytes ``[start, end)`` rebuilt from the stored xorbs (decompressing), in pieces of MiBs."""
    for pieces in _read_pieces(hub, f, start, end):
        yield b"".join(pieces)


def _read_pieces(hub: Hub, f: StoredFile, start: int, end: int) -> Iterator[list[bytes | memoryview]]:
    """The pieces of ``read_range``, one list per stored window read (views where no copy is needed)."""
    terms = unpack_terms(f.terms)
    with hub.db.read() as conn:
        indexes = indexes_for(conn, terms)
    p = plan(terms, indexes, start, min(end, f.size))
    skip, remaining = p.offset_into_first_range, p.length
    for term in p.terms:
        chunks = indexes[term.xorb].chunks[term.start : term.end]
        key = xorb_key(hash_to_str(term.xorb))
        i = 0
        while i < len(chunks) and remaining > 0:
            j = i + 1
            while j < len(chunks) and chunks[j].end - chunks[i].start <= READ_WINDOW:
                j += 1
            first, last = chunks[i].start, chunks[j - 1].end
            data = _read_window(hub, key, first, last)
            if len(data) != last - first:
                raise NotFoundError(f"Xorb {hash_to_str(term.xorb)} is truncated or missing in storage")
            pieces: list[bytes | memoryview] = []
            for piece in iter_chunks(data):
                if skip:
                    if skip >= len(piece):
                        skip -= len(piece)
                        continue
                    piece, skip = piece[skip:], 0
                if len(piece) > remaining:
                    piece = piece[:remaining]
                pieces.append(piece)
                remaining -= len(piece)
                if remaining == 0:
                    break
            if pieces:
                yield pieces
            i = j


def _read_window(hub: Hub, key: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of a stored blob; from a local file in one read (one copy, no join)."""
    path = hub.blobs.local_path(key)
    if path is None:
        return b"".join(hub.blobs.read(key, start, end))
    try:
        with open(path, "rb", buffering=0) as f:
            return os.pread(f.fileno(), end - start, start)
    except (FileNotFoundError, IsADirectoryError):
        return b""  # the caller reports the xorb as missing


def files_for(
    hub: Hub, repo_pk: int, shas: Sequence[str], conn: Connection | None = None
) -> dict[str, tuple[str, int]]:
    """``sha256 -> (xet hash, size)`` for those of ``shas`` this repo received through Xet."""
    if not shas:
        return {}
    if conn is not None:
        return xet_q.repo_files_by_sha256(conn, repo_pk, shas)
    with hub.db.read() as own:
        return xet_q.repo_files_by_sha256(own, repo_pk, shas)


def _parse_cas_range(header: str | None, size: int) -> tuple[int, int]:
    """``[start, end)`` from ``bytes=a-b`` (inclusive end, clamped to the file)."""
    wanted = parse_range(header)
    if header and wanted is None or wanted is not None and wanted.first is None:
        raise InvalidInputError(f"Unsupported Range header {header!r}: expected bytes=start-end")
    if wanted is None or (size == 0 and wanted.first == 0):
        return 0, size
    assert wanted.first is not None
    if wanted.first >= size:
        raise RangeNotSatisfiableError(f"Range starts at {wanted.first}, the file has {size} bytes", size)
    end = size if wanted.last is None else min(wanted.last + 1, size)
    if end < wanted.first:
        raise InvalidInputError(f"Invalid Range header {header!r}")
    return wanted.first, end


def reconstruction(
    hub: Hub, grant: Grant, file_hash: str, range_header: str | None, base_url: str, version: int
) -> dict[str, Any]:
    """The terms and signed fetch URLs for a file range (V1 ``fetch_info`` or V2 ``xorbs``)."""
    name = hash_to_str(str_to_hash(file_hash, "file hash"))
    with hub.db.read() as conn:
        f = xet_q.repo_file(conn, grant.repo.id, name)
        if f is None:
            raise NotFoundError(f"File {name} is not stored in this repository")
        terms = unpack_terms(f.terms)
        indexes = indexes_for(conn, terms)
    start, end = _parse_cas_range(range_header, f.size)
    p = plan(terms, indexes, start, end)
    exp = int(time.time()) + hub.settings.xet_url_ttl
    fetch: dict[str, list[dict[str, Any]]] = {}
    for raw, ranges in p.fetch.items():
        xorb = hash_to_str(raw)
        entries: list[dict[str, Any]] = []
        for r in ranges:
            url = _direct_range(hub, xorb, r.byte_start, r.byte_end) or f"{base_url}{CAS_PATH}/fetch/" + sign(
                hub, {"k": "xr", **grant.claims(), "x": xorb, "s": r.byte_start, "e": r.byte_end, "exp": exp}
            )
            chunks: dict[str, int] = {"start": r.start, "end": r.end}
            span: dict[str, int] = {"start": r.byte_start, "end": r.byte_end - 1}
            if version == 2:
                entries.append({"url": url, "ranges": [{"chunks": chunks, "bytes": span}]})
            else:
                entries.append({"range": chunks, "url": url, "url_range": span})
        fetch[xorb] = entries
    out: dict[str, Any] = {
        "offset_into_first_range": p.offset_into_first_range,
        "terms": [
            {"hash": hash_to_str(t.xorb), "unpacked_length": t.size, "range": {"start": t.start, "end": t.end}}
            for t in p.terms
        ],
    }
    out["xorbs" if version == 2 else "fetch_info"] = fetch
    return out


def _direct_range(hub: Hub, xorb: str, start: int, end: int) -> str | None:
    """A presigned URL of the store for exactly bytes ``[start, end)`` of a xorb (S3 with direct
    downloads), else None. The range is signed: a xorb may hold chunks of other repos' files
    (dedup is global), so the URL must not open more of it than the reader's terms need."""
    if not hub.settings.direct_downloads:
        return None
    return hub.store_url(xorb_key(xorb), hub.settings.xet_url_ttl, window=(start, end))


def fetch_target(hub: Hub, token: str, range_header: str | None) -> tuple[str, int, int]:
    """(blob key, start, end) a signed xorb range URL allows; 403 for a bad or expired signature."""
    try:
        payload = verify_signature(hub, token, "xr")
    except AuthenticationError as exc:
        raise PermissionDeniedError("Invalid or expired xorb URL; request the reconstruction again") from exc
    check_grant(hub, payload)  # the repo it was issued for still exists and may still be read
    lo, hi = int(payload["s"]), int(payload["e"])
    start, end = lo, hi
    if range_header:
        try:
            wanted = parse_range(range_header)
        except InvalidInputError:
            wanted = None
        if wanted is None or wanted.first is None or wanted.last is None:
            raise InvalidInputError("Xorb URLs take one Range: bytes=start-end")
        start, end = wanted.first, wanted.last + 1
        if not lo <= start < end <= hi:
            raise PermissionDeniedError("The requested range is outside what this URL allows")
    return xorb_key(str(payload["x"])), start, end


# -- global dedup ------------------------------------------------------------------------------


def dedup_query(hub: Hub, grant: Grant, prefix: str, chunk_hash: str) -> bytes:
    """A shard describing the xorb that holds ``chunk_hash`` and its neighbours, chunk hashes HMAC-protected.

    Only xorbs that a file in a repository the caller may read uses are offered: an answer about
    a chunk held only in others' private repositories would confirm that they hold that content.
    """
    _check_prefix(prefix)
    name = hash_to_str(str_to_hash(chunk_hash, "chunk hash"))
    visible = visibility(grant.principal)
    with hub.db.read() as conn:
        xorb = xet_q.dedup_xorb(conn, name, visible)
        if xorb is None:
            raise NotFoundError(f"No stored xorb offers chunk {name} for deduplication")
        # The xorb holding the chunk first, then the other xorbs of files that use it: a client
        # that holds one chunk of a file most likely holds the whole file.
        names = [xorb, *xet_q.related_xorbs(conn, xorb, DEDUP_RELATED_FILES, DEDUP_MAX_XORBS - 1, visible)]
        indexes = load_indexes(conn, names)
    if xorb not in indexes:
        raise NotFoundError(f"No stored xorb offers chunk {name} for deduplication")
    records = []
    for x in names:
        index = indexes.get(x)
        if index is None:
            continue
        entries, offset = [], 0
        for c in index.chunks:
            entries.append(XorbChunkEntry(c.hash, offset, c.size))
            offset += c.size
        records.append(XorbRecord(str_to_hash(x), tuple(entries), index.stored_size))
    now = int(time.time())
    key = secrets.token_bytes(32)
    return build_dedup_shard(records, key, now, now + hub.settings.xet_dedup_key_ttl)


# -- accounting and checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """A repository's Xet files: their total size, and the compressed bytes of the distinct chunks
    they use (each chunk counted once, however many files or versions share it)."""

    files: int
    logical: int
    physical: int


def repo_usage(conn: Connection, repo_pk: int) -> Usage:
    files = xet_q.repo_files(conn, repo_pk)
    runs: dict[bytes, list[tuple[int, int]]] = {}
    all_terms = []
    for f in files:
        for t in unpack_terms(f.terms):
            runs.setdefault(t.xorb, []).append((t.start, t.end))
            all_terms.append(t)
    indexes = indexes_for(conn, all_terms) if all_terms else {}
    physical = 0
    for raw, spans in runs.items():
        chunks = indexes[raw].chunks
        spans.sort()
        cur_s, cur_e = spans[0]
        for s, e in spans[1:] + [(1 << 62, 1 << 62)]:
            if s <= cur_e:
                cur_e = max(cur_e, e)
                continue
            physical += chunks[cur_e - 1].end - chunks[cur_s].start
            cur_s, cur_e = s, e
    return Usage(len(files), sum(f.size for f in files), physical)


@dataclass(frozen=True)
class CommitDedup:
    """What Xet saved on the large files a commit adds or changes: ``files`` of them stored as
    Xet, ``logical`` bytes in all, ``reused`` of those bytes in chunks the hub did not store again:
    chunks of xorbs it held before the parent commit was made (any repo's), or repeated within it."""

    files: int
    logical: int
    reused: int


def commit_dedup(conn: Connection, before: Iterable[str], after: Iterable[str], since: datetime) -> CommitDedup | None:
    """``before``: the sha256 of the parent commit's large files; ``after``: the commit's;
    ``since``: when the parent commit was made (or the repo, for a first commit): xorbs stored
    after it came with this commit's upload. None when the commit brings no new Xet file."""
    added = xet_q.files_by_sha256(conn, sorted(set(after) - set(before)))
    if not added:
        return None
    terms = [t for f in added.values() for t in unpack_terms(f.terms)]
    indexes = indexes_for(conn, terms)
    stored_at = xet_q.xorb_times(conn, {hash_to_str(t.xorb) for t in terms})
    seen: dict[bytes, set[int]] = {}
    reused = 0
    for t in terms:
        chunks = indexes[t.xorb].chunks
        if stored_at[hash_to_str(t.xorb)] <= since:
            reused += sum(c.size for c in chunks[t.start : t.end])
            continue
        mine = seen.setdefault(t.xorb, set())
        for i in range(t.start, t.end):
            if i in mine:
                reused += chunks[i].size
            else:
                mine.add(i)
    return CommitDedup(len(added), sum(f.size for f in added.values()), reused)


def verify_file(hub: Hub, f: StoredFile, deep: bool = True) -> list[str]:
    """Problems with one Xet file: missing xorbs (rows or bodies), bad terms, wrong content."""
    problems = []
    terms = unpack_terms(f.terms)
    names = sorted({hash_to_str(t.xorb) for t in terms})
    with hub.db.read() as conn:
        rows = xet_q.xorbs(conn, names)
    for name in names:
        row = rows.get(name)
        if row is None:
            problems.append(f"xorb {name} is not recorded")
            continue
        size = hub.blobs.size(xorb_key(name))
        if size is None:
            problems.append(f"xorb {name} is missing from storage")
        elif size != row.stored_size:
            problems.append(f"xorb {name} has {size} bytes in storage, expected {row.stored_size}")
    if problems:
        return problems
    indexes = {str_to_hash(n): XorbIndex.unpack(rows[n].chunks) for n in names}
    if sum(t.size for t in terms) != f.size:
        return [f"terms add up to {sum(t.size for t in terms)} bytes, the file has {f.size}"]
    for t in terms:
        if not 0 <= t.start < t.end <= len(indexes[t.xorb].chunks):
            return [f"a term points outside xorb {hash_to_str(t.xorb)}"]
    if deep:
        try:
            actual = _sha256_of(hub, f)
        except (XorbFormatError, NotFoundError) as exc:
            return [f"cannot be reconstructed: {exc.message}"]
        if actual != f.sha256:
            return [f"reconstructs to sha256 {actual}, expected {f.sha256}"]
    return problems
