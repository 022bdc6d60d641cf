"""The git wire protocol (smart HTTP, stateless RPC), served by dulwich's handlers.

Nothing here knows of HTTP or of the database: a repository is served from a snapshot of its
refs and a function that loads objects (``Loader``), and a push hands its commands and its
pack to a function that decides and stores (``Apply``). dulwich does the protocol, the graph
walk, pack writing and pack parsing; this module adds what a hub serving untrusted clients
needs around it: bounded reads, a check of every object's size before it is inflated
(``check_pack_bounds``), and reads batched along the order in which a pack is written.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    GitProtocolError,
    HangupException,
)
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.object_store import BaseObjectStore, MissingObjectFinder
from dulwich.objects import ObjectID, RawObjectID, ShaFile, sha_to_hex
from dulwich.pack import PackData, PackInflater, UnresolvedDeltas, write_pack_from_container
from dulwich.protocol import (
    CAPABILITY_FILTER,
    SIDE_BAND_CHANNEL_DATA,
    Protocol,
    extract_want_line_capabilities,
)
from dulwich.refs import DictRefsContainer, Ref
from dulwich.repo import BaseRepo
from dulwich.server import Backend, ReceivePackHandler, UploadPackHandler

#: ``oids -> {oid: (type number, raw body)}`` for those of them the repository holds.
Loader = Callable[[Sequence[str]], dict[str, tuple[int, bytes]]]

ZERO = "0" * 40
HEAD = Ref(b"HEAD")


class RepoObjects(BaseObjectStore):
    """A read-only dulwich object store over a ``Loader``, loading objects many at a time.

    dulwich asks for one object at a time. The graph walk reads commits (``prime`` loads them all
    at once, as they are few and small) and trees, one by one. Writing the pack reads every
    object again, in the order the walk found them: ``plan`` records that order, and a miss then
    loads the next ``read_ahead`` objects of it in one call. What is loaded stays in a cache
    bounded in bytes, so memory does not grow with the repo's files.
    """

    def __init__(self, load: Loader, read_ahead: int = 256, cache_bytes: int = 16 * 1024 * 1024) -> None:
        super().__init__()
        self._load = load
        self._read_ahead = read_ahead
        self._cache: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        self._plan: list[str] = []
        self._plan_at: dict[str, int] = {}

    def plan(self, oid: str) -> None:
        self._plan_at.setdefault(oid, len(self._plan))
        self._plan.append(oid)

    def prime(self, found: dict[str, tuple[int, bytes]]) -> None:
        for oid, value in found.items():
            self._remember(oid, value)

    def _remember(self, oid: str, found: tuple[int, bytes]) -> None:
        if oid in self._cache:
            return
        self._cache[oid] = found
        self._held += len(found[1])
        while self._held > self._cache_bytes and self._cache:
            _old, (_t, data) = self._cache.popitem(last=False)
            self._held -= len(data)

    def lookup(self, oid: str) -> tuple[int, bytes] | None:
        found = self._cache.get(oid)
        if found is not None:
            self._cache.move_to_end(oid)
            return found
        at = self._plan_at.get(oid)
        wanted = [oid] if at is None else self._plan[at : at + self._read_ahead]
        loaded = self._load(wanted)
        for key, value in loaded.items():
            self._remember(key, value)
        return loaded.get(oid)

    def __getitem__(self, sha: bytes) -> ShaFile:
        # What the database holds was hashed when it was stored: parsed without hashing again.
        hexsha = self._hex(sha)
        type_num, data = self.get_raw(sha)
        return ShaFile.from_raw_string(type_num, data, sha=ObjectID(hexsha.encode("ascii")))

    @staticmethod
    def _hex(sha: bytes) -> str:
        return (sha_to_hex(RawObjectID(sha)) if len(sha) == 20 else sha).decode("ascii")

    def contains_loose(self, sha: bytes) -> bool:
        return self.lookup(self._hex(sha)) is not None

    def contains_packed(self, sha: bytes) -> bool:
        return False

    def __contains__(self, sha: bytes) -> bool:
        return self.contains_loose(sha)

    def get_raw(self, name: bytes) -> tuple[int, bytes]:
        found = self.lookup(self._hex(name))
        if found is None:
            raise KeyError(name)
        return found

    def iter_unpacked_subset(self, shas: Iterable[bytes], **_kwargs: Any) -> Iterator[Any]:
        return iter(())  # nothing is stored as a delta: every object is sent whole

    @property
    def packs(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[ObjectID]:
        raise NotImplementedError("a repository's objects are not listed")

    def add_object(self, obj: ShaFile) -> None:
        raise NotImplementedError("read-only")

    def add_objects(self, objects: Any, progress: Any = None) -> None:
        raise NotImplementedError("read-only")


class _Planned:
    """The objects a fetch needs, as the graph walk yields them; each recorded in the store's plan."""

    def __init__(self, found: Any, store: RepoObjects) -> None:
        self._found = found
        self._store = store

    def __iter__(self) -> Iterator[Any]:
        for item in self._found:
            self._store.plan(item[0].decode("ascii"))
            yield item

    def __len__(self) -> int:
        return len(self._found)


class ServedRepo(BaseRepo):
    """One repository as the handlers see it: a snapshot of its refs, objects through a Loader."""

    def __init__(self, load: Loader, refs: dict[str, str], default_branch: str,
                 commits: dict[str, tuple[int, bytes]] | None = None) -> None:
        store = RepoObjects(load)
        store.prime(commits or {})
        container = DictRefsContainer({Ref(k.encode()): v.encode() for k, v in refs.items()})
        head = f"refs/heads/{default_branch}"
        if head in refs:
            container.set_symbolic_ref(HEAD, Ref(head.encode()))
        super().__init__(cast(Any, store), container)
        self.store = store

    def get_shallow(self) -> set[ObjectID]:
        return set()

    def find_missing_objects(self, *args: Any, **kwargs: Any) -> Any:
        found = super().find_missing_objects(*args, **kwargs)
        return None if found is None else _Planned(found, self.store)


class _OneRepo(Backend):
    def __init__(self, repo: ServedRepo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> Any:
        return self.repo


class ChunkedWriter:
    """Gathers the handler's many small writes into pieces of ``size`` bytes for ``sink``."""

    def __init__(self, sink: Callable[[bytes], None], size: int = 64 * 1024) -> None:
        self._sink = sink
        self._size = size
        self._parts: list[bytes] = []
        self._held = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._held += len(data)
        if self._held >= self._size:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._parts:
            self._sink(b"".join(self._parts))
            self._parts, self._held = [], 0


def advertisement(service: str, repo: ServedRepo, write: Callable[[bytes], None]) -> None:
    """The answer to ``GET info/refs?service=...``: the service line, then the refs."""
    out = ChunkedWriter(write)
    proto = Protocol(_no_input, out.write)
    proto.write_pkt_line(f"# service={service}\n".encode())
    proto.write_pkt_line(None)
    handler = _handler(service, repo, proto, advertise=True)
    handler.handle()
    out.flush()


def serve(service: str, repo: ServedRepo, request: IO[bytes], write: Callable[[bytes], None], **kw: Any) -> None:
    """Answer one stateless ``POST git-upload-pack`` / ``git-receive-pack`` request."""
    out = ChunkedWriter(write)
    proto = Protocol(request.read, out.write)
    handler = _handler(service, repo, proto, advertise=False, **kw)
    try:
        handler.handle()
    except _Failed as failed:  # the push's own decision failed: not the client's doing
        raise failed.error from None
    except HangupException as exc:
        raise GitProtocolError("The request ended early") from exc
    except (ValueError, AssertionError) as exc:  # dulwich's answer to malformed pkt-lines and lines
        raise GitProtocolError(f"Malformed request: {exc}") from exc
    out.flush()


def _no_input(size: int) -> bytes:
    return b""


class _UploadPack(UploadPackHandler):
    """dulwich's upload-pack without ``filter``: a partial clone fetches the objects it left out
    later by id, and dulwich serves only advertised tips as wants; so the client is not offered
    filtering and makes a full clone instead (git says "filtering not recognized by server")."""

    def capabilities(self) -> list[bytes]:
        return [c for c in super().capabilities() if c != CAPABILITY_FILTER and not c.startswith(b"object-format=")]

    def set_client_capabilities(self, caps: Iterable[bytes]) -> None:
        # git still names ``filter`` after warning that it is not offered: it is ignored.
        super().set_client_capabilities([c for c in caps if c.split(b"=", 1)[0] != CAPABILITY_FILTER])


def _handler(service: str, repo: ServedRepo, proto: Protocol, advertise: bool, **kw: Any) -> Any:
    if service == "git-upload-pack":
        return _UploadPack(_OneRepo(repo), ["/"], proto, stateless_rpc=True, advertise_refs=advertise)
    if service == "git-receive-pack":
        return GuardedReceive(_OneRepo(repo), ["/"], proto, stateless_rpc=True, advertise_refs=advertise, **kw)
    raise GitProtocolError(f"Unknown service {service!r}")


@dataclass(frozen=True)
class RefUpdate:
    old: str  # ZERO: the ref is created
    new: str  # ZERO: the ref is deleted
    ref: str


#: ``(updates, pack file or None) -> [(ref, "ok" | reason)]`` (one per update, in order) or raises
#: PackError for an unusable pack.
Apply = Callable[[list[RefUpdate], IO[bytes] | None], list[tuple[str, str]]]


class PackError(Exception):
    """The pushed pack cannot be used (truncated, corrupt, over a limit): nothing is stored."""


class _Failed(Exception):
    """Carries an unexpected error of ``apply`` past the handler's protocol-error handling."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class GuardedReceive(ReceivePackHandler):
    """dulwich's receive-pack with the decision and the storing handed to ``apply`` as a whole:
    every ref of a push moves, or none does (``atomic`` is implied)."""

    def __init__(self, *args: Any, apply: Apply | None = None, spool: Callable[[], IO[bytes]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._apply = apply
        self._spool = spool

    def capabilities(self) -> list[bytes]:
        # As dulwich's, less the object-format (sha1 is the default) and plus nothing.
        return [c for c in super().capabilities() if not c.startswith(b"object-format=")]

    def _apply_pack(self, refs: list[tuple[ObjectID, ObjectID, Ref]]) -> Iterator[tuple[bytes, bytes]]:
        assert self._apply is not None and self._spool is not None
        updates = [RefUpdate(old.decode(), new.decode(), name.decode("utf-8", "replace")) for old, new, name in refs]
        pack: IO[bytes] | None = None
        if any(u.new != ZERO for u in updates):
            pack = self._spool()
            while True:  # the rest of the request is the pack
                piece = self.proto.read(1024 * 1024)
                if not piece:
                    break
                pack.write(piece)
            if pack.tell() == 0:  # a push creating refs at commits the repo holds may send none
                pack.close()
                pack = None
            else:
                pack.seek(0)
        try:
            results = self._apply(updates, pack)
        except PackError as exc:
            yield (b"unpack", _status_text(str(exc)))
            for u in updates:
                yield (u.ref.encode(), b"unpacker error")
            return
        except Exception as exc:
            raise _Failed(exc) from exc
        finally:
            if pack is not None:
                pack.close()
        yield (b"unpack", b"ok")
        for ref, status in results:
            yield (ref.encode(), _status_text(status))


def _status_text(text: str) -> bytes:
    return " ".join(text.split()).encode("utf-8", "replace")[:900]


# -- reading a pushed pack ------------------------------------------------------------------------

OFS_DELTA, REF_DELTA = 6, 7


@dataclass(frozen=True)
class PackBounds:
    max_object: int  # largest object (or delta result) in bytes
    max_total: int  # all objects together, inflated
    max_objects: int


def _varint_header(f: IO[bytes]) -> tuple[int, int]:
    first = f.read(1)
    if not first:
        raise PackError("The pack is truncated")
    c = first[0]
    type_num, size, shift = (c >> 4) & 7, c & 15, 4
    while c & 0x80:
        nxt = f.read(1)
        if not nxt or shift > 63:
            raise PackError("The pack has a malformed object header")
        c = nxt[0]
        size |= (c & 0x7F) << shift
        shift += 7
    return type_num, size


def _delta_sizes(head: bytes) -> tuple[int, int]:
    """The base and result sizes a delta starts with (two little-endian base-128 numbers)."""
    values, value, shift = [], 0, 0
    for c in head:
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            values.append(value)
            value, shift = 0, 0
            if len(values) == 2:
                return values[0], values[1]
        elif shift > 63:
            break
    raise PackError("The pack has a malformed delta")


def check_pack_bounds(f: IO[bytes], bounds: PackBounds) -> None:
    """Walk the pack's object headers and inflate each object into nothing, before anything
    is parsed for real: an object (or a delta's result) over ``max_object``, more than
    ``max_total`` inflated bytes in all (a zip bomb), or a stream that is not a pack is refused
    here, having cost no memory. dulwich then parses the pack knowing every size is bounded."""
    start = f.tell()
    header = f.read(12)
    if len(header) != 12 or header[:4] != b"PACK":
        raise PackError("The data sent is not a git pack")
    version, count = struct.unpack(">II", header[4:])
    if version not in (2, 3):
        raise PackError(f"Pack version {version} is not supported")
    if count > bounds.max_objects:
        raise PackError(f"A push may hold at most {bounds.max_objects} objects (this one has {count})")
    total = 0
    for _ in range(count):
        type_num, size = _varint_header(f)
        if type_num == OFS_DELTA:
            while True:
                b = f.read(1)
                if not b:
                    raise PackError("The pack is truncated")
                if not b[0] & 0x80:
                    break
        elif type_num == REF_DELTA:
            if len(f.read(20)) != 20:
                raise PackError("The pack is truncated")
        elif type_num not in (1, 2, 3, 4):
            raise PackError(f"The pack holds an object of unknown type {type_num}")
        if size > bounds.max_object:
            raise PackError(_too_large(size, bounds))
        inflater = zlib.decompressobj()
        produced, head = 0, b""
        while not inflater.eof:
            piece = f.read(64 * 1024)
            if not piece:
                raise PackError("The pack is truncated")
            data = piece
            while data and not inflater.eof:
                try:
                    out = inflater.decompress(data, 256 * 1024)
                except zlib.error as exc:
                    raise PackError(f"The pack is corrupt: {exc}") from exc
                produced += len(out)
                if produced > size:
                    raise PackError("An object in the pack inflates past its declared size")
                if len(head) < 32:
                    head += out[: 32 - len(head)]
                data = inflater.unconsumed_tail
            if inflater.eof:
                f.seek(-len(inflater.unused_data), 1)
        if produced != size:
            raise PackError("An object in the pack does not match its declared size")
        result = size
        if type_num in (OFS_DELTA, REF_DELTA):
            _base, result = _delta_sizes(head)
            if result > bounds.max_object:
                raise PackError(_too_large(result, bounds))
        total += result
        if total > bounds.max_total:
            raise PackError(f"The pack inflates to more than {bounds.max_total} bytes")
    if len(f.read(20)) != 20:
        raise PackError("The pack is truncated (no checksum)")
    if f.read(1):
        raise PackError("Data follows the pack")
    f.seek(start)


def _too_large(size: int, bounds: PackBounds) -> str:
    return (f"An object of {size} bytes is over the {bounds.max_object}-byte limit for git objects: "
            "track large files with git-lfs (git lfs track) and push again")


def iter_pack(f: IO[bytes], resolve: Callable[[str], tuple[int, bytes]]) -> Iterator[ShaFile]:
    """Every object of a pack (deltas resolved, thin-pack bases through ``resolve``, which raises
    KeyError for an object the repo does not hold), after its checksum is verified."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    data = PackData.from_file(f, DEFAULT_OBJECT_FORMAT, size)
    try:
        data.check()
    except (ChecksumMismatch, FileFormatException, zlib.error, ValueError) as exc:
        raise PackError(f"The pack is corrupt: {exc}") from exc

    def ext(sha: bytes) -> tuple[int, list[bytes]]:
        t, body = resolve(sha_to_hex(RawObjectID(sha)).decode() if len(sha) == 20 else sha.decode())
        return t, [body]

    try:
        yield from PackInflater.for_pack_data(data, ext)
    except KeyError as exc:
        raise PackError("The pack refers to a base object this repository does not hold "
                        "(a thin pack without its base)") from exc
    except UnresolvedDeltas as exc:
        raise PackError("The pack holds deltas whose base is neither in it nor in this repository") from exc
    except (zlib.error, ValueError, ApplyDeltaError, ChecksumMismatch, FileFormatException) as exc:
        raise PackError(f"The pack is corrupt: {exc}") from exc


# -- whole-repository packs (the clone cache) -------------------------------------------------------


@dataclass(frozen=True)
class CloneRequest:
    """A fetch that asks for tips and has nothing: a fresh clone."""

    wants: frozenset[str]
    capabilities: frozenset[bytes]


def clone_request(body: IO[bytes]) -> CloneRequest | None:
    """The body's request if it is exactly a fresh clone (``want`` lines, a flush, ``done``; no
    ``have``, ``shallow``, ``deepen`` or ``filter``), else None. The body is rewound either way."""
    proto = Protocol(body.read, _no_output)
    try:
        first = proto.read_pkt_line()
        if first is None or not first.startswith(b"want "):
            return None
        head, caps = extract_want_line_capabilities(first)
        wants = [head.split(b" ")[1].strip()]
        while (line := proto.read_pkt_line()) is not None:
            if not line.startswith(b"want "):
                return None
            wants.append(line.split(b" ")[1].strip())
        if proto.read_pkt_line() != b"done\n" or body.read(1):
            return None
    except (GitProtocolError, ValueError, IndexError):
        return None
    finally:
        body.seek(0)
    if not all(len(w) == 40 for w in wants):
        return None
    return CloneRequest(frozenset(w.decode("ascii") for w in wants), frozenset(caps))


def _no_output(data: bytes) -> None:
    raise GitProtocolError("nothing is written while a request is read")


def send_pack(pieces: Iterable[bytes], write: Callable[[bytes], None]) -> None:
    """Answer a fresh clone (``multi_ack_detailed``, ``side-band-64k``, ``done``, no haves) with a
    stored pack: ``NAK``, then the pack's bytes on the data band, then a flush."""
    out = ChunkedWriter(write, size=256 * 1024)
    proto = Protocol(_no_input, out.write)
    proto.write_pkt_line(b"NAK\n")
    for piece in pieces:
        proto.write_sideband(SIDE_BAND_CHANNEL_DATA, piece)
    proto.write_pkt_line(None)
    out.flush()


def write_whole_pack(repo: ServedRepo, out: IO[bytes]) -> int:
    """Every object reachable from the repo's refs as one pack (objects whole), into ``out``;
    how many objects."""
    wants = sorted({sha for ref, sha in repo.get_refs().items() if ref != HEAD})
    found = MissingObjectFinder(repo.object_store, haves=[], wants=wants)
    object_ids = list(_Planned(found, repo.store))
    write_pack_from_container(out.write, repo.object_store, object_ids, object_format=DEFAULT_OBJECT_FORMAT,
                              compression_level=1)
    return len(object_ids)


def deltify_with_git(git: str, pack: Path, refs: dict[str, str], work: Path) -> Path:
    """The same objects as ``pack``, delta-compressed by git's own ``pack-objects`` (what
    ``git daemon`` would send), in a scratch repository under ``work``; the new pack's path."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "GIT_CONFIG_NOSYSTEM": "1"}
    bare = work / "repo.git"

    def run(*args: str, stdin: IO[bytes] | None = None) -> None:
        done = subprocess.run([git, *args], cwd=bare if bare.exists() else work, env=env, stdin=stdin,
                              capture_output=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"git {args[0]} failed: {done.stderr.decode('utf-8', 'replace')[-500:]}")

    run("init", "-q", "--bare", str(bare))
    with open(pack, "rb") as f:
        run("index-pack", "--stdin", stdin=f)
    (bare / "packed-refs").write_text("".join(f"{sha} {ref}\n" for ref, sha in sorted(refs.items())))
    run("repack", "-q", "-a", "-d", "-f", "--window=10", "--depth=50")
    packs = list((bare / "objects" / "pack").glob("*.pack"))
    if len(packs) != 1:
        raise RuntimeError(f"git repack left {len(packs)} packs")
    return packs[0]
