"""Git LFS: the batch API, self-authorising upload URLs, multipart uploads and verify."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import xet as xet_q
from modelyard.errors import InvalidInputError, NotFoundError
from modelyard.ids import validate_sha256
from modelyard.services.auth import Principal, can_write, check_contribute
from modelyard.services.gating import check_download
from modelyard.services.grants import Grant, check_grant, claims, sign, verify_signature
from modelyard.services.hub import Hub, utcnow
from modelyard.services.lfs_files import purged_message
from modelyard.services.repos import find_repo
from modelyard.storage.base import BlobNotFoundError, BlobStoreError, HashingSink, check_digest, lfs_key
from modelyard.storage.base import BlobWriter as BlobWriter  # re-exported for the http layer
from modelyard.storage.local import LocalBlobStore


@dataclass(frozen=True)
class BatchObject:
    oid: str
    size: int
    actions: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def _batch_request(hub: Hub, body: dict[str, Any]) -> tuple[str, list[Any], bool]:
    operation = body.get("operation")
    objects = body.get("objects")
    if operation not in ("upload", "download") or not isinstance(objects, list):
        raise InvalidInputError("A batch request needs 'operation' (upload|download) and 'objects'")
    if len(objects) > hub.settings.max_batch_objects:
        raise InvalidInputError(f"At most {hub.settings.max_batch_objects} objects per batch request")
    transfers = body.get("transfers")
    if transfers is None:
        transfers = ["basic"]
    if not isinstance(transfers, list) or not all(isinstance(t, str) for t in transfers):
        raise InvalidInputError("'transfers' must be a list of transfer names")
    return operation, objects, "multipart" in transfers


def _check_object(hub: Hub, obj: object) -> tuple[str, int]:
    oid, size = (obj.get("oid"), obj.get("size")) if isinstance(obj, dict) else (None, None)
    validate_sha256(oid)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"Invalid size {size!r}")
    if size > hub.settings.max_lfs_file_size:
        raise InvalidInputError(f"Objects may be at most {hub.settings.max_lfs_file_size} bytes")
    return str(oid), size


def batch(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: dict[str, Any], base_url: str,
    repo_url: str,
) -> tuple[str, list[BatchObject]]:
    """Answer a batch request: an upload action for each object the repo does not hold yet."""
    operation, objects, use_multipart = _batch_request(hub, body)
    if operation == "download" and hub.settings.upstream_url is not None:
        from modelyard.services.mirror import land_objects

        oids = [str(o["oid"]) for o in objects if isinstance(o, dict) and isinstance(o.get("oid"), str)]
        land_objects(hub, principal, repo_type, repo_id, oids)  # a mirror's: fetched before they are answered
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if operation == "upload":
            # The batch request does not say whether the files are for a pull request: anyone who
            # may open one may upload (the commit then decides which ref they may change).
            check_contribute(principal, repo)
        held = {sha: size for sha, size in lfs_q.repo_objects(conn, repo.id)}
        xet_held: dict[str, tuple[str, int]] = {}
        purged: set[str] = set()
        if operation == "download":  # a gated repo's bytes only to who has access
            check_download(conn, principal, repo)
        if operation == "download":  # files that came through Xet download rebuilt from xorbs
            oids = [str(o["oid"]) for o in objects if isinstance(o, dict) and isinstance(o.get("oid"), str)]
            xet_held = xet_q.repo_files_by_sha256(conn, repo.id, [o for o in oids if o not in held])
            purged = lfs_files_q.purged(conn, repo.id, [o for o in oids if o not in held and o not in xet_held])
    grant = claims(principal, repo)
    if operation == "upload" and not can_write(principal, repo):
        grant["c"] = 1  # a contributor's grant: re-checked as such on use (services/grants.py)
    out: list[BatchObject] = []
    expires = time.time() + hub.settings.upload_url_ttl
    parts_left = hub.settings.max_multipart_parts
    for obj in objects:
        try:
            oid, size = _check_object(hub, obj)
        except InvalidInputError as exc:
            raw_oid, raw_size = (obj.get("oid"), obj.get("size")) if isinstance(obj, dict) else (None, None)
            out.append(BatchObject(str(raw_oid)[:64], raw_size if isinstance(raw_size, int) and raw_size >= 0 else 0,
                                   error={"code": 422, "message": exc.message}))
            continue
        if operation == "download":
            if oid in purged:  # the Git LFS batch API's code for "removed by the owner"
                out.append(BatchObject(oid, size, error={"code": 410, "message": purged_message(oid)}))
                continue
            if oid not in held and oid not in xet_held:
                out.append(BatchObject(oid, size, error={"code": 404, "message": "Object does not exist"}))
                continue
            direct = None
            if oid in held and hub.settings.direct_downloads:  # straight from the store (S3)
                direct = hub.store_url(lfs_key(oid), hub.settings.download_url_ttl)
            if direct is not None:
                out.append(BatchObject(oid, held[oid], actions={"download": {
                    "href": direct, "expires_in": hub.settings.download_url_ttl}}))
                continue
            claim: dict[str, Any] = {"k": "get", **grant, "o": oid, "exp": expires}
            if oid not in held:
                claim["x"] = xet_held[oid][0]
            token = sign(hub, claim)
            out.append(BatchObject(oid, held.get(oid) or xet_held[oid][1], actions={"download": {
                "href": f"{base_url}/_lfs/objects/{token}", "expires_in": hub.settings.upload_url_ttl}}))
            continue
        if oid in held:
            out.append(BatchObject(oid, size))  # no actions: already there
            continue
        verify = {"href": f"{repo_url}.git/info/lfs/objects/verify", "header": {}}
        if use_multipart and size >= hub.settings.multipart_threshold:
            chunk = hub.settings.multipart_chunk_size
            count = max(1, math.ceil(size / chunk))
            if count > parts_left:
                out.append(BatchObject(oid, size, error={"code": 413, "message": (
                    f"More than {hub.settings.max_multipart_parts} multipart parts in one batch: "
                    "send fewer objects per batch request")}))
                continue
            parts_left -= count
            in_store = _direct_parts(hub, grant, oid, size, chunk, count, expires, base_url)
            if in_store is not None:
                out.append(BatchObject(oid, size, actions={**in_store, "verify": verify}))
                continue
            upload_id = uuid.uuid4().hex
            with hub.db.write() as conn:
                lfs_q.start_multipart(conn, upload_id, repo.id, oid, size, chunk, utcnow())
            header: dict[str, str] = {"chunk_size": str(chunk)}
            for part in range(1, count + 1):
                token = sign(hub, {"k": "part", **grant, "u": upload_id, "p": part, "exp": expires})
                header[f"{part:05d}"] = f"{base_url}/_lfs/parts/{token}"
            token = sign(hub, {"k": "complete", **grant, "u": upload_id, "exp": expires})
            actions: dict[str, Any] = {"upload": {"href": f"{base_url}/_lfs/complete/{token}", "header": header},
                                       "verify": verify}
        else:
            straight = _direct_put(hub, grant, oid, size, expires, base_url)
            if straight is not None:
                actions = straight
            else:
                token = sign(hub, {"k": "put", **grant, "o": oid, "s": size, "exp": expires})
                actions = {"upload": {"href": f"{base_url}/_lfs/upload/{token}"}, "verify": verify}
        out.append(BatchObject(oid, size, actions=actions))
    return ("multipart" if use_multipart else "basic"), out


#: Where presigned uploads land until the hub has checked them: ``staged/<expiry>/<random>``
#: (``gc`` removes those whose URL expired a grace period ago).
STAGED = "staged"


def _direct_put(
    hub: Hub, grant: dict[str, Any], oid: str, size: int, expires: float, base_url: str
) -> dict[str, Any] | None:
    """The actions of an upload straight to the store (S3 with direct uploads on): a presigned PUT
    of exactly ``size`` bytes to a staging key, and a verify URL at which the hub checks the
    staged bytes' sha256 and only then publishes them under the object's key. None: through the hub."""
    if not hub.settings.direct_uploads:
        return None
    staged = f"{STAGED}/{int(expires)}/{uuid.uuid4().hex}"
    url = hub.blobs.signed_put_url(staged, int(expires - time.time()), size)
    if url is None:
        return None
    token = sign(hub, {"k": "staged", **grant, "o": oid, "s": size, "b": staged, "exp": expires})
    return {"upload": {"href": url, "header": {}, "expires_in": int(expires - time.time())},
            "verify": {"href": f"{base_url}/_lfs/staged/{token}", "header": {}}}


def _direct_parts(
    hub: Hub, grant: dict[str, Any], oid: str, size: int, chunk: int, count: int, expires: float, base_url: str
) -> dict[str, Any] | None:
    """A multipart upload straight into the store (S3 with direct uploads on): the store's own
    multipart upload of a staging key, a presigned PUT per part, and a completion URL at which
    the hub assembles the parts in the store and checks the sha256 before publishing. None: the
    parts go through the hub."""
    parts = hub.blobs.direct_parts() if hub.settings.direct_uploads else None
    if parts is None:
        return None
    staged = f"{STAGED}/{int(expires)}/{uuid.uuid4().hex}"
    upload_id = parts.start(staged)
    ttl = int(expires - time.time())
    header: dict[str, str] = {"chunk_size": str(chunk)}
    for part in range(1, count + 1):  # each part's length is signed: no more bytes than declared
        length = chunk if part < count else size - chunk * (count - 1)
        header[f"{part:05d}"] = parts.part_url(staged, upload_id, part, ttl, length)
    token = sign(hub, {"k": "stagedparts", **grant, "o": oid, "s": size, "b": staged, "u": upload_id, "n": count,
                       "exp": expires})
    return {"upload": {"href": f"{base_url}/_lfs/staged-parts/{token}", "header": header}}


def finish_staged_parts(hub: Hub, token: str, body: dict[str, Any]) -> None:
    """The completion of a multipart upload straight into the store: the store assembles the
    parts the client names (each with the ETag the store gave it), then the hub reads the object
    back and checks it as ``publish_staged`` does. A part missing or an ETag that is not the
    store's: 400, and nothing is visible."""
    payload = verify_signature(hub, token, "stagedparts")
    grant = check_grant(hub, payload, write=True)
    sha256, size, staged, count = str(payload["o"]), int(payload["s"]), str(payload["b"]), int(payload["n"])
    parts = body.get("parts")
    if body.get("oid") != sha256:
        raise InvalidInputError("The completion names another oid than the upload")
    if not isinstance(parts, list) or not all(
        isinstance(p, dict) and isinstance(p.get("partNumber"), int) and isinstance(p.get("etag"), str) for p in parts
    ):
        raise InvalidInputError("'parts' must be a list of {partNumber, etag} objects")
    if sorted(p["partNumber"] for p in parts) != list(range(1, count + 1)):
        raise InvalidInputError(f"Expected parts 1..{count}")
    store_parts = hub.blobs.direct_parts()
    if store_parts is None:
        raise InvalidInputError("This hub's store no longer takes uploads directly: upload again")
    with hub.db.read() as conn:
        if repos_q.has_lfs_object(conn, grant.repo.id, sha256) is not None:
            return  # a retried completion: the object was published already
    etags = [p["etag"] for p in sorted(parts, key=lambda p: p["partNumber"])]
    if not hub.blobs.exists(staged):  # a completion retried after the store assembled it
        try:
            store_parts.finish(staged, str(payload["u"]), etags)
        except BlobStoreError as exc:
            raise InvalidInputError(f"The store refused the parts: {exc.message}") from exc
    _publish(hub, grant, sha256, size, staged)


def publish_staged(hub: Hub, token: str) -> None:
    """The verify step of a direct upload: read the staged object back, check its size and
    sha256 against what the batch declared, copy it under the object's key inside the store, record
    it, and drop the staged copy. Wrong bytes are dropped and refused (nothing becomes visible)."""
    payload = verify_signature(hub, token, "staged")
    _publish(hub, check_grant(hub, payload, write=True), str(payload["o"]), int(payload["s"]), str(payload["b"]))


def _publish(hub: Hub, grant: Grant, sha256: str, size: int, staged: str) -> None:
    with hub.db.read() as conn:
        held = repos_q.has_lfs_object(conn, grant.repo.id, sha256)
    if held is None:
        sink = HashingSink(size)
        try:
            for chunk in hub.blobs.read(staged):
                sink.update(chunk)
            check_digest(sink.result(), sha256, size)
        except BlobNotFoundError as exc:
            raise NotFoundError(f"LFS object {sha256} was not uploaded") from exc
        except InvalidInputError:
            hub.blobs.delete(staged)
            raise
        hub.blobs.copy(staged, lfs_key(sha256))
        now = utcnow()
        with hub.db.write() as conn:
            lfs_q.record_object(hub.db, conn, sha256, size, now)
            repos_q.add_lfs_object(hub.db, conn, grant.repo.id, sha256, size, now)
    hub.blobs.delete(staged)


@dataclass(frozen=True)
class UploadTarget:
    """What a basic upload URL allows: one object of one size into one repository (as it is now)."""

    repo_pk: int
    repo_uid: str
    sha256: str
    size: int


def upload_target(hub: Hub, token: str) -> UploadTarget:
    """Check a basic upload URL now: signature, expiry, and the grant (repo, token, write access)."""
    payload = verify_signature(hub, token, "put")
    grant = check_grant(hub, payload, write=True)
    return UploadTarget(grant.repo.id, grant.repo.uid, str(payload["o"]), int(payload["s"]))


def finish_upload(
    hub: Hub, writer: BlobWriter, repo_id: int, sha256: str, size: int, repo_uid: str | None = None
) -> None:
    """Check the streamed bytes against the declared oid and size, then publish them."""
    written = writer.digest()
    try:
        check_digest(written, sha256, size)
    except InvalidInputError:
        writer.abort()
        raise
    writer.commit(lfs_key(sha256))
    now = utcnow()
    with hub.db.write() as conn:
        # Recorded even when the repo went away meanwhile: a stored object no repo holds is
        # what ``gc`` reclaims (after its grace period); an unrecorded blob would stay forever.
        lfs_q.record_object(hub.db, conn, sha256, size, now)
        repo = repos_q.get_by_id(conn, repo_id)
        gone = repo is None or (repo_uid is not None and repo.uid != repo_uid)
        if not gone:
            repos_q.add_lfs_object(hub.db, conn, repo_id, sha256, size, now)
    if gone:
        raise NotFoundError("The repository was deleted during the upload")


#: Multipart uploads whose object hash this process follows part by part (``part_chain``).
CHAIN_UPLOADS = 64


@dataclass
class _ObjectChain:
    """The sha256 of a multipart upload's object over the parts received here so far, in order,
    and the ETags of those parts."""

    sha: Any = field(default_factory=hashlib.sha256)
    etags: list[str] = field(default_factory=list)


_chains: OrderedDict[str, _ObjectChain] = OrderedDict()
_chains_lock = threading.Lock()


def part_chain(upload_id: str, part: int) -> Any | None:
    """A copy of the object's running sha256, to feed this part's bytes as they arrive, when the
    part is the next one in order on this process (clients send parts in order, on one
    connection); None otherwise. The completion then need not hash the whole object again."""
    with _chains_lock:
        chain = _chains.get(upload_id)
        if chain is None and part == 1:
            chain = _chains[upload_id] = _ObjectChain()
            while len(_chains) > CHAIN_UPLOADS:
                _chains.popitem(last=False)
        if chain is None or len(chain.etags) != part - 1:
            return None
        _chains.move_to_end(upload_id)
        return chain.sha.copy()


def part_received(upload_id: str, part: int, etag: str, state: Any) -> None:
    """A part fed to ``state`` (from ``part_chain``) is stored: the chain moves past it."""
    with _chains_lock:
        chain = _chains.get(upload_id)
        if chain is not None and len(chain.etags) == part - 1:
            chain.sha, chain.etags = state, [*chain.etags, etag]


def _chained_digest(upload_id: str, etags: list[str]) -> str | None:
    """The object's sha256 if this process hashed exactly these parts in order, else None."""
    with _chains_lock:
        chain = _chains.pop(upload_id, None)
    return chain.sha.hexdigest() if chain is not None and chain.etags == etags else None


def part_key(upload_id: str, part: int, sha256: str) -> str:
    """Where a received part is recorded: named by its sha256 (its ETag), computed as it arrived,
    so that the completion finds each part by the ETag the client names without hashing it again.
    Where uploads are assembled in place (``_assembly``) this is an empty marker; elsewhere the
    part's bytes."""
    return f"{_part_prefix(upload_id, part)}{sha256}"


def _part_prefix(upload_id: str, part: int) -> str:
    return f"uploads/{upload_id}/{part:05d}-"


def _assembly(upload_id: str) -> str:
    """The blob a local store assembles a multipart upload in: every part written at its offset
    as it arrives, so that the completion renames it instead of copying gigabytes."""
    return f"uploads/{upload_id}/object"


def _multipart(hub: Hub, payload: dict[str, Any]) -> tuple[str, Grant, tuple[int, str, int, int]]:
    grant = check_grant(hub, payload, write=True)
    upload_id = str(payload["u"])
    with hub.db.read() as conn:
        found = lfs_q.get_multipart(conn, upload_id)
    if found is None or found[0] != grant.repo.id:
        raise NotFoundError("Unknown or finished multipart upload")
    return upload_id, grant, found


@dataclass(frozen=True)
class PartTarget:
    """What a part URL allows: bytes ``[offset, offset + size)`` of one multipart upload."""

    upload_id: str
    part: int
    offset: int
    size: int
    last: bool


def part_target(hub: Hub, token: str) -> PartTarget:
    """Check a multipart part URL (before its body is read)."""
    payload = verify_signature(hub, token, "part")
    upload_id, _grant, (_repo, _sha, size, chunk) = _multipart(hub, payload)
    part = int(payload["p"])
    offset = (part - 1) * chunk
    return PartTarget(upload_id, part, offset, min(chunk, size - offset), offset + chunk >= size)


def part_writer(hub: Hub, target: PartTarget) -> BlobWriter:
    """Where a part's bytes go: into the upload's assembly at their offset on a store that can
    (``ConflictError`` while another request writes the same part), else a blob of their own."""
    blobs = hub.blobs
    if isinstance(blobs, LocalBlobStore) and blobs.assembles:
        return blobs.part_writer(_assembly(target.upload_id), _part_prefix(target.upload_id, target.part),
                                 target.offset, target.size, target.last)
    return blobs.writer(max_size=target.size)


def finish_part(hub: Hub, target: PartTarget, writer: BlobWriter, chain: Any | None) -> str:
    """Keep a received part (``chain``: from ``part_chain``, fed its bytes); its ETag."""
    written = writer.digest()
    if written.size != target.size:
        writer.abort()
        raise InvalidInputError(f"Part {target.part} must be {target.size} bytes, got {written.size}")
    writer.commit(part_key(target.upload_id, target.part, written.sha256))
    if chain is not None:
        part_received(target.upload_id, target.part, written.sha256, chain)
    return written.sha256


@dataclass(frozen=True)
class CompleteTarget:
    upload_id: str
    grant: Grant
    repo_pk: int
    sha256: str
    size: int
    chunk: int


def complete_target(hub: Hub, token: str) -> CompleteTarget:
    """Check a multipart completion URL (before its body is read)."""
    payload = verify_signature(hub, token, "complete")
    upload_id, grant, (repo_pk, sha256, size, chunk) = _multipart(hub, payload)
    return CompleteTarget(upload_id, grant, repo_pk, sha256, size, chunk)


def complete_multipart(hub: Hub, target: CompleteTarget, body: dict[str, Any]) -> None:
    """Concatenate the parts (checking their ETags), verify the sha256, publish the object."""
    upload_id, grant = target.upload_id, check_grant(hub, target.grant.claims(), write=True)
    repo_id, sha256, size, chunk = target.repo_pk, target.sha256, target.size, target.chunk
    if body.get("oid") != sha256:
        raise InvalidInputError("The completion names another oid than the upload")
    parts = body.get("parts")
    count = max(1, math.ceil(size / chunk))
    if not isinstance(parts, list) or not all(
        isinstance(p, dict) and isinstance(p.get("partNumber"), int) and isinstance(p.get("etag", ""), str)
        for p in parts
    ):
        raise InvalidInputError("'parts' must be a list of {partNumber, etag} objects")
    if sorted(p["partNumber"] for p in parts) != list(range(1, count + 1)):
        raise InvalidInputError(f"Expected parts 1..{count}")
    keys, etags = [], []
    for part in sorted(parts, key=lambda p: p["partNumber"]):
        etag = str(part.get("etag", "")).strip('"')
        key = part_key(upload_id, int(part["partNumber"]), etag)
        if not re.fullmatch(r"[0-9a-f]{64}", etag) or not hub.blobs.exists(key):
            raise InvalidInputError(f"Part {part['partNumber']} was never uploaded with ETag {etag[:80]!r}")
        keys.append(key)
        etags.append(etag)
    # The object's sha256 must be the oid: hashed as the parts arrived when this process received
    # them all in order, else hashed now, as a whole.
    writer = _whole(hub, upload_id, keys, size, _chained_digest(upload_id, etags))
    finish_upload(hub, writer, repo_id, sha256, size, grant.repo.uid)
    for key in keys:
        hub.blobs.delete(key)
    with hub.db.write() as conn:
        lfs_q.finish_multipart(conn, upload_id)


def _whole(hub: Hub, upload_id: str, keys: list[str], size: int, sha256: str | None) -> BlobWriter:
    """A writer holding the upload's parts ``keys`` in order (``sha256``: their digest, if
    known): the assembly itself where the parts were written in place, else a concatenation."""
    if isinstance(hub.blobs, LocalBlobStore) and hub.blobs.exists(_assembly(upload_id)):
        return hub.blobs.assembled(_assembly(upload_id), keys, size, sha256)
    writer = hub.blobs.writer(max_size=size)
    try:
        for key in keys:
            for data in hub.blobs.read(key):
                writer.write(data)
    except Exception:
        writer.abort()
        raise
    return writer


def verify(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: dict[str, Any]) -> None:
    oid, size = body.get("oid"), body.get("size")
    validate_sha256(oid)
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        stored = repos_q.has_lfs_object(conn, repo.id, str(oid))
    if stored is None:
        raise NotFoundError(f"LFS object {oid} was not uploaded")
    if size is not None and stored != size:
        raise InvalidInputError(f"LFS object {oid} has size {stored}, not {size}")


@dataclass(frozen=True)
class DownloadTarget:
    """Where a download URL's bytes are: an LFS object (``key``) or a Xet file (``xet_hash``)."""

    key: str
    xet_hash: str | None


def download_target(hub: Hub, token: str) -> DownloadTarget:
    """Check a download URL now: signature, expiry, and that its grant still allows reading."""
    payload = verify_signature(hub, token, "get")
    check_grant(hub, payload)
    return DownloadTarget(lfs_key(str(payload["o"])), str(payload["x"]) if "x" in payload else None)
