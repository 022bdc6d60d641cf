"""The bundle file of ``services/bundles.py``: its manifest, and writing and reading it.

One uncompressed tar file (packs and LFS objects stream through; a xorb or shard is at most 64 MiB):

- ``git/<type>/<namespace>/<name>.pack``: a git pack of every object the repo's refs reach;
- ``lfs/<sha256>``: an LFS object;
- ``xorbs/<hash>``: a xorb (footer-less chunks, named by their merkle hash);
- ``shards/<xet hash>``: the upload shard of one Xet file;
- ``manifest.json``, last: format and version, the source hub, each repo (visibility, refs, its
  large files) and the sha256 of every other member. A reader refuses a member that is missing,
  extra or changed (``Bundle.verify``) before anything is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from modelyard.errors import InvalidInputError
from modelyard.ids import HOSTED_REPO_TYPES, is_commit_id, validate_account_name, validate_name, validate_ref_component
from modelyard.xet.shard import MAX_SHARD_BYTES
from modelyard.xet.xorb import MAX_XORB_BODY

FORMAT = "modelyard-bundle"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST = 256 * 1024 * 1024
#: Bytes moved at once between the store, the tar file and the hashes.
PIECE = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


class BundleError(InvalidInputError):
    """A bundle that cannot be written, or that this hub refuses to import."""


def pack_member(repo_type: str, namespace: str, name: str) -> str:
    return f"git/{repo_type}/{namespace}/{name}.pack"


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
        return pack_member(self.type, self.namespace, self.name)

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


# -- what the receiving hub holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the receiving hub holds already (``modelyard bundle have``)."""

    xorbs: frozenset[str] = frozenset()
    lfs: frozenset[str] = frozenset()


def read_have(path: Path) -> Held:
    """The file ``modelyard bundle have`` wrote: ``{"xorbs": [names], "lfs": [sha256s]}``."""
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


# -- writing --------------------------------------------------------------------------------------


class BundleWriter:
    """A bundle being written into ``f``: each member hashed as it streams through (``files``:
    their sha256), counted and hashed whole on the way to disk; the manifest last (``finish``)."""

    def __init__(self, f: IO[bytes], created: datetime) -> None:
        self.created = created
        self.sink = _HashingFile(f)
        # Closed by ``finish``; after a failure the caller drops the whole file.
        self.tar = tarfile.open(fileobj=self.sink, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]  # noqa: SIM115
                                copybufsize=PIECE)
        self.mtime = int(created.timestamp())
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

    def finish(self, source: str, entries: list[Entry]) -> tuple[int, str]:
        """Write the manifest and close the archive; the file's size and sha256."""
        manifest = {"format": FORMAT, "version": VERSION, "source": source, "created": self.created.isoformat(),
                    "repos": [e.as_json() for e in entries], "files": self.files}
        self.add_bytes(MANIFEST, json.dumps(manifest, indent=1).encode(), listed=False)
        self.tar.close()
        return self.sink.size, self.sink.sha.hexdigest()


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


def write_atomically(out: Path, write: Callable[[IO[bytes]], object]) -> None:
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


# -- reading --------------------------------------------------------------------------------------


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
        for problem, names in (("does not list the needed member", required - listed),
                               ("lists a member no repo uses:", listed - required - optional),
                               ("lists a member the file lacks:", listed - set(self.members)),
                               ("does not list the member", set(self.members) - listed)):
            if names:
                raise BundleError(f"{self.path}: the manifest {problem} {sorted(names)[0]}: nothing was imported")
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
