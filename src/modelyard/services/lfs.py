"""Git LFS: the batch API, self-authorising upload URLs, multipart uploads and verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import xet as xet_q
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError
from modelyard.ids import validate_sha256
from modelyard.services.auth import Principal, check_write
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import find_repo
from modelyard.storage.base import BlobWriter, check_digest, lfs_key


def sign(hub: Hub, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(hub.signing_key(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_signature(hub: Hub, token: str, kind: str) -> dict[str, Any]:
    """Check an upload URL's token: signature, kind and expiry."""
    try:
        body, mac_b64 = token.split(".", 1)
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
        expected = hmac.new(hub.signing_key(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise AuthenticationError("Invalid or forged upload URL") from exc
    if payload.get("k") != kind:
        raise AuthenticationError("This URL is not for this kind of upload")
    if float(payload.get("exp", 0)) < time.time():
        raise AuthenticationError("This upload URL has expired; ask the batch API for a new one")
    return payload


@dataclass(frozen=True)
class BatchObject:
    oid: str
    size: int
    actions: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def batch(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, body: dict[str, Any], base_url: str,
    repo_url: str,
) -> tuple[str, list[BatchObject]]:
    """Answer a batch request: an upload action for each object the repo does not hold yet."""
    operation = body.get("operation")
    objects = body.get("objects")
    if operation not in ("upload", "download") or not isinstance(objects, list):
        raise InvalidInputError("A batch request needs 'operation' (upload|download) and 'objects'")
    transfers = body.get("transfers") or ["basic"]
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if operation == "upload":
            check_write(principal, repo)
        held = {sha: size for sha, size in lfs_q.repo_objects(conn, repo.id)}
        xet_held: dict[str, tuple[str, int]] = {}
        if operation == "download":  # files that came through Xet download rebuilt from xorbs
            oids = [str(o["oid"]) for o in objects if isinstance(o, dict) and isinstance(o.get("oid"), str)]
            xet_held = xet_q.repo_files_by_sha256(conn, repo.id, [o for o in oids if o not in held])
    use_multipart = "multipart" in transfers
    out: list[BatchObject] = []
    expires = time.time() + hub.settings.upload_url_ttl
    for obj in objects:
        oid, size = (obj.get("oid"), obj.get("size")) if isinstance(obj, dict) else (None, None)
        try:
            validate_sha256(oid)
            if not isinstance(size, int) or size < 0:
                raise InvalidInputError(f"Invalid size {size!r}")
        except InvalidInputError as exc:
            out.append(BatchObject(str(oid), size if isinstance(size, int) else 0,
                                   error={"code": 422, "message": exc.message}))
            continue
        assert isinstance(oid, str)
        if operation == "download":
            if oid not in held and oid not in xet_held:
                out.append(BatchObject(oid, size, error={"code": 404, "message": "Object does not exist"}))
                continue
            claim: dict[str, Any] = {"k": "get", "r": repo.id, "o": oid, "exp": expires}
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
            upload_id = uuid.uuid4().hex
            with hub.db.write() as conn:
                lfs_q.start_multipart(conn, upload_id, repo.id, oid, size, chunk, utcnow())
            header: dict[str, str] = {"chunk_size": str(chunk)}
            for part in range(1, max(1, math.ceil(size / chunk)) + 1):
                token = sign(hub, {"k": "part", "u": upload_id, "p": part, "exp": expires})
                header[f"{part:05d}"] = f"{base_url}/_lfs/parts/{token}"
            token = sign(hub, {"k": "complete", "u": upload_id, "exp": expires})
            actions = {"upload": {"href": f"{base_url}/_lfs/complete/{token}", "header": header},
                       "verify": verify}
        else:
            token = sign(hub, {"k": "put", "r": repo.id, "o": oid, "s": size, "exp": expires})
            actions = {"upload": {"href": f"{base_url}/_lfs/upload/{token}"}, "verify": verify}
        out.append(BatchObject(oid, size, actions=actions))
    return ("multipart" if use_multipart else "basic"), out


def upload_target(hub: Hub, token: str) -> tuple[int, str, int]:
    """(repo id, sha256, size) that a basic upload URL authorises."""
    payload = verify_signature(hub, token, "put")
    return int(payload["r"]), str(payload["o"]), int(payload["s"])


def finish_upload(hub: Hub, writer: BlobWriter, repo_id: int, sha256: str, size: int) -> None:
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
        if repos_q.get_by_id(conn, repo_id) is None:
            raise NotFoundError("The repository was deleted during the upload")
        lfs_q.record_object(hub.db, conn, sha256, size, now)
        repos_q.add_lfs_object(hub.db, conn, repo_id, sha256, size, now)


def part_key(upload_id: str, part: int) -> str:
    return f"uploads/{upload_id}/{part:05d}"


def part_target(hub: Hub, token: str) -> tuple[str, int, int]:
    """(upload id, part number, expected part size) for a multipart part URL."""
    payload = verify_signature(hub, token, "part")
    upload_id, part = str(payload["u"]), int(payload["p"])
    with hub.db.read() as conn:
        found = lfs_q.get_multipart(conn, upload_id)
    if found is None:
        raise NotFoundError("Unknown or finished multipart upload")
    _repo, _sha, size, chunk = found
    expected = min(chunk, size - (part - 1) * chunk)
    return upload_id, part, expected


def complete_multipart(hub: Hub, token: str, body: dict[str, Any]) -> None:
    """Concatenate the parts (checking their ETags), verify the sha256, publish the object."""
    payload = verify_signature(hub, token, "complete")
    upload_id = str(payload["u"])
    with hub.db.read() as conn:
        found = lfs_q.get_multipart(conn, upload_id)
    if found is None:
        raise NotFoundError("Unknown or finished multipart upload")
    repo_id, sha256, size, chunk = found
    if body.get("oid") != sha256:
        raise InvalidInputError("The completion names another oid than the upload")
    parts = body.get("parts")
    count = max(1, math.ceil(size / chunk))
    if not isinstance(parts, list) or sorted(p.get("partNumber", 0) for p in parts) != list(range(1, count + 1)):
        raise InvalidInputError(f"Expected parts 1..{count}")
    writer = hub.blobs.writer(max_size=size)
    try:
        for part in sorted(parts, key=lambda p: p["partNumber"]):
            key = part_key(upload_id, int(part["partNumber"]))
            if not hub.blobs.exists(key):
                raise InvalidInputError(f"Part {part['partNumber']} was never uploaded")
            part_sha = hashlib.sha256()  # a part's ETag is the sha256 of its bytes
            for data in hub.blobs.read(key):
                part_sha.update(data)
                writer.write(data)
            if str(part.get("etag", "")).strip('"') != part_sha.hexdigest():
                raise InvalidInputError(f"ETag mismatch for part {part['partNumber']}")
    except Exception:
        writer.abort()
        raise
    finish_upload(hub, writer, repo_id, sha256, size)
    for n in range(1, count + 1):
        hub.blobs.delete(part_key(upload_id, n))
    with hub.db.write() as conn:
        lfs_q.finish_multipart(conn, upload_id)


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


def download_target(hub: Hub, token: str) -> str:
    payload = verify_signature(hub, token, "get")
    return lfs_key(str(payload["o"]))


def download_xet_file(hub: Hub, token: str) -> str | None:
    """The Xet file hash a download URL names, when the object arrived through Xet."""
    payload = verify_signature(hub, token, "get")
    return str(payload["x"]) if "x" in payload else None
