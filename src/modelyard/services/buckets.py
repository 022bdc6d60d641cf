"""Buckets: mutable, deduplicated storage beside the versioned repos (as on the Hub).

A bucket is a ``repos`` row of type ``bucket``: its owner, visibility, resource group, never-
reused uid and every access check are a repo's (``services/auth.py``), and the repo routes never
find it (``services.repos.find_repo`` looks up hosted types only). Its files are a map from paths
to Xet files (``bucket_files``), changed by NDJSON batches of adds (a file uploaded through the
CAS with a bucket token), copies (a Xet file of another bucket or repo the caller may read: no
bytes move) and deletes; each Xet file is also held by the bucket in ``repo_xet_files``, which is
what CAS reads are checked against and what gc keeps (``services/gc.py``). There is no history:
the last writer of a path wins, and a batch's lines apply in order, each on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import buckets as buckets_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.buckets import BucketFile as BucketFile  # re-exported for the http layer
from modelyard.catalog.repos import Repo
from modelyard.catalog.xet import StoredFile
from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    EntryNotFoundError,
    HubError,
    InvalidInputError,
    PermissionDeniedError,
    RepoNotFoundError,
)
from modelyard.ids import HOSTED_REPO_TYPES, validate_name, validate_path
from modelyard.services import groups
from modelyard.services import xet as xet_svc
from modelyard.services.audit import record
from modelyard.services.auth import (
    Principal,
    can_read,
    check_admin,
    check_namespace_write,
    check_write,
    require_writer,
    visibility,
)
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import requested_private
from modelyard.services.xet import XetToken, issue_bucket_token
from modelyard.xet.hashing import ZERO_HASH, hash_to_str, str_to_hash

BUCKET = "bucket"
NOT_FOUND = "Bucket not found"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_PATH_BYTES = 1024
MAX_BATCH_LINES = 1000  # the client sends at most 1000 operations per request
MAX_PATHS_INFO = 1000
PAGE = 1000


def subject(bucket_id: str) -> str:
    return f"bucket:{bucket_id}"


def split_id(bucket_id: str) -> tuple[str, str]:
    namespace, _, name = bucket_id.partition("/")
    if not namespace or not name or "/" in name or "\x00" in bucket_id:
        raise RepoNotFoundError(NOT_FOUND)
    return namespace, name


def find(conn: Connection, principal: Principal | None, bucket_id: str) -> Repo:
    """The bucket the caller may read; a missing one and one they may not see answer alike."""
    namespace, name = split_id(bucket_id)
    bucket = repos_q.get(conn, BUCKET, namespace, name)
    if bucket is None or not can_read(principal, bucket):
        raise RepoNotFoundError(NOT_FOUND)
    return bucket


@dataclass(frozen=True)
class BucketView:
    bucket: Repo
    files: int
    size: int


def _view(conn: Connection, bucket: Repo) -> BucketView:
    files, size = buckets_q.totals(conn, bucket.id)
    return BucketView(bucket, files, size)


def info(hub: Hub, principal: Principal | None, bucket_id: str) -> BucketView:
    with hub.db.read() as conn:
        return _view(conn, find(conn, principal, bucket_id))


def create(hub: Hub, principal: Principal | None, namespace: str, name: str, body: dict[str, Any],
           url_for: Callable[[str], str]) -> Repo:
    """A new empty bucket (``me``: the caller's namespace); 409 naming its URL if it exists."""
    user = require_writer(hub, principal)
    if namespace == "me":
        namespace = user.name
    validate_name(namespace, "namespace")
    validate_name(name)
    private = requested_private(body)
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, namespace)
        if owner is None:
            raise PermissionDeniedError(f"The namespace {namespace!r} does not exist")
        group_id = groups.group_for_create(conn, user, owner, body.get("resourceGroupId"))
        check_namespace_write(user, owner.id, owner.name, group_id)
        accounts_q.lock_namespace(conn, owner.id)
        existing = repos_q.get(conn, BUCKET, owner.name, name)
        if existing is not None:
            raise ConflictError("You already created this bucket", url=url_for(existing.repo_id))
        is_private = owner.default_private if private is None else private
        pk = repos_q.create(conn, repo_type=BUCKET, namespace=owner.name, name=name, owner_id=owner.id,
                            private=is_private, now=utcnow(), created_seq=search_q.next_seq(conn),
                            creator_id=user.account_id, resource_group_id=group_id)
        record(conn, "repo.created", owner.id, user, subject(f"{owner.name}/{name}"), {"private": is_private})
        made = repos_q.get_by_id(conn, pk)
    assert made is not None
    return made


def list_buckets(hub: Hub, principal: Principal | None, namespace: str, search: str | None,
                 after: str | None, limit: int = PAGE) -> list[BucketView]:
    if namespace == "me":
        if principal is None:
            raise AuthenticationError("Authentication required to list your buckets")
        namespace = principal.name
    with hub.db.read() as conn:
        owner = accounts_q.by_name(conn, namespace)
        if owner is None:
            return []
        found = buckets_q.listing(conn, owner.id, visibility(principal), search, after, limit)
        return [_view(conn, b) for b in found]


def delete(hub: Hub, principal: Principal | None, bucket_id: str) -> None:
    with hub.db.write() as conn:
        bucket = find(conn, principal, bucket_id)
        check_admin(principal, bucket)
        repos_q.delete_repo(conn, bucket.id)  # its files and Xet holdings go with it (cascade)
        record(conn, "repo.deleted", bucket.owner_id, principal, subject(bucket.repo_id))


def update_settings(hub: Hub, principal: Principal | None, bucket_id: str, body: dict[str, Any]) -> None:
    private = body.get("private")
    if "visibility" in body:
        if body["visibility"] not in ("public", "private"):
            raise InvalidInputError("visibility must be 'public' or 'private'")
        private = body["visibility"] == "private"
    if not isinstance(private, bool):
        raise InvalidInputError("Nothing to update: pass 'private' (a boolean)")
    with hub.db.write() as conn:
        bucket = find(conn, principal, bucket_id)
        check_admin(principal, bucket)
        if bucket.private != private:
            repos_q.update_repo(conn, bucket.id, private=private, last_modified=utcnow())
            record(conn, "repo.visibility_changed", bucket.owner_id, principal, subject(bucket.repo_id),
                   {"private": private})


def move(hub: Hub, principal: Principal | None, from_id: str, to_id: str) -> None:
    """Rename or transfer a bucket (``/api/repos/move`` with ``type: bucket``)."""
    to_ns, to_name = split_id(to_id)
    validate_name(to_ns, "namespace")
    validate_name(to_name)
    with hub.db.write() as conn:
        bucket = find(conn, principal, from_id)
        check_admin(principal, bucket)
        owner = accounts_q.by_name(conn, to_ns)
        if owner is None:
            raise PermissionDeniedError(f"The namespace {to_ns!r} does not exist")
        group = bucket.resource_group_id if owner.id == bucket.owner_id else None
        check_namespace_write(principal, owner.id, owner.name, group)
        accounts_q.lock_namespace(conn, owner.id)
        clash = repos_q.get(conn, BUCKET, owner.name, to_name)
        if clash is not None and clash.id != bucket.id:
            raise ConflictError(f"A bucket called {owner.name}/{to_name} already exists")
        repos_q.update_repo(conn, bucket.id, namespace=owner.name, name=to_name, owner_id=owner.id,
                            resource_group_id=group)
        record(conn, "repo.moved", owner.id, principal, subject(f"{owner.name}/{to_name}"),
               {"from": bucket.repo_id, "to": f"{owner.name}/{to_name}"})


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    path: str
    uploaded_at: datetime


def _path(value: object) -> str:
    path = validate_path(value)
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidInputError(f"Invalid path: longer than {MAX_PATH_BYTES} bytes")
    return path


def tree(hub: Hub, principal: Principal | None, bucket_id: str, prefix: str, recursive: bool,
         after: str | None, limit: int = PAGE) -> tuple[list[BucketFile | Folder], str | None]:
    """A page of what lies under ``prefix``: recursive, every file below it (files only, as the
    clients expect); otherwise its direct children, files and folders. A prefix naming a file
    gives that file; one naming nothing an empty list. The cursor of the next page, or None."""
    prefix = prefix.strip("/")
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
        exact = buckets_q.get_files(conn, bucket.id, [prefix]).get(prefix) if prefix else None
        under = f"{prefix}/" if prefix else ""
        if recursive:
            files = buckets_q.files_under(conn, bucket.id, under, after, limit + 1)
            entries: list[BucketFile | Folder] = list(files)
        else:
            # Direct children: folders are the first segments below the prefix, dated by their
            # newest file. The whole subtree is read (a bucket's folders are not stored).
            files = buckets_q.files_under(conn, bucket.id, under, None, None)
            children: dict[str, BucketFile | Folder] = {}
            for f in files:
                rest = f.path[len(under):]
                if "/" not in rest:
                    children[f.path] = f
                else:
                    folder = under + rest.split("/", 1)[0]
                    seen = children.get(folder)
                    if seen is None or (isinstance(seen, Folder) and seen.uploaded_at < f.uploaded_at):
                        children[folder] = Folder(folder, f.uploaded_at)
            entries = [children[k] for k in sorted(children) if after is None or k > after][: limit + 1]
    if exact is not None and after is None:
        entries = [exact, *entries]
    more = len(entries) > limit
    entries = entries[:limit]
    return entries, (entries[-1].path if more and entries else None)


def paths_info(hub: Hub, principal: Principal | None, bucket_id: str, paths: object) -> list[BucketFile]:
    """The files among ``paths`` (missing ones and folders are left out, as the client expects)."""
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) > MAX_PATHS_INFO:
        raise InvalidInputError(f"'paths' must be a list of at most {MAX_PATHS_INFO} strings")
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
        found = buckets_q.get_files(conn, bucket.id, list(dict.fromkeys(paths)))
    return [found[p] for p in dict.fromkeys(paths) if p in found]


def file_meta(hub: Hub, principal: Principal | None, bucket_id: str, path: str) -> tuple[Repo, BucketFile]:
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
        found = buckets_q.get_files(conn, bucket.id, [path]).get(path)
    if found is None:
        raise EntryNotFoundError(f"{path} does not exist in bucket {bucket.repo_id}")
    return bucket, found


def check_writer(hub: Hub, principal: Principal | None, bucket_id: str) -> None:
    """Before a batch's body is read: the caller may write the bucket."""
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
    check_write(principal, bucket)


def stored(hub: Hub, xet_hash: str) -> StoredFile:
    return xet_svc.stored_file(hub, xet_hash)


read = xet_svc.read_range


def xet_token(hub: Hub, principal: Principal | None, bucket_id: str, mode: str, base_url: str) -> XetToken:
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
    if mode == "write":
        check_write(principal, bucket)
    return issue_bucket_token(hub, principal, bucket, mode, base_url)


# -- batches -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    processed: int
    failed: list[dict[str, str]]


def parse_lines(body: bytes) -> list[dict[str, Any]]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH_LINES:
        raise InvalidInputError(f"A batch holds at most {MAX_BATCH_LINES} operations")
    out = []
    for n, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"Line {n} of the batch is not JSON") from exc
        if not isinstance(item, dict) or item.get("type") not in ("addFile", "copyFile", "deleteFile"):
            raise InvalidInputError(f"Line {n}: expected an object with type addFile, copyFile or deleteFile")
        out.append(item)
    return out


#: The first millisecond of the year 10000: later times have no ISO-8601 spelling to list them by.
MAX_MTIME = 253_402_300_800_000


def _mtime(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_MTIME:
        raise InvalidInputError("'mtime' must be milliseconds since the epoch, before the year 10000")
    return value


def _content_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 255 or any(ord(c) < 32 for c in value):
        raise InvalidInputError("'contentType' must be a media type")
    return value


def _source_holds(
    conn: Connection, principal: Principal | None, item: dict[str, Any], xet_hash: str
) -> tuple[str, int]:
    """``(sha256, size)`` of the Xet file a copy names, in a source the caller may read."""
    kind, source_id = item.get("sourceRepoType"), item.get("sourceRepoId")
    if not isinstance(source_id, str) or kind not in (BUCKET, *HOSTED_REPO_TYPES):
        raise InvalidInputError("A copy names 'sourceRepoType' (bucket, model, dataset) and 'sourceRepoId'")
    namespace, _, name = source_id.partition("/")
    source = repos_q.get(conn, str(kind), namespace, name) if name else None
    if source is None or not can_read(principal, source):
        raise RepoNotFoundError(f"{kind} {source_id} not found")
    if source.gated is not None:
        from modelyard.services.gating import check_download

        check_download(conn, principal, source)
    if xet_hash == hash_to_str(ZERO_HASH):
        return EMPTY_SHA256, 0
    stored = xet_q.repo_file(conn, source.id, xet_hash)
    if stored is None:
        raise EntryNotFoundError(f"No file with Xet hash {xet_hash} in {kind} {source_id}")
    return stored.sha256, stored.size


def batch(hub: Hub, principal: Principal | None, bucket_id: str, items: list[dict[str, Any]]) -> BatchResult:
    """Apply a batch's lines in order, each on its own (as the client's contract allows): a line
    that fails is reported in ``failed`` and changes nothing; the others apply."""
    with hub.db.read() as conn:
        bucket = find(conn, principal, bucket_id)
    check_write(principal, bucket)
    failed: list[dict[str, str]] = []
    for item in items:
        path = item.get("path")
        try:
            _apply(hub, principal, bucket, item)
        except RepoNotFoundError as exc:
            if exc.message == NOT_FOUND:
                raise  # the bucket itself went away meanwhile
            failed.append({"path": str(path), "error": exc.message})
        except HubError as exc:
            failed.append({"path": str(path), "error": exc.message})
    return BatchResult(len(items), failed)


def _apply(hub: Hub, principal: Principal | None, bucket: Repo, item: dict[str, Any]) -> None:
    path = _path(item.get("path"))
    now = utcnow()
    with hub.db.write() as conn:
        # The row lock orders this line against gc, which lets go of a bucket's Xet files only
        # if no line changed the bucket since it listed what the bucket holds (``refs_version``).
        if refs_q.lock(conn, bucket.id) is None:
            raise RepoNotFoundError(NOT_FOUND)
        current = repos_q.get_by_id(conn, bucket.id)
        if current is None or current.uid != bucket.uid:
            raise RepoNotFoundError(NOT_FOUND)
        repos_q.bump_refs_version(conn, bucket.id)
        if item["type"] == "deleteFile":
            if buckets_q.delete_file(conn, bucket.id, path):  # a missing path: nothing to do
                repos_q.update_repo(conn, bucket.id, last_modified=now)
            return
        raw_hash = item.get("xetHash")
        xet_hash = hash_to_str(str_to_hash(raw_hash if isinstance(raw_hash, str) else "", "xetHash"))
        mtime, content_type = _mtime(item.get("mtime")), _content_type(item.get("contentType"))
        if item["type"] == "copyFile":
            sha256, size = _source_holds(conn, principal, item, xet_hash)
        elif xet_hash == hash_to_str(ZERO_HASH):
            sha256, size = EMPTY_SHA256, 0
        else:
            stored = xet_q.repo_file(conn, bucket.id, xet_hash)
            if stored is None:
                raise EntryNotFoundError(
                    f"No file with Xet hash {xet_hash} was uploaded to this bucket: upload it through the CAS first")
            sha256, size = stored.sha256, stored.size
        if size:  # the bucket holds the Xet file (what its CAS token may read, what gc keeps)
            xet_q.record_repo_file(hub.db, conn, bucket.id, sha256, xet_hash, size, now)
        buckets_q.put_file(hub.db, conn, bucket.id, BucketFile(path, xet_hash, sha256, size, mtime, content_type, now))
        repos_q.update_repo(conn, bucket.id, last_modified=now)


def iso_ms(value: int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}Z"

