"""Air-gapped bundles: ``modelyard bundle export | have | import``.

A bundle carries repos to a hub with no network path to this one, as ONE uncompressed tar file:

- ``git/<type>/<namespace>/<name>.pack``: every git object the repo's refs reach, as one pack;
- ``lfs/<sha256>``: each large file the history points at that the repo holds as an LFS object;
- ``xorbs/<hash>`` and ``shards/<xet hash>``: each large file held through Xet, as the xorbs of
  its terms and one shard. Dedup is global, so a stored xorb may hold chunks of other repos'
  files too: each term's chunk range is cut out of its stored xorb (a run of whole chunks is a
  valid xorb of its own, named by its merkle hash), and nothing of any other file leaves the hub;
- ``manifest.json``, last: the repos (visibility, refs, large files) and the sha256 of every other
  member, so a changed, missing or extra member is refused.

Export covers the whole history (every commit the refs reach, and every large file of each):
the receiving hub cannot fetch anything later. ``have`` (made by the receiving hub) names xorbs
and LFS objects it holds already, which the bundle then leaves out.

Import checks the whole bundle before it stores anything (format and version; each member
present, listed and hashing to its manifest entry; what ``have`` left out held here), then stores
what it carries as uploads are stored, verified again on the way (git objects by their ids,
xorbs by their merkle hash, each file's sha256 read back), and publishes each repo's refs in one
transaction once every file they reach is stored. A new repo is private until that transaction
makes it what the source hub had. Imported repos are read-only like mirrors (``repos.upstream``
is ``bundle:<source hub>``); importing the same bundle again changes nothing. No network is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from dulwich.objects import Tree

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import redirects as redirects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.repos import Repo
from modelyard.catalog.xet import StoredFile
from modelyard.errors import ConflictError, InvalidInputError, NotFoundError, RepoNotFoundError
from modelyard.ids import (
    HOSTED_REPO_TYPES,
    Oid,
    is_commit_id,
    validate_account_name,
    validate_name,
    validate_ref_component,
)
from modelyard.services.audit import record, repo_subject
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.git import ingest_pack, whole_pack
from modelyard.services.grants import Grant
from modelyard.services.hub import Hub, utcnow
from modelyard.services.lfs import finish_upload
from modelyard.services.xet import indexes_for, upload_shard, upload_xorb, xorb_key
from modelyard.storage.base import lfs_key
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE
from modelyard.versioning.wire import PackBounds, PackError
from modelyard.xet.hashing import hash_to_str, merkle_root, str_to_hash, verification_hash
from modelyard.xet.reconstruction import unpack_terms
from modelyard.xet.shard import MAX_SHARD_BYTES, FileRecord, Term, build_upload_shard
from modelyard.xet.xorb import MAX_XORB_BODY, XorbFormatError, parse_xorb

log = logging.getLogger("modelyard.bundles")

FORMAT = "modelyard-bundle"
VERSION = 1
MANIFEST = "manifest.json"
#: What ``repos.upstream`` of an imported repo starts with (then the source hub's URL).
UPSTREAM_PREFIX = "bundle:"
MAX_MANIFEST = 256 * 1024 * 1024
#: Bytes moved at once between the store, the tar file and the hashes.
PIECE = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


class BundleError(InvalidInputError):
    """A bundle that cannot be written, or that this hub refuses to import."""


@dataclass
class Report:
    """What an export wrote or an import stored (an import counts only what was new here)."""

    repos: int = 0
    commits: int = 0
    lfs_objects: int = 0
    xorbs: int = 0
    bytes: int = 0
    refs_moved: int = 0  # import: refs created, moved or deleted
    sha256: str = ""  # export: the bundle file's, to compare on the other side


# -- the manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class XetFile:
    """A large file held through Xet: its bytes' sha256 and size, its Xet hash, and the xorbs
    (in term order) that the bundle's shard for it names."""

    sha256: str
    size: int
    xet_hash: str
    xorbs: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One repo of a bundle, as its manifest describes it."""

    type: str
    namespace: str
    name: str
    private: bool
    gated: str | None
    refs: dict[str, str]
    lfs: dict[str, int]  # sha256 -> size
    xet: tuple[XetFile, ...]
    purged: dict[str, int]  # large files the source repo's owner permanently deleted

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.type} {self.repo_id}"

    @property
    def pack(self) -> str:
        return f"git/{self.type}/{self.namespace}/{self.name}.pack"

    def members(self) -> tuple[set[str], set[str]]:
        """The members this repo needs: always there (its pack, its shards), and those a
        ``have`` may have left out (xorbs, LFS objects)."""
        required = {self.pack} | {f"shards/{x.xet_hash}" for x in self.xet}
        optional = {f"xorbs/{n}" for x in self.xet for n in x.xorbs} | {f"lfs/{sha}" for sha in self.lfs}
        return required, optional

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type, "id": self.repo_id, "private": self.private, "gated": self.gated,
            "refs": self.refs, "lfs": _sized_json(self.lfs), "purged": _sized_json(self.purged),
            "xet": [{"sha256": x.sha256, "size": x.size, "xetHash": x.xet_hash, "xorbs": list(x.xorbs)}
                    for x in self.xet],
        }


def _sized_json(files: dict[str, int]) -> list[dict[str, Any]]:
    return [{"sha256": sha, "size": size} for sha, size in sorted(files.items())]


@dataclass(frozen=True)
class Manifest:
    source: str
    created: str
    entries: tuple[Entry, ...]
    files: dict[str, str]  # member name -> sha256


def _get(doc: Any, key: str, kind: type, where: str) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"manifest.json: {where}.{key} must be a {kind.__name__}")
    return value


def _hex64(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise BundleError(f"manifest.json: {where} must be 64 lowercase hex digits")
    return value


def _sized(doc: Any, key: str, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, item in enumerate(_get(doc, key, list, where)):
        size = _get(item, "size", int, f"{where}.{key}[{i}]")
        if size < 0:
            raise BundleError(f"manifest.json: {where}.{key}[{i}].size is negative")
        out[_hex64(item.get("sha256"), f"{where}.{key}[{i}].sha256")] = size
    return out


def _parse_entry(doc: Any, where: str) -> Entry:
    repo_type = _get(doc, "type", str, where)
    if repo_type not in HOSTED_REPO_TYPES:
        raise BundleError(f"manifest.json: {where}.type {repo_type!r} is not model, dataset or space")
    repo_id = _get(doc, "id", str, where)
    try:
        namespace, name = repo_id.split("/")
        validate_account_name(namespace, "namespace")
        validate_name(name)
    except (ValueError, InvalidInputError) as exc:
        raise BundleError(f"manifest.json: {where}.id {repo_id!r} is not a repo id") from exc
    gated = doc.get("gated")
    if gated not in (None, "auto", "manual"):
        raise BundleError(f"manifest.json: {where}.gated must be null, 'auto' or 'manual'")
    refs = _get(doc, "refs", dict, where)
    if not refs:
        raise BundleError(f"manifest.json: {where} has no refs")
    for ref, target in refs.items():
        try:
            if not ref.startswith("refs/"):
                raise InvalidInputError(ref)
            validate_ref_component(ref[len("refs/"):], "ref")
        except InvalidInputError as exc:
            raise BundleError(f"manifest.json: {where}.refs: {ref!r} is not a ref name") from exc
        if not isinstance(target, str) or not is_commit_id(target):
            raise BundleError(f"manifest.json: {where}.refs[{ref!r}] must be a commit id")
    xet = []
    for i, item in enumerate(_get(doc, "xet", list, where)):
        at = f"{where}.xet[{i}]"
        xorbs = tuple(_hex64(n, f"{at}.xorbs") for n in _get(item, "xorbs", list, at))
        size = _get(item, "size", int, at)
        if not xorbs or size <= 0:
            raise BundleError(f"manifest.json: {at} names no xorb, or no bytes")
        xet.append(XetFile(_hex64(item.get("sha256"), f"{at}.sha256"), size,
                           _hex64(item.get("xetHash"), f"{at}.xetHash"), xorbs))
    return Entry(repo_type, namespace, name, _get(doc, "private", bool, where), gated, dict(refs),
                 _sized(doc, "lfs", where), tuple(xet), _sized(doc, "purged", where))


def parse_manifest(data: bytes) -> Manifest:
    """The manifest, checked whole: its format and version, then every field."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"manifest.json is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError("This is not a modelyard bundle (manifest.json names another format)")
    if doc.get("version") != VERSION:
        raise BundleError(f"This bundle is format version {doc.get('version')!r}; this hub reads version "
                          f"{VERSION} only (it was written by another release of modelyard)")
    entries = tuple(_parse_entry(item, f"repos[{i}]") for i, item in enumerate(_get(doc, "repos", list, "")))
    if not entries:
        raise BundleError("manifest.json: the bundle holds no repo")
    if len({(e.type, e.repo_id.lower()) for e in entries}) != len(entries):
        raise BundleError("manifest.json: a repo is named twice")
    files = _get(doc, "files", dict, "")
    for name, digest in files.items():
        _hex64(digest, f"files[{name!r}]")
    return Manifest(_get(doc, "source", str, ""), _get(doc, "created", str, ""), entries, dict(files))


# -- what a repo's refs reach ----------------------------------------------------------------------


def history(hub: Hub, targets: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """Every commit ``targets`` reach, and every large file their trees point at (sha256 -> size),
    trees read a level at a time; KeyError names an object this hub does not hold."""
    commits = ancestors(hub.objects, [Oid(t) for t in targets])
    level: set[str] = {c.tree for c in commits}
    seen: set[str] = set()
    blobs: set[str] = set()
    while level:
        seen |= level
        hub.objects.prefetch([Oid(t) for t in sorted(level)])
        below: set[str] = set()
        for oid in level:
            for entry in cast(Tree, hub.objects.get(Oid(oid))).items():
                (below if entry.mode == DIR_MODE else blobs).add(entry.sha.decode())
        level = below - seen
    metas = hub.objects.meta([Oid(b) for b in sorted(blobs)])
    if len(metas) != len(blobs):
        raise KeyError(min(blobs - set(metas)))
    return [c.oid for c in commits], {sha: size for _n, sha, size in metas.values() if sha and size is not None}


# -- export -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the receiving hub holds already (``modelyard bundle have``)."""

    xorbs: frozenset[str] = frozenset()
    lfs: frozenset[str] = frozenset()


def have(hub: Hub) -> dict[str, list[str]]:
    """Every xorb and LFS object this hub stores, for another hub's ``bundle export --have``."""
    with hub.db.read() as conn:
        return {"xorbs": xet_q.all_xorb_hashes(conn), "lfs": sorted(sha for sha, _size in lfs_q.all_objects(conn))}


def write_have(hub: Hub, out: Path) -> Held:
    """Write ``have`` to ``out`` as JSON (a tmp file, then renamed)."""
    found = have(hub)
    _write_atomically(out, lambda f: f.write(json.dumps(found).encode()))
    return Held(frozenset(found["xorbs"]), frozenset(found["lfs"]))


def read_have(path: Path) -> Held:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise BundleError(f"Cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BundleError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BundleError(f"{path} is not what `modelyard bundle have` writes")
    names = {key: doc.get(key, []) for key in ("xorbs", "lfs")}
    for key, values in names.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and _HEX64.match(v) for v in values):
            raise BundleError(f"{path}: {key!r} must be a list of 64-hex-digit names")
    return Held(frozenset(names["xorbs"]), frozenset(names["lfs"]))


def export(hub: Hub, repos: list[tuple[str, str]], out: Path, have: Path | None = None) -> Report:
    """Write the bundle of ``repos`` (``(repo_type, repo_id)``) to ``out`` (through ``out.tmp``,
    renamed once whole); what ``have`` lists is left out."""
    held = read_have(have) if have is not None else Held()
    if len({(t, r.lower()) for t, r in repos}) != len(repos):
        raise BundleError("A repo is named twice")
    sources = [_source(hub, repo_type, repo_id) for repo_type, repo_id in repos]
    report = Report(repos=len(sources))
    created = datetime.now(UTC)

    def write(f: IO[bytes]) -> None:
        sink = _HashingFile(f)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, copybufsize=PIECE) as tar:  # type: ignore[call-overload]
            members = _Members(tar, created.timestamp())
            entries = [_export_repo(hub, members, repo, refs, held, out.parent, report) for repo, refs in sources]
            manifest = {"format": FORMAT, "version": VERSION, "source": hub.settings.public_url or "",
                        "created": created.isoformat(), "repos": [e.as_json() for e in entries],
                        "files": members.files}
            members.add_bytes(MANIFEST, json.dumps(manifest, indent=1).encode(), listed=False)
        report.bytes, report.sha256 = sink.size, sink.sha.hexdigest()

    _write_atomically(out, write)
    return report


def _source(hub: Hub, repo_type: str, repo_id: str) -> tuple[Repo, dict[str, str]]:
    if repo_type not in HOSTED_REPO_TYPES:
        raise BundleError(f"Repos of type {repo_type!r} are not exported (model, dataset or space)")
    parts = repo_id.split("/")
    with hub.db.read() as conn:
        repo = repos_q.get(conn, repo_type, parts[0], parts[1]) if len(parts) == 2 else None
        refs = refs_q.all_refs(conn, repo.id) if repo is not None else {}
    if repo is None:
        raise RepoNotFoundError(f"There is no {repo_type} {repo_id} on this hub")
    if not refs:
        raise BundleError(f"{repo_type} {repo_id} has no branch or tag: nothing to export")
    return repo, refs


def _export_repo(hub: Hub, members: _Members, repo: Repo, refs: dict[str, str], held: Held, scratch: Path,
                 report: Report) -> Entry:
    label = f"{repo.type} {repo.repo_id}"
    commits, pointers = history(hub, refs.values())
    with hub.db.read() as conn:
        xet = {f.sha256: f for f in xet_q.repo_files(conn, repo.id) if f.sha256 in pointers}
        lfs = {sha: size for sha, size in lfs_q.repo_objects(conn, repo.id) if sha in pointers and sha not in xet}
        purged = lfs_files_q.purged(conn, repo.id, [s for s in pointers if s not in xet and s not in lfs])
    missing = sorted(set(pointers) - set(xet) - set(lfs) - purged)
    if missing:
        raise BundleError(f"{label}: {len(missing)} large file(s) of its history are not held here (for "
                          f"example {missing[0]}): a mirror's files not fetched yet? Fetch them, then export")
    with tempfile.TemporaryFile(prefix="modelyard-bundle-", dir=scratch) as pack:
        whole_pack(hub, repo, refs, pack)
        size = pack.tell()
        pack.seek(0)
        entry = Entry(repo.type, repo.namespace, repo.name, repo.private, repo.gated, dict(sorted(refs.items())),
                      lfs, tuple(_export_xet_file(hub, members, xet[sha], held, report) for sha in sorted(xet)),
                      {sha: pointers[sha] for sha in sorted(purged)})
        members.add(entry.pack, size, iter(lambda: pack.read(PIECE), b""))
    report.commits += len(commits)
    for sha, size in sorted(lfs.items()):
        if sha not in held.lfs and f"lfs/{sha}" not in members.files:
            members.add(f"lfs/{sha}", size, hub.blobs.read(lfs_key(sha)), expect=sha)
            report.lfs_objects += 1
    return entry


def _export_xet_file(hub: Hub, members: _Members, f: StoredFile, held: Held, report: Report) -> XetFile:
    """The file's terms, each cut out of its stored xorb as a xorb of its own, and its shard."""
    terms = unpack_terms(f.terms)
    with hub.db.read() as conn:
        indexes = indexes_for(conn, terms)
    cut, checks, names = [], [], []
    for term in terms:
        chunks = indexes[term.xorb].chunks[term.start : term.end]
        stored = hash_to_str(term.xorb)
        if not chunks or len(chunks) != term.end - term.start or sum(c.size for c in chunks) != term.size:
            raise BundleError(f"Xet file {f.hash}: a term does not match xorb {stored}: run modelyard fsck")
        raw = merkle_root([(c.hash, c.size) for c in chunks])
        name = hash_to_str(raw)
        if name not in held.xorbs and f"xorbs/{name}" not in members.files:
            body = b"".join(hub.blobs.read(xorb_key(stored), chunks[0].start, chunks[-1].end))
            try:
                parse_xorb(body, raw)  # what leaves this hub is whole: exactly those chunks, intact
            except XorbFormatError as exc:
                raise BundleError(f"Xorb {stored} is corrupt on this hub ({exc.message}): run modelyard fsck") from exc
            members.add_bytes(f"xorbs/{name}", body)
            report.xorbs += 1
        cut.append(Term(raw, 0, len(chunks), term.size))
        checks.append(verification_hash([c.hash for c in chunks]))
        if name not in names:
            names.append(name)
    if f"shards/{f.hash}" not in members.files:
        file_record = FileRecord(str_to_hash(f.hash), tuple(cut), tuple(checks), bytes.fromhex(f.sha256))
        members.add_bytes(f"shards/{f.hash}", build_upload_shard([file_record], []))
    return XetFile(f.sha256, f.size, f.hash, tuple(names))


class _Members:
    """Members written into the tar, each hashed as it streams through; ``files``: their sha256."""

    def __init__(self, tar: tarfile.TarFile, mtime: float) -> None:
        self.tar = tar
        self.mtime = int(mtime)
        self.files: dict[str, str] = {}

    def add(self, name: str, size: int, pieces: Iterable[bytes], expect: str | None = None,
            listed: bool = True) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        source = _PieceReader(iter(pieces))
        try:
            self.tar.addfile(info, source)
        except OSError as exc:  # the source ran short ("unexpected end of data"), or the disk is full
            raise BundleError(f"Writing {name} into the bundle failed: {exc}") from exc
        digest = source.sha.hexdigest()
        if source.more() or (expect is not None and digest != expect):
            raise BundleError(f"{name}: the bytes stored here are not those of {name} (changed while "
                              "exporting, or corrupt): run modelyard fsck")
        if listed:
            self.files[name] = digest

    def add_bytes(self, name: str, data: bytes, listed: bool = True) -> None:
        self.add(name, len(data), [data], listed=listed)


class _PieceReader:
    """A file-like reader over an iterator of byte pieces, hashing what is read."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._rest = b""
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        parts, held = [self._rest], len(self._rest)
        while n < 0 or held < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            parts.append(piece)
            held += len(piece)
        data = b"".join(parts)
        out, self._rest = (data, b"") if n < 0 else (data[:n], data[n:])
        self.sha.update(out)
        return out

    def more(self) -> bool:
        return bool(self._rest) or any(self._pieces)


class _HashingFile:
    """The bundle file as tarfile writes it: counted and hashed on the way to disk."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


def _write_atomically(out: Path, write: Any) -> None:
    """``write(f)`` into ``out.tmp``, synced, then renamed to ``out``; nothing is left on failure."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"Cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- reading a bundle -------------------------------------------------------------------------------


class Bundle:
    """A bundle file opened for import: its members listed and its manifest parsed."""

    def __init__(self, path: Path, tar: tarfile.TarFile) -> None:
        self.path = path
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            listing = tar.getmembers()
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"{path} is truncated or corrupt: {exc}") from exc
        for member in listing:
            if not member.isfile() or member.name in self.members:
                raise BundleError(f"{path}: member {member.name!r} is not a file, or is there twice")
            self.members[member.name] = member
        found = self.members.pop(MANIFEST, None)
        if found is None:
            raise BundleError(f"{path} holds no {MANIFEST}: it is not a bundle, or it is truncated")
        if found.size > MAX_MANIFEST:
            raise BundleError(f"{path}: {MANIFEST} is over {MAX_MANIFEST} bytes")
        self.manifest = parse_manifest(b"".join(self.pieces(found)))

    def pieces(self, member: tarfile.TarInfo | str) -> Iterator[bytes]:
        info = self.members[member] if isinstance(member, str) else member
        f = self.tar.extractfile(info)
        assert f is not None  # a regular file
        try:
            while piece := f.read(PIECE):
                yield piece
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"{self.path} is truncated or corrupt ({info.name}: {exc})") from exc

    def read(self, name: str) -> bytes:
        return b"".join(self.pieces(name))

    def verify(self) -> None:
        """Every member the repos need, no other, and each one's sha256 as the manifest says."""
        required: set[str] = set()
        optional: set[str] = set()
        for entry in self.manifest.entries:
            needs, may = entry.members()
            required |= needs
            optional |= may
        listed = set(self.manifest.files)
        for problem, names in (("names no", required - listed), ("lists unused", listed - required - optional),
                               ("lists, but the bundle lacks,", listed - set(self.members)),
                               ("does not list", set(self.members) - listed)):
            if names:
                raise BundleError(f"{self.path}: the manifest {problem} member {sorted(names)[0]}")
        for name, info in self.members.items():
            limit = {"xorbs": MAX_XORB_BODY, "shards": MAX_SHARD_BYTES}.get(name.split("/", 1)[0])
            if limit is not None and info.size > limit:
                raise BundleError(f"{self.path}: {name} is over {limit} bytes")
        for info in sorted(self.members.values(), key=lambda m: m.offset_data):  # in file order
            digest = hashlib.sha256()
            for piece in self.pieces(info):
                digest.update(piece)
            if digest.hexdigest() != self.manifest.files[info.name]:
                raise BundleError(f"{self.path}: {info.name} does not match its sha256 in the manifest "
                                  "(changed or damaged since export): nothing was imported")


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[Bundle]:
    try:
        tar = tarfile.open(path, "r:", copybufsize=PIECE)  # type: ignore[call-overload]  # noqa: SIM115
    except FileNotFoundError as exc:
        raise BundleError(f"{path} does not exist") from exc
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path} is not a bundle (an uncompressed tar file): {exc}") from exc
    with tar:
        yield Bundle(path, tar)


# -- import -----------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One repo of the bundle on its way in."""

    entry: Entry
    repo: Repo | None  # as found before the import (None: this import creates it)
    pk: int = 0
    commits: list[str] = field(default_factory=list)  # every commit the bundle's refs reach


@dataclass
class _Created:
    repos: list[int] = field(default_factory=list)
    orgs: list[int] = field(default_factory=list)


def import_(hub: Hub, path: Path, force: bool = False) -> Report:
    """Import a bundle: checked whole first, then stored, then each repo's refs published at once.
    A repo of this hub's own (not imported, not a mirror) of the same name is refused unless
    ``force`` (its refs then become the bundle's, and it becomes read-only)."""
    with open_bundle(path) as bundle:
        bundle.verify()  # nothing is stored before every member is checked
        plans = [_plan(hub, bundle, entry, force) for entry in bundle.manifest.entries]
        report = Report(repos=len(plans))
        created = _Created()
        try:
            for plan in plans:
                _ingest_git(hub, bundle, plan, report)
            for plan in plans:
                _make_row(hub, plan, bundle.manifest.source, created)
            for plan in plans:
                _store_files(hub, bundle, plan, report)
            events = _publish(hub, plans, bundle.manifest.source, report)
        except BaseException:
            _drop(hub, created)
            raise
    for event in events:
        record_and_enqueue(hub, event)
    log.info("imported %s: %s", path, report)
    return report


def _plan(hub: Hub, bundle: Bundle, entry: Entry, force: bool) -> _Plan:
    """Check one repo against this hub before anything is stored."""
    with hub.db.read() as conn:
        repo = repos_q.get(conn, entry.type, entry.namespace, entry.name)
        wanted = {n for x in entry.xet for n in x.xorbs if f"xorbs/{n}" not in bundle.members}
        xorbs = xet_q.xorbs(conn, wanted)
        left_out = {sha: size for sha, size in entry.lfs.items() if f"lfs/{sha}" not in bundle.members}
        objects = lfs_q.sizes(conn, left_out)
    if repo is not None and repo.upstream is None and not force:
        raise ConflictError(f"{entry.label} is a repo of this hub's own: import with --force to replace its "
                            "branches and tags with the bundle's (it then becomes read-only)")
    absent = sorted(f"xorb {n}" for n in wanted - set(xorbs)) + sorted(
        f"LFS object {sha}" for sha, size in left_out.items()
        if objects.get(sha) != size or hub.blobs.size(lfs_key(sha)) != size)
    if absent:
        raise BundleError(f"{entry.label}: {absent[0]} is neither in the bundle nor on this hub (was the bundle "
                          "made with `--have` from another hub?): nothing was imported")
    return _Plan(entry, repo)


def _bounds(hub: Hub) -> PackBounds:
    s = hub.settings
    return PackBounds(max(s.git_max_object_size, s.max_regular_file_size), s.git_max_push_inflated,
                      s.git_max_push_objects)


def _ingest_git(hub: Hub, bundle: Bundle, plan: _Plan, report: Report) -> None:
    """Store the repo's pack (objects no repo sees until ``_publish``) and check that it holds the
    whole history of the refs, and that every large file of it is in the bundle."""
    entry = plan.entry
    targets = sorted(set(entry.refs.values()))
    held: set[str] = set()
    tips: list[str] = []
    if plan.repo is not None:
        with hub.db.read() as conn:
            held = objects_q.repo_commits_among(conn, plan.repo.id, targets)
            tips = sorted(set(refs_q.all_refs(conn, plan.repo.id).values()))
    if held != set(targets):  # else the repo has these commits and their history already
        if bundle.members[entry.pack].size > hub.settings.git_max_push_size:
            raise BundleError(f"{entry.label}: its pack is over MODELYARD_GIT_MAX_PUSH_SIZE")
        with tempfile.TemporaryFile(prefix="modelyard-bundle-") as spool:
            for piece in bundle.pieces(entry.pack):
                spool.write(piece)
            report.bytes += spool.tell()
            spool.seek(0)
            try:
                ingest_pack(hub, tips, spool, _bounds(hub))
            except PackError as exc:
                raise BundleError(f"{entry.label}: its pack is refused: {exc.args[0]}") from exc
    try:
        commits, pointers = history(hub, targets)
    except KeyError as exc:
        raise BundleError(f"{entry.label}: its pack lacks object {exc.args[0]} that its refs reach") from exc
    carried = {**entry.lfs, **entry.purged, **{x.sha256: x.size for x in entry.xet}}
    for sha, size in sorted(pointers.items()):
        if carried.get(sha) != size:
            raise BundleError(f"{entry.label}: its history points at large file {sha} ({size} bytes), which "
                              "the bundle does not carry")
    plan.commits = sorted(commits)
    if plan.repo is not None:
        with hub.db.read() as conn:
            report.commits += len(commits) - len(objects_q.repo_commits_among(conn, plan.repo.id, plan.commits))
    else:
        report.commits += len(commits)


def _make_row(hub: Hub, plan: _Plan, source: str, created: _Created) -> None:
    """The repo's row, for its files to be stored against: private and without refs until
    ``_publish``, so nobody sees it half-imported."""
    entry = plan.entry
    if plan.repo is not None:
        plan.pk = plan.repo.id
        return
    now = utcnow()
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, entry.namespace)
        if owner is None:  # the source's namespace, as an org of this hub with no members
            owner = accounts_q.create(conn, name=entry.namespace, kind="org", fullname=entry.namespace, email=None,
                                      is_admin=False, default_private=False, now=now)
            created.orgs.append(owner.id)
        accounts_q.lock_namespace(conn, owner.id)
        if repos_q.get(conn, entry.type, owner.name, entry.name) is not None:
            raise ConflictError(f"{entry.label} was created on this hub during the import: import again")
        plan.pk = repos_q.create(conn, repo_type=entry.type, namespace=owner.name, name=entry.name,
                                 owner_id=owner.id, private=True, now=now, created_seq=search_q.next_seq(conn),
                                 upstream=UPSTREAM_PREFIX + source)
        redirects_q.remove_name(conn, entry.type, owner.name, entry.name)
    created.repos.append(plan.pk)


def _store_files(hub: Hub, bundle: Bundle, plan: _Plan, report: Report) -> None:
    """The repo's large files, each verified as an upload is: Xet files' xorbs (merkle hash) then
    shard (each file's sha256 read back), LFS objects (sha256 while streaming)."""
    entry = plan.entry
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, plan.pk)
        have_xet = xet_q.repo_files_by_sha256(conn, plan.pk, [x.sha256 for x in entry.xet])
        have_lfs = dict(lfs_q.repo_objects(conn, plan.pk))
        stored_lfs = lfs_q.sizes(conn, entry.lfs)
    if repo is None:
        raise NotFoundError(f"{entry.label} was deleted during the import")
    for x in entry.xet:
        if have_xet.get(x.sha256) == (x.xet_hash, x.size):
            continue
        with hub.db.read() as conn:
            stored = set(xet_q.xorbs(conn, x.xorbs))
        for name in x.xorbs:  # in term order: the shard's sha256 check then reads nothing back
            member = f"xorbs/{name}"
            if name not in stored and member in bundle.members:
                body = bundle.read(member)
                if upload_xorb(hub, plan.pk, "default", name, body):
                    report.xorbs += 1
                    report.bytes += len(body)
        upload_shard(hub, Grant(repo, None), bundle.read(f"shards/{x.xet_hash}"))
        with hub.db.read() as conn:
            landed = xet_q.repo_files_by_sha256(conn, plan.pk, [x.sha256]).get(x.sha256)
        if landed != (x.xet_hash, x.size):
            raise BundleError(f"{entry.label}: the shard of Xet file {x.xet_hash} describes another file")
    for sha, size in sorted(entry.lfs.items()):
        if have_lfs.get(sha) == size:
            continue
        if stored_lfs.get(sha) == size and hub.blobs.size(lfs_key(sha)) == size:
            with hub.db.write() as conn:  # this hub holds the object already (another repo's, or `--have`)
                repos_q.add_lfs_object(hub.db, conn, plan.pk, sha, size, utcnow())
            continue
        writer = hub.blobs.writer()
        try:
            for piece in bundle.pieces(f"lfs/{sha}"):
                writer.write(piece)
        except BaseException:
            writer.abort()
            raise
        finish_upload(hub, writer, plan.pk, sha, size)  # checks the sha256 and size
        report.lfs_objects += 1
        report.bytes += size


def _publish(hub: Hub, plans: list[_Plan], source: str, report: Report) -> list[int]:
    """Every repo's commits and refs (each ref by compare-and-swap, to the bundle's), in one
    transaction; a new repo takes the source's visibility. The events to queue after it."""
    now = utcnow()
    events: list[int] = []
    with hub.db.write() as conn:
        for plan in plans:
            entry = plan.entry
            refs_q.lock(conn, plan.pk)
            repo = repos_q.get_by_id(conn, plan.pk)
            if repo is None:
                raise NotFoundError(f"{entry.label} was deleted during the import")
            for oid in plan.commits:
                objects_q.add_repo_commit(hub.db, conn, plan.pk, oid, now)
            current = refs_q.all_refs(conn, plan.pk)
            changes = {ref: (current.get(ref), entry.refs.get(ref)) for ref in sorted(set(current) | set(entry.refs))
                       if current.get(ref) != entry.refs.get(ref)}
            for ref, (old, new) in changes.items():
                if not refs_q.compare_and_swap(conn, plan.pk, ref, old, new):
                    raise ConflictError(f"{entry.label}: {ref} moved during the import: import again")
            for sha, size in entry.purged.items():
                lfs_files_q.mark_purged(hub.db, conn, plan.pk, sha, size, now)
            report.refs_moved += len(changes)
            subject = repo_subject(entry.type, entry.repo_id)
            if plan.repo is None:
                repos_q.update_repo(conn, plan.pk, private=entry.private, gated=entry.gated)
                events.append(new_event(hub, conn, plan.pk, "repo"))
                record(conn, "repo.mirrored", repo.owner_id, None, subject,
                       {"bundle": source, "private": entry.private}, actor_name="bundle")
                continue
            if repo.upstream is None:  # forced: the bundle is its source from now on
                repos_q.update_repo(conn, plan.pk, upstream=UPSTREAM_PREFIX + source)
                record(conn, "repo.mirrored", repo.owner_id, None, subject, {"bundle": source, "forced": True},
                       actor_name="bundle")
            if "refs/heads/main" in changes:
                search_q.change_sort_keys(conn, plan.pk, last_modified=now)
            events.extend(new_event(hub, conn, plan.pk, "ref", ref, old, new) for ref, (old, new) in changes.items())
    return events


def _drop(hub: Hub, created: _Created) -> None:
    """After a failed import: the rows it created go (what was stored is unreferenced: gc's)."""
    if not created.repos and not created.orgs:
        return
    try:
        with hub.db.write() as conn:
            for pk in created.repos:
                search_q.delete_search_text(hub.db, conn, pk)
                redirects_q.remove_repo(conn, pk)
                repos_q.delete_repo(conn, pk)
            for org in created.orgs:
                accounts_q.delete_empty_org(conn, org)
    except Exception:
        log.exception("removing the repos of a failed import failed: %s", created)
