"""Serving another hub's repos as our own: an edge hub with an upstream (``MODELYARD_UPSTREAM_URL``).

- **On demand.** A read of a repo that is not here but matches ``upstream_allow`` makes it local
  (``materialize``): its git history is fetched (so its commit ids are the upstream's, exactly),
  stored like a push's objects, and the repo is created with its branches and tags, marked as a
  mirror (``repos.upstream``). Nothing of its large files is fetched yet.
- **Fresh, not chatty.** A read naming a branch or tag of a mirror asks the upstream for its refs
  at most once per ``upstream_ttl`` seconds per process (``freshen``); a commit id never goes
  upstream. A ref the upstream moved is followed (force pushes too); its old target is pinned
  (``mirror_pins``), so a commit a client could once resolve keeps resolving (gc keeps pins).
- **Pull once.** A large file not held yet is fetched by one ``Flight`` per repo and file, however
  many clients ask at once: each is streamed the bytes as they arrive (Range requests too) from a
  local spool; the last byte is released only once the whole file matched the sha256 its pointer
  names, so no client ever receives a complete wrong file. The file then lands like an upload: a
  file the upstream holds through Xet is fetched Xet-native (its chunks, so it lands in the chunk
  store with the upstream's Xet hash and deduplicates against everything here); others land as
  LFS objects.
- **Offline.** An unreachable upstream answers 503 for what is not here (``UpstreamUnavailableError``)
  and nothing else changes: everything held keeps being served, branches as last seen.
- **Read only.** Writes to a mirror are refused (``services/auth.py``); the upstream is its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, cast

from dulwich.objects import Commit
from sqlalchemy.exc import IntegrityError

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import mirrors as mirrors_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import redirects as redirects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog.repos import Repo
from modelyard.errors import HubError, InvalidInputError, UpstreamUnavailableError
from modelyard.ids import HOSTED_REPO_TYPES, Oid, is_commit_id, validate_name
from modelyard.services.audit import record, repo_subject
from modelyard.services.auth import Principal
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.grants import Grant
from modelyard.services.hub import Hub, LruCache, utcnow
from modelyard.services.pools import long_work_executor
from modelyard.services.repos import split_repo_id
from modelyard.services.upstream import MIRRORED_REFS, Upstream, UpstreamNotFound
from modelyard.storage.base import Stage
from modelyard.versioning.wire import PackError

log = logging.getLogger("modelyard.mirror")

#: Bytes a waiting reader is handed at once from the spool.
READ_PIECE = 4 * 1024 * 1024
LOCK_STRIPES = 64


# -- the process's mirror state -------------------------------------------------------------------


class _State:
    """What a server process keeps for mirroring: the upstream client, per-repo locks, which
    repos are mirrors (and when their refs were last compared), and the flights in the air."""

    def __init__(self, hub: Hub) -> None:
        s = hub.settings
        assert s.upstream_url is not None
        token = s.upstream_token.get_secret_value() if s.upstream_token is not None else None
        self.upstream = Upstream(s.upstream_url, token, s.upstream_connect_timeout, s.upstream_timeout,
                                 s.upstream_retry_after)
        self.lock = threading.Lock()
        #: one lock per repo name, striped (any id a caller names gets one: no table that grows)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        #: (type, key) -> (mirror or None, monotonic time it was read)
        self.known: LruCache[tuple[str, str], tuple[mirrors_q.Mirror | None, float]] = LruCache(4096)
        #: repo pk -> monotonic time its refs were last compared with the upstream's
        self.checked: dict[int, float] = {}
        self.flights: dict[tuple[int, str], Flight] = {}
        #: (repo pk, sha256) -> monotonic time a flight of it failed after streaming bytes
        self.failed: dict[tuple[int, str], float] = {}
        self.pool: ThreadPoolExecutor = long_work_executor(4, "modelyard-mirror")

    def repo_lock(self, repo_type: str, repo_id: str) -> threading.Lock:
        key = f"{repo_type}:{repo_id.lower()}".encode()
        return self._locks[int.from_bytes(hashlib.blake2b(key, digest_size=4).digest()) % LOCK_STRIPES]


_STATES: weakref.WeakKeyDictionary[Hub, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(hub: Hub) -> _State | None:
    if hub.settings.upstream_url is None:
        return None
    with _STATES_LOCK:
        found = _STATES.get(hub)
        if found is None:
            found = _STATES[hub] = _State(hub)
        return found


def allowed(hub: Hub, repo_type: str, repo_id: str) -> bool:
    """Whether ``upstream_allow`` lets this repo be mirrored (``type:pattern`` for datasets and spaces)."""
    for pattern in (p.strip() for p in hub.settings.upstream_allow.split(",")):
        if not pattern:
            continue
        kind, _sep, ids = pattern.rpartition(":")
        kind = {"": "model", "models": "model", "datasets": "dataset", "spaces": "space"}.get(kind, kind)
        if kind == repo_type and fnmatch.fnmatchcase(repo_id.lower(), ids.lower()):
            return True
    return False


def _mirror(hub: Hub, st: _State, repo_type: str, repo_id: str, fresh: bool = False) -> mirrors_q.Mirror | None:
    """The mirror row of a repo (None: not a mirror, or not here), read at most once per TTL."""
    key = (repo_type, repo_id.lower())
    now = time.monotonic()
    cached = st.known.get(key)
    if cached is not None and not fresh and now - cached[1] < max(hub.settings.upstream_ttl, 1.0):
        return cached[0]
    try:
        namespace, name = split_repo_id(repo_id)
    except InvalidInputError:
        return None
    with hub.db.read() as conn:
        found = mirrors_q.get(conn, repo_type, namespace, name)
    st.known.put(key, (found, now))
    return found


# -- making an upstream repo local ----------------------------------------------------------------


def _get_parents(hub: Hub) -> Callable[[bytes], list[bytes]]:
    def parents(oid: bytes) -> list[bytes]:
        return list(cast(Commit, hub.objects.get(Oid(oid.decode()))).parents)

    return parents


def materialize(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> bool:
    """Make the upstream's repo ``repo_id`` local, if it is allowed and the upstream has it;
    True when a mirror of that name now exists (the caller reads again), False when there is
    nothing to mirror. UpstreamUnavailableError when the upstream cannot say."""
    st = _state(hub)
    if st is None or repo_type not in HOSTED_REPO_TYPES or not allowed(hub, repo_type, repo_id):
        return False
    try:
        namespace, name = split_repo_id(repo_id)
        validate_name(namespace, "namespace")
        validate_name(name)
    except InvalidInputError:
        return False
    with st.repo_lock(repo_type, repo_id):
        with hub.db.read() as conn:
            existing = repos_q.get(conn, repo_type, namespace, name)
        if existing is not None:  # made meanwhile (a mirror), or the hub's own repo (its 404 stands)
            return existing.upstream is not None
        try:
            return _materialize(hub, st, repo_type, namespace, name)
        except UpstreamNotFound:
            return False
        except IntegrityError:  # another server made the org or the repo meanwhile: theirs stands
            with hub.db.read() as conn:
                existing = repos_q.get(conn, repo_type, namespace, name)
            if existing is None:
                raise
            return existing.upstream is not None


def _materialize(hub: Hub, st: _State, repo_type: str, namespace: str, name: str) -> bool:
    info = st.upstream.info(repo_type, f"{namespace}/{name}")
    upstream_id = str(info.get("id") or f"{namespace}/{name}")
    if upstream_id.lower() == f"{namespace}/{name}".lower() and "/" in upstream_id:
        namespace, name = upstream_id.split("/", 1)  # the upstream's spelling of the id
    private = bool(info.get("private")) or bool(info.get("gated"))
    fetched = st.upstream.fetch(repo_type, upstream_id, [], _get_parents(hub), hub.settings.git_max_push_size)
    if not fetched.refs:
        return False  # an empty repo: nothing to serve
    commits = _ingest(hub, fetched, [])
    _check_history(commits, set())
    missing = set(fetched.refs.values()) - set(commits)
    if missing:
        raise UpstreamUnavailableError(f"The upstream's refs name commits its pack did not hold: {sorted(missing)[0]}")
    now = utcnow()
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, namespace)
        if private and owner is not None and owner.kind == "user":
            # A local user of that name is not the upstream's: what the upstream token may read
            # privately is never handed to them.
            log.warning("not mirroring private or gated %s %s/%s into the local user %s", repo_type, namespace,
                        name, owner.name)
            return False
        if owner is None:  # the upstream's namespace, as an org of this hub with no members
            owner = accounts_q.create(conn, name=namespace, kind="org", fullname=namespace, email=None,
                                      is_admin=False, default_private=False, now=now)
        accounts_q.lock_namespace(conn, owner.id)
        if repos_q.get(conn, repo_type, owner.name, name) is not None:
            return True
        repo_pk = repos_q.create(conn, repo_type=repo_type, namespace=owner.name, name=name, owner_id=owner.id,
                                 private=private, now=now, created_seq=search_q.next_seq(conn),
                                 upstream=st.upstream.url)
        redirects_q.remove_name(conn, repo_type, owner.name, name)
        for oid in commits:
            objects_q.add_repo_commit(hub.db, conn, repo_pk, oid, now)
        for ref, target in sorted(fetched.refs.items()):
            refs_q.compare_and_swap(conn, repo_pk, ref, None, target)
        mirrors_q.add(conn, repo_pk, repo_type, upstream_id, now)
        event = new_event(hub, conn, repo_pk, "repo")
        record(conn, "repo.mirrored", owner.id, None, repo_subject(repo_type, f"{owner.name}/{name}"),
               {"upstream": st.upstream.url, "private": private}, actor_name="mirror")
    st.checked[repo_pk] = time.monotonic()
    st.known.put((repo_type, f"{namespace}/{name}".lower()), (None, float("-inf")))  # read again
    record_and_enqueue(hub, event)
    log.info("mirrored %s %s/%s from %s (%d commits)", repo_type, owner.name, name, st.upstream.url, len(commits))
    return True


def _ingest(hub: Hub, fetched: Any, have: list[str]) -> dict[str, Commit]:
    from modelyard.services.git import ingest_pack

    if fetched.pack is None:
        return {}
    try:
        return ingest_pack(hub, have, fetched.pack)
    except PackError as exc:
        raise UpstreamUnavailableError(f"The upstream sent a pack this hub refuses: {exc.args[0]}") from exc
    finally:
        fetched.pack.close()


def _check_history(commits: dict[str, Commit], held: set[str]) -> None:
    """Every parent of a fetched commit is fetched or held: a mirror is never shallow."""
    for oid, commit in commits.items():
        for parent in (p.decode() for p in commit.parents):
            if parent not in commits and parent not in held:
                raise UpstreamUnavailableError(f"The upstream sent commit {oid} without its parent {parent}")


# -- keeping a mirror's refs fresh ------------------------------------------------------------------


def before_read(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str | None) -> None:
    """Before a read of a mirror by a branch or tag name (or of its refs or info): compare its
    refs with the upstream's when they are older than ``upstream_ttl``. A commit id never asks."""
    st = _state(hub)
    if st is None or (revision is not None and is_commit_id(revision)):
        return
    mirror = _mirror(hub, st, repo_type, repo_id)
    if mirror is not None:
        freshen(hub, mirror)


def after_missing_revision(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> bool:
    """A revision was not found in a mirror: compare its refs with the upstream's now; True when
    the refs changed (the caller reads again)."""
    st = _state(hub)
    if st is None:
        return False
    mirror = _mirror(hub, st, repo_type, repo_id)
    return mirror is not None and freshen(hub, mirror, force=True)


def freshen(hub: Hub, mirror: mirrors_q.Mirror, force: bool = False, strict: bool = False) -> bool:
    """Follow the upstream's refs if this process last compared them over ``upstream_ttl`` ago
    (``force``: now); True when a ref moved. An unreachable upstream changes nothing: the refs
    stay as last seen (logged, and kept in ``mirror_repos.last_error``); ``strict`` (an operator's
    command) raises it too."""
    st = _state(hub)
    assert st is not None
    ttl = hub.settings.upstream_ttl
    if not force and time.monotonic() - st.checked.get(mirror.repo_pk, float("-inf")) < ttl:
        return False
    if not strict and not st.upstream.reachable:
        return False
    with st.repo_lock(mirror.repo_type, mirror.repo_id):
        if not force and time.monotonic() - st.checked.get(mirror.repo_pk, float("-inf")) < ttl:
            return False  # another thread just did
        try:
            moved = _sync_refs(hub, st, mirror)
            error = None
        except (UpstreamUnavailableError, UpstreamNotFound) as exc:
            moved, error = False, str(exc) or type(exc).__name__
            log.warning("mirror %s %s: refs not refreshed: %s", mirror.repo_type, mirror.repo_id, error)
            failure: HubError = exc if isinstance(exc, HubError) else InvalidInputError(
                f"{mirror.repo_id} is no longer on the upstream, or its token may no longer read it")
        st.checked[mirror.repo_pk] = time.monotonic()
        with hub.db.write() as conn:
            mirrors_q.checked(conn, mirror.repo_pk, utcnow(), error)
        if strict and error is not None:
            raise failure
        return moved


def _sync_refs(hub: Hub, st: _State, mirror: mirrors_q.Mirror) -> bool:
    with hub.db.read() as conn:
        local = refs_q.all_refs(conn, mirror.repo_pk)
    have = sorted(set(local.values()))
    fetched = st.upstream.fetch(mirror.upstream_type, mirror.upstream_id, have, _get_parents(hub),
                                hub.settings.git_max_push_size)
    commits = _ingest(hub, fetched, have)
    mine = {ref: target for ref, target in local.items() if ref.startswith(MIRRORED_REFS)}
    changes = {ref: (mine.get(ref), fetched.refs.get(ref)) for ref in set(mine) | set(fetched.refs)
               if mine.get(ref) != fetched.refs.get(ref)}
    if not changes:
        return False
    with hub.db.read() as conn:
        parents = {p.decode() for c in commits.values() for p in c.parents} - set(commits)
        held = objects_q.repo_commits_among(conn, mirror.repo_pk, sorted(parents | set(fetched.refs.values())))
    _check_history(commits, held)
    for ref, (_old, new) in changes.items():
        if new is not None and new not in commits and new not in held:
            raise UpstreamUnavailableError(f"The upstream's {ref} names commit {new}, which it did not send")
    now = utcnow()
    events = []
    with hub.db.write() as conn:
        refs_q.lock(conn, mirror.repo_pk)
        for oid in commits:
            objects_q.add_repo_commit(hub.db, conn, mirror.repo_pk, oid, now)
        for ref, (old, new) in sorted(changes.items()):
            if not refs_q.compare_and_swap(conn, mirror.repo_pk, ref, old, new):
                raise UpstreamUnavailableError("Another server synced this mirror meanwhile")
            if old is not None:  # what a client could resolve stays resolvable (gc keeps pins)
                mirrors_q.pin(hub.db, conn, mirror.repo_pk, [old])
            if ref == "refs/heads/main":
                search_q.change_sort_keys(conn, mirror.repo_pk, last_modified=now)
            events.append(new_event(hub, conn, mirror.repo_pk, "ref", ref, old, new))
    for event in events:
        record_and_enqueue(hub, event)
    log.info("mirror %s %s: %d refs followed from upstream", mirror.repo_type, mirror.repo_id, len(changes))
    return True


def sync(hub: Hub, repo_type: str, repo_id: str) -> mirrors_q.Mirror:
    """Create or refresh one mirror now (``modelyard mirror``): its refs equal the upstream's."""
    st = _state(hub)
    if st is None:
        raise InvalidInputError("No upstream hub is configured (MODELYARD_UPSTREAM_URL)")
    if not allowed(hub, repo_type, repo_id):
        raise InvalidInputError(f"{repo_id} is not allowed by MODELYARD_UPSTREAM_ALLOW")
    mirror = _mirror(hub, st, repo_type, repo_id, fresh=True)
    if mirror is None:
        if not materialize(hub, None, repo_type, repo_id):
            raise InvalidInputError(f"{repo_type} {repo_id}: not on the upstream, or a repo of this hub's own")
        mirror = _mirror(hub, st, repo_type, repo_id, fresh=True)
        assert mirror is not None
        return mirror
    freshen(hub, mirror, force=True, strict=True)
    return mirror


@dataclass
class Landed:
    """What a copy of a mirror's files did."""

    fetched: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)


def resolve_revisions(hub: Hub, mirror: mirrors_q.Mirror, revisions: list[str]) -> list[str]:
    """Commits of revision names (a branch, a tag or a commit id) of a mirror; ``*``: every ref."""
    with hub.db.read() as conn:
        refs = refs_q.all_refs(conn, mirror.repo_pk)
        out: list[str] = []
        for rev in revisions:
            if rev == "*":
                out.extend(refs.values())
                continue
            target = refs.get(rev) or refs.get(f"refs/heads/{rev}") or refs.get(f"refs/tags/{rev}")
            if target is None and is_commit_id(rev) and objects_q.repo_has_commit(conn, mirror.repo_pk, rev):
                target = rev
            if target is None:
                raise InvalidInputError(f"{mirror.repo_id} has no revision {rev!r}")
            out.append(target)
    return list(dict.fromkeys(out))


def land_revisions(hub: Hub, mirror: mirrors_q.Mirror, revisions: list[str],
                   progress: Callable[[UpstreamFile], None] | None = None) -> Landed:
    """Fetch every large file of ``revisions`` the mirror does not hold yet, one after another
    (resumable: what landed stays landed, and is skipped the next time)."""
    commits = resolve_revisions(hub, mirror, revisions)
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, mirror.repo_pk)
    assert repo is not None
    report = Landed()
    for file in pending_files(hub, repo, commits):
        if progress is not None:
            progress(file)
        try:
            land(hub, file, timeout=None)
        except HubError as exc:
            report.failed.append(f"{file.path}: {exc.message}")
            continue
        report.fetched += 1
        report.bytes += file.size
    return report


def copy(hub: Hub, repo_type: str, repo_id: str, revisions: list[str] | None,
         progress: Callable[[UpstreamFile], None] | None = None) -> tuple[mirrors_q.Mirror, Landed]:
    """``modelyard mirror``: make or refresh the mirror, remember ``revisions`` (None: files on
    demand only) for every later sync, and fetch their files now."""
    mirror = sync(hub, repo_type, repo_id)
    if revisions is not None:
        resolve_revisions(hub, mirror, revisions)  # each must name something now
    with hub.db.write() as conn:
        mirrors_q.track(conn, mirror.repo_pk, revisions)
    if revisions is None:
        return mirror, Landed()
    return mirror, land_revisions(hub, mirror, revisions, progress)


def sync_job(hub: Hub, repo_pk: int) -> None:
    """The job of a ``mirror`` event (scheduled sync): follow the upstream's refs, then fetch the
    files of the tracked revisions. An unreachable upstream leaves it for the next round."""
    with hub.db.read() as conn:
        mirror = mirrors_q.by_pk(conn, repo_pk)
    if mirror is None or _state(hub) is None:
        return
    freshen(hub, mirror, force=True)
    if mirror.revisions:
        try:
            landed = land_revisions(hub, mirror, mirror.revisions)
        except InvalidInputError as exc:  # a tracked branch deleted upstream
            log.warning("mirror %s %s: %s", mirror.repo_type, mirror.repo_id, exc.message)
            return
        if landed.failed:
            log.warning("mirror %s %s: %d files not fetched: %s", mirror.repo_type, mirror.repo_id,
                        len(landed.failed), landed.failed[0])


def schedule_syncs(hub: Hub) -> int:
    """Queue a ``mirror`` event for every mirror that has none pending (the servers' sync timer;
    with many servers each mirror is still synced once per round). How many were queued."""
    from modelyard.catalog import events as events_q

    queued = []
    with hub.db.read() as conn:
        mirrors_now = mirrors_q.all_mirrors(conn)
    for mirror in mirrors_now:
        with hub.db.write() as conn:
            if events_q.pending_of_kind(conn, mirror.repo_pk, "mirror"):
                continue
            queued.append(new_event(hub, conn, mirror.repo_pk, "mirror"))
    for event in queued:
        record_and_enqueue(hub, event)
    return len(queued)


# -- large files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamFile:
    """A large file of a mirror that is not held yet: what a flight needs to fetch it."""

    repo_pk: int
    repo_type: str
    repo_id: str
    commit: str
    path: str
    sha256: str
    size: int


class Flight:
    """One transfer of one file from the upstream, into a spool that any number of readers
    stream from while it grows; then the landing. The last byte is readable only once the file
    is verified (and landed)."""

    def __init__(self, hub: Hub, st: _State, file: UpstreamFile) -> None:
        self.hub, self.st, self.file = hub, st, file
        # Unlinked already; closed (its space freed) when the flight is dropped: by the registry
        # once done, by each reader once it has read (or gone), whichever is last.
        self._spool: IO[bytes] = tempfile.TemporaryFile(prefix="modelyard-flight-", dir=_spool_dir(hub))  # noqa: SIM115
        self._fd = self._spool.fileno()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.written = 0
        self.verified = False
        self.error: BaseException | None = None
        self.done = threading.Event()

    # -- the transfer (a mirror pool thread) --

    def run(self) -> None:
        try:
            self._transfer()
        except BaseException as exc:  # every reader learns it; nothing was recorded
            log.warning("fetching %s of %s from the upstream failed: %s", self.file.path, self.file.repo_id, exc)
            self.error = exc if isinstance(exc, HubError) else UpstreamUnavailableError(
                f"Fetching {self.file.path} from the upstream failed: {exc}")
        finally:
            key = (self.file.repo_pk, self.file.sha256)
            with self.st.lock:
                if self.st.flights.get(key) is self:
                    del self.st.flights[key]
                if self.error is not None and self.written > 0:
                    self.st.failed[key] = time.monotonic()
            self.done.set()
            self._notify()

    def _append(self, *pieces: bytes | bytearray | memoryview) -> None:
        """Write pieces at the end of the spool (one system call, no copy in between); wake the readers."""
        size = sum(len(p) for p in pieces)
        if self.written + size > self.file.size:
            raise UpstreamUnavailableError(f"The upstream sent more than the {self.file.size} bytes of "
                                           f"{self.file.path}")
        done = os.pwritev(self._fd, pieces, self.written)
        while done < size:  # a short write (rare): the rest, piece by piece
            rest = memoryview(b"".join(pieces))[done:]
            done += os.pwrite(self._fd, rest, self.written + done)
        self.written += size
        self._notify()

    def _transfer(self) -> None:
        f, up = self.file, self.st.upstream
        meta = up.file_meta(f.repo_type, f.repo_id, f.commit, f.path)
        xet_hash = meta.get("x-xet-hash")
        digest = hashlib.sha256()
        if xet_hash:
            landing = _XetLanding(self, xet_hash)
            landing.fetch(digest)
        else:
            writer = self.hub.blobs.writer()
            try:
                for piece in up.stream_file(f.repo_type, f.repo_id, f.commit, f.path):
                    self._append(piece)
                    digest.update(piece)
                    writer.write(piece)
            except BaseException:
                writer.abort()
                raise
        if self.written != f.size or digest.hexdigest() != f.sha256:
            if not xet_hash:
                writer.abort()
            raise UpstreamUnavailableError(
                f"The upstream's bytes of {f.path} do not match its pointer (sha256 {f.sha256}, {f.size} bytes)")
        if xet_hash:
            landing.check()
        self.verified = True  # the readers may have the last byte now; landing is this hub's own business
        self._notify()
        if xet_hash:
            landing.land()
        else:
            from modelyard.services.lfs import finish_upload

            finish_upload(self.hub, writer, f.repo_pk, f.sha256, f.size)
        _after_landing(self.hub, f)

    # -- readers --

    def _notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # a loop that closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def readable(self) -> int:
        """Bytes a reader may have now: all once verified, else all but the last."""
        return self.written if self.verified else min(self.written, self.file.size - 1)

    async def wait_past(self, pos: int, timeout: float | None = None) -> None:
        """Until byte ``pos`` is readable (or the flight failed: its error is raised)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        with self._lock:
            self._waiters.add(waiter)
        try:
            while True:
                if self.readable() > pos:
                    return
                if self.done.is_set():
                    raise self.error or UpstreamUnavailableError("The upstream transfer ended early")
                event.clear()
                if self.readable() > pos or self.done.is_set():
                    continue
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def pread(self, size: int, pos: int) -> bytes:
        return os.pread(self._fd, size, pos)

    async def pieces(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` as they become readable."""
        from starlette.concurrency import run_in_threadpool

        pos = start
        while pos < end:
            await self.wait_past(pos)
            n = min(end, self.readable()) - pos
            data = await run_in_threadpool(self.pread, min(n, READ_PIECE), pos)
            if not data:
                raise UpstreamUnavailableError("The spooled file ended early")
            pos += len(data)
            yield data


#: Seconds after a failed transfer during which the file is sent whole, whatever Range asks.
WHOLE_AFTER_FAILURE = 3600.0


def send_whole(hub: Hub, repo_pk: int, sha256: str) -> bool:
    """Whether a download of this file must ignore ``Range``: a transfer of it failed after
    readers were streamed bytes (which may have been wrong: a flight's bytes are checked only at
    the end). A client resuming such a download with a Range would keep its first part; a 200
    instead of a 206 makes it start again, and it then gets verified bytes only."""
    st = _state(hub)
    if st is None:
        return False
    when = st.failed.get((repo_pk, sha256))
    return when is not None and time.monotonic() - when < WHOLE_AFTER_FAILURE


def _spool_dir(hub: Hub) -> str:
    path = hub.settings.data_dir / "mirror-spool"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def flight(hub: Hub, file: UpstreamFile) -> Flight:
    """The flight fetching ``file``: the one in the air, or a new one."""
    st = _state(hub)
    if st is None:
        raise UpstreamUnavailableError("No upstream hub is configured")
    with st.lock:
        found = st.flights.get((file.repo_pk, file.sha256))
        if found is None:
            if not st.upstream.reachable:
                raise UpstreamUnavailableError(f"The upstream hub {st.upstream.url} is unreachable; "
                                               "this file is not held here yet")
            found = st.flights[(file.repo_pk, file.sha256)] = Flight(hub, st, file)
            st.pool.submit(found.run)
        return found


def land(hub: Hub, file: UpstreamFile, timeout: float | None = None) -> None:
    """Fetch and land one file now (``modelyard mirror``, the LFS batch API); raises the flight's error."""
    f = flight(hub, file)
    if not f.done.wait(timeout):
        raise UpstreamUnavailableError(f"Fetching {file.path} from the upstream is taking too long")
    if f.error is not None:
        raise f.error


def _after_landing(hub: Hub, file: UpstreamFile) -> None:
    """A landed file is scanned like an uploaded one."""
    from modelyard.services import scans

    with contextlib.suppress(Exception):
        scans.enqueue_landed(hub, file.repo_pk, file.commit, file.path)


#: Bytes a flight gathers before it writes them to its spool and wakes its readers.
SPOOL_WRITE = 4 * 1024 * 1024


class _XetLanding:
    """A Xet file fetched as the upstream stores it: its reconstruction's chunk ranges (the next
    one fetched while this one is used), decoded into the spool (each chunk hashed: the file hash
    must be the upstream's; the sha256 computed beside, in a thread of its own); once verified,
    stored as xorbs of this hub with the upstream's chunk boundaries (``land``)."""

    def __init__(self, flight: Flight, xet_hash: str) -> None:
        self.flight = flight
        self.xet_hash = xet_hash
        self.nodes: list[tuple[bytes, int]] = []
        self.verification: list[bytes] = []
        #: the upstream's terms: (xorb, first chunk, end chunk, the chunks' hashes and sizes)
        self.terms: list[tuple[str, int, int, list[tuple[bytes, int]]]] = []
        #: per term, how the upstream stored each chunk (its compression scheme): landed the same way
        self.schemes: list[bytes] = []

    def fetch(self, digest: Any) -> None:
        from modelyard.xet.hashing import chunk_hash, verification_hash
        from modelyard.xet.xorb import XorbFormatError, split_chunks

        f, up = self.flight.file, self.flight.st.upstream
        cas, token = up.xet_read_token(f.repo_type, f.repo_id, f.commit)
        plan = up.reconstruction(cas, token, self.xet_hash)
        try:
            if int(plan.get("offset_into_first_range", 0)) != 0:
                raise UpstreamUnavailableError("The upstream's reconstruction does not start at the file's start")
            steps = []  # (xorb, first chunk, last chunk, unpacked length, fetch entry)
            for term in plan["terms"]:
                xorb, start, end = str(term["hash"]), int(term["range"]["start"]), int(term["range"]["end"])
                entry = next((e for e in plan["fetch_info"].get(xorb, [])
                              if int(e["range"]["start"]) <= start and end <= int(e["range"]["end"])), None)
                if entry is None:
                    raise UpstreamUnavailableError(f"The upstream's reconstruction has no fetch range for xorb {xorb}")
                steps.append((xorb, start, end, int(term["unpacked_length"]), entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamUnavailableError(f"The upstream's reconstruction is malformed: {exc}") from exc

        def download(entry: dict[str, Any]) -> bytes:
            return up.xorb_range(str(entry["url"]), int(entry["url_range"]["start"]), int(entry["url_range"]["end"]))

        def hash_pieces(pieces: list[bytes | memoryview]) -> None:
            for piece in pieces:
                digest.update(piece)

        hasher = Stage("modelyard-flight-sha256", hash_pieces, 16)
        pending: list[bytes | memoryview] = []
        pending_size = 0
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="modelyard-flight-fetch") as fetcher:
                ahead: dict[int, Any] = {}
                body_of: tuple[int, list[tuple[memoryview, bytes | memoryview]]] | None = None
                for i, (xorb, start, end, length, entry) in enumerate(steps):
                    for j in range(i, min(i + 2, len(steps))):  # this range and the next in the air
                        if id(steps[j][4]) not in ahead and (body_of is None or body_of[0] != id(steps[j][4])):
                            ahead[id(steps[j][4])] = fetcher.submit(download, steps[j][4])
                    if body_of is None or body_of[0] != id(entry):
                        body = ahead.pop(id(entry)).result()
                        try:
                            body_of = (id(entry), list(split_chunks(body)))
                        except XorbFormatError as exc:
                            raise UpstreamUnavailableError(
                                f"The upstream's xorb {xorb} is corrupt: {exc.message}") from exc
                    first = int(entry["range"]["start"])
                    wanted = body_of[1][start - first : end - first]
                    if len(wanted) != end - start:
                        raise UpstreamUnavailableError(f"The upstream's xorb {xorb} range holds too few chunks")
                    nodes = [(chunk_hash(plain), len(plain)) for _raw, plain in wanted]
                    if sum(n[1] for n in nodes) != length:
                        raise UpstreamUnavailableError(f"The upstream's xorb {xorb} range has the wrong length")
                    plains = [plain for _raw, plain in wanted]
                    hasher.put(plains)
                    self.terms.append((xorb, start, end, nodes))
                    self.schemes.append(bytes(raw[4] for raw, _p in wanted))
                    self.nodes.extend(nodes)
                    self.verification.append(verification_hash([n[0] for n in nodes]))
                    for plain in plains:
                        pending.append(plain)
                        pending_size += len(plain)
                        if pending_size >= SPOOL_WRITE:
                            self.flight._append(*pending)
                            pending, pending_size = [], 0
                if pending:
                    self.flight._append(*pending)
        finally:
            hasher.close()

    def check(self) -> None:
        """The chunks hash to the Xet hash the upstream named (the bytes' sha256 is checked apart)."""
        from modelyard.xet.hashing import file_hash, hash_to_str, str_to_hash

        try:
            named = str_to_hash(self.xet_hash, "Xet hash")
        except InvalidInputError as exc:
            raise UpstreamUnavailableError(f"The upstream named an invalid Xet hash: {exc.message}") from exc
        if hash_to_str(file_hash(self.nodes)) != hash_to_str(named):
            raise UpstreamUnavailableError(f"The upstream's chunks of {self.flight.file.path} do not hash to "
                                           "its Xet hash")

    def land(self) -> None:
        """Store the file as xorbs of this hub, read back from the verified spool term by term
        (one upstream xorb range at a time in memory): a term whose chunks this hub holds in the
        upstream's xorb of that name is not stored again; then the file's shard (``upload_shard``
        checks it all once more)."""
        from modelyard.catalog import xet as xet_q
        from modelyard.services.xet import load_indexes, store_xorb, upload_shard
        from modelyard.xet.hashing import file_hash, hash_to_str, merkle_root, str_to_hash
        from modelyard.xet.shard import FileRecord, Term, build_upload_shard
        from modelyard.xet.xorb import ChunkInfo, Compression, XorbIndex, serialize_chunk

        hub, f = self.flight.hub, self.flight.file
        with hub.db.read() as conn:
            held = load_indexes(conn, sorted({t[0] for t in self.terms}))
        local_terms, offset = [], 0
        for (xorb, start, end, nodes), schemes in zip(self.terms, self.schemes, strict=True):
            size = sum(n[1] for n in nodes)
            index = held.get(xorb)
            if index is not None and [(c.hash, c.size) for c in index.chunks[start:end]] == nodes:
                local_terms.append(Term(str_to_hash(xorb), start, end, size))  # this hub holds those chunks
                offset += size
                continue
            name = hash_to_str(merkle_root(nodes))
            with hub.db.read() as conn:
                stored = xet_q.has_xorb(conn, name)
            if not stored:
                data = self.flight.pread(size, offset)
                parts, infos, pos, at = [], [], 0, 0
                for (chunk, chunk_size), scheme in zip(nodes, schemes, strict=True):
                    # hashed as they arrived, not parsed again; compressed as the upstream chose (a
                    # chunk it stored as is would not shrink: no second attempt)
                    part = serialize_chunk(data[at : at + chunk_size], Compression(scheme))
                    infos.append(ChunkInfo(chunk, pos, pos + len(part), chunk_size))
                    parts.append(part)
                    pos += len(part)
                    at += chunk_size
                store_xorb(hub, name, XorbIndex(tuple(infos)), b"".join(parts))
            local_terms.append(Term(str_to_hash(name), 0, len(nodes), size))
            offset += size
        record = FileRecord(file_hash(self.nodes), tuple(local_terms), tuple(self.verification),
                            bytes.fromhex(f.sha256))
        with self.flight.hub.db.read() as conn:
            repo = repos_q.get_by_id(conn, f.repo_pk)
        if repo is None:
            raise UpstreamUnavailableError("The mirror was deleted during the transfer")
        upload_shard(self.flight.hub, Grant(repo, None), build_upload_shard([record], []))


def upstream_file(hub: Hub, repo: Any, commit: str, path: str, sha256: str, size: int) -> UpstreamFile | None:
    """For a large file of a mirror not held yet: what fetching it takes (None: held, or not a mirror)."""
    if getattr(repo, "upstream", None) is None:
        return None
    with hub.db.read() as conn:
        if repos_q.has_lfs_object(conn, repo.id, sha256) is not None:
            return None
    return UpstreamFile(repo.id, repo.type, repo.repo_id, commit, path, sha256, size)


def pending_files(hub: Hub, repo: Repo, commits: list[str]) -> Iterator[UpstreamFile]:
    """The large files of ``commits`` a mirror does not hold yet (``modelyard mirror``)."""
    from modelyard.services.files import tree_entries
    from modelyard.versioning.objects import commit_info

    seen: set[str] = set()
    for commit in commits:
        tree = commit_info(cast(Commit, hub.objects.get(Oid(commit)))).tree
        items = [e for e in tree_entries(hub, tree, "", True) if not e.is_dir]
        metas = hub.objects.meta([e.oid for e in items])
        for item in items:
            _size, sha, lfs_size = metas.get(item.oid, (0, None, None))
            if sha is None or lfs_size is None or sha in seen:
                continue
            seen.add(sha)
            found = upstream_file(hub, repo, commit, item.path, sha, lfs_size)
            if found is not None:
                yield found


def remote_reader(hub: Hub, repo: Repo, commit: str) -> Callable[[Any], Callable[[int, int], bytes] | None]:
    """For the indexer: a large file of a mirror that is not held is read in ranges from the
    upstream (a safetensors or GGUF header: kilobytes, not the file)."""

    def reader(entry: Any) -> Callable[[int, int], bytes] | None:
        with hub.db.read() as conn:
            if repos_q.has_lfs_object(conn, repo.id, entry.lfs_sha256) is not None:
                return None
        st = _state(hub)
        if st is None:
            raise UpstreamUnavailableError("No upstream hub is configured to read this mirror's files from")
        up = st.upstream

        def read(offset: int, length: int) -> bytes:
            return up.read_range(repo.type, repo.repo_id, commit, entry.path, offset, length)

        return read

    return reader


def land_objects(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, oids: list[str]) -> None:
    """The git-lfs batch API names objects by sha256 alone: a mirror fetches those it does not
    hold (found by path in its refs' trees) before the batch is answered. One that fails is then
    answered as missing (git-lfs retries it)."""
    from modelyard.services.gating import check_download
    from modelyard.services.repos import find_repo

    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        check_download(conn, principal, repo)
        if repo.upstream is None or not oids:
            return
        tips = list(refs_q.all_refs(conn, repo.id).values())
    wanted = set(oids)
    for file in pending_files(hub, repo, tips):
        if file.sha256 in wanted:
            try:
                land(hub, file, timeout=hub.settings.upstream_timeout * 4)
            except HubError as exc:
                log.warning("git-lfs batch of %s: %s not fetched: %s", repo.repo_id, file.path, exc.message)
