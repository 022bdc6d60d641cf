"""The Hub: one object holding the database, the blob store and the caches of a server."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from dulwich.objects import ShaFile

from modelyard.catalog import objects as objects_q
from modelyard.catalog.database import Database
from modelyard.config import Settings
from modelyard.ids import Oid
from modelyard.services.jobs import Jobs
from modelyard.services.tallies import Tallies
from modelyard.services.webhook_sender import WebhookSender
from modelyard.storage import BlobStore, open_store
from modelyard.versioning.objects import BLOB, parse

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small thread-safe LRU for immutable values (git objects never change)."""

    def __init__(self, capacity: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)


def utcnow() -> datetime:
    """Naive UTC, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


class ObjectCache:
    """Reads git objects from the database, caching trees and commits (never blobs)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: LruCache[str, ShaFile] = LruCache(20_000)
        self.blob_meta: LruCache[str, tuple[int, str | None, int | None]] = LruCache(200_000)

    def get(self, oid: Oid) -> ShaFile:
        obj = self._cache.get(oid)
        if obj is not None:
            return obj
        with self._db.read() as conn:
            found = objects_q.get(conn, oid)
        if found is None:
            raise KeyError(oid)
        obj = parse(found[0], found[1], oid)
        if found[0] != BLOB:
            self._cache.put(oid, obj)
        return obj

    def prefetch(self, oids: Sequence[Oid]) -> None:
        """Load the trees and commits among ``oids`` that are not cached yet, in one statement
        per 500: a walk of many trees then costs one round trip per level, not one per tree."""
        missing = [oid for oid in dict.fromkeys(oids) if self._cache.get(oid) is None]
        if not missing:
            return
        with self._db.read() as conn:
            found = objects_q.get_many(conn, missing)
        for oid, (type_num, data) in found.items():
            if type_num != BLOB:
                self._cache.put(oid, parse(type_num, data, oid))

    def meta(self, oids: list[Oid]) -> dict[Oid, tuple[int, str | None, int | None]]:
        """``(size, lfs sha256, lfs size)`` of blobs, cached."""
        out: dict[Oid, tuple[int, str | None, int | None]] = {}
        missing = []
        for oid in oids:
            hit = self.blob_meta.get(oid)
            if hit is None:
                missing.append(oid)
            else:
                out[oid] = hit
        if missing:
            with self._db.read() as conn:
                found = objects_q.blob_meta(conn, missing)
            for oid_str, value in found.items():
                self.blob_meta.put(oid_str, value)
                out[Oid(oid_str)] = value
        return out


class Hub:
    """Everything a request handler or a CLI command needs; built once per process."""

    def __init__(self, settings: Settings, db: Database | None = None, blobs: BlobStore | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.resolved_database_url())
        self.blobs = blobs or open_store(
            settings.resolved_storage_url(),
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            s3_public_endpoint_url=settings.s3_public_endpoint_url,
        )
        self.objects = ObjectCache(self.db)
        #: Walks and histories keyed by immutable ids (trees, commits): computed once, reused by
        #: every page, listing and request that needs them (services/files.py).
        self.walks: LruCache[tuple[str, str, bool], tuple[Any, ...]] = LruCache(64)
        self.histories: LruCache[str, tuple[Any, ...]] = LruCache(256)
        #: Search pages' facet counts, with the time they expire (services/discovery.py).
        self.facets: LruCache[tuple[Any, ...], tuple[float, Any]] = LruCache(512)
        #: Presigned URLs of the store, with the monotonic time they expire (``store_url``).
        self.store_urls: LruCache[tuple[Any, ...], tuple[float, str]] = LruCache(4096)
        #: The large file a download path named at the commit its revision last resolved to:
        #: ``(repo type, repo key, revision, path) -> (commit, sha256)``, a guess that lets the
        #: next download ask for the file's facts in the same statement as the repo and branch
        #: (services/files.py ``resolve_file``; used only when the commit matches, so never stale).
        self.download_hints: LruCache[tuple[str, str, str, str], tuple[str, str]] = LruCache(8192)
        self.tallies = Tallies(self)
        self.jobs = Jobs(self)
        self.webhook_sender = WebhookSender(self)
        self._secret: bytes | None = None
        self._scanner: Any = None
        self._scanner_lock = threading.Lock()

    @property
    def scanner(self) -> Any:
        """The scanner sandboxes of this process (``services/scans.py: Scanner``), made on first use."""
        with self._scanner_lock:
            if self._scanner is None:
                from modelyard.services.scans import Scanner

                self._scanner = Scanner(self)
            return self._scanner

    def store_url(self, key: str, ttl: int, *, window: tuple[int, int] | None = None,
                  filename: str | None = None, media_type: str | None = None) -> str | None:
        """The store's presigned GET URL for a blob (``BlobStore.signed_url``), or None. A URL is
        reused while at least half its life is left: signing costs about half a millisecond, a
        third of a HEAD's time on PostgreSQL, and a URL names one object and grants nothing the
        caller was not checked for (every caller checks access before asking)."""
        wanted = (key, ttl, window, filename, media_type)
        now = time.monotonic()
        found = self.store_urls.get(wanted)
        if found is not None and found[0] - now > ttl / 2:
            return found[1]
        url = self.blobs.signed_url(key, ttl, window=window, filename=filename, media_type=media_type)
        if url is not None:
            self.store_urls.put(wanted, (now + ttl, url))
        return url

    def signing_key(self) -> bytes:
        """The HMAC key for self-authorising URLs and Xet tokens (``services/keys.py``)."""
        if self._secret is None:
            from modelyard.services.keys import load_signing_key

            self._secret = load_signing_key(self.settings, self.db)
        return self._secret

    def upgrade_schema(self) -> None:
        """Apply the database migrations up to the newest schema (``db upgrade``, ``serve``)."""
        from modelyard.catalog.migrate import upgrade

        upgrade(self.db)

    def close(self) -> None:
        self.jobs.close()
        self.webhook_sender.close()
        if self._scanner is not None:
            self._scanner.close()
        self.tallies.close()
        self.db.dispose()


class OverlayReader:
    """Objects written in a transaction that has not committed yet, over the shared cache."""

    def __init__(self, base: ObjectCache, new: Sequence[tuple[str, int, bytes, str | None, int | None]]) -> None:
        self._base = base
        self._new = {oid: (t, data) for oid, t, data, _s, _z in new}

    def get(self, oid: Oid) -> ShaFile:
        found = self._new.get(oid)
        if found is None:
            return self._base.get(oid)
        return parse(found[0], found[1], oid)
