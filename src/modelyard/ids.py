"""Identifier types and their validators.

NewTypes keep a git object id, a sha256 and a ref name from being mixed up; the validators
are the single place where user-supplied names become trusted ones.
"""

from __future__ import annotations

import re
from typing import Literal, NewType

from modelyard.errors import InvalidInputError, UnsafePathError

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset", "space")
#: Repo types that this hub stores (spaces as repositories: static ones are served, no app runs).
HOSTED_REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset", "space")
PLURALS: dict[str, RepoType] = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES: dict[RepoType, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}

Oid = NewType("Oid", str)
"""A 40-hex git object id (commit, tree or blob)."""
Sha256 = NewType("Sha256", str)
"""A 64-hex sha256 digest of a file's bytes (an LFS oid)."""
RefName = NewType("RefName", str)
"""A full ref name such as ``refs/heads/main``."""

# \Z, not $: '$' also matches before a trailing newline ("abc\n" would pass).
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_HEX40 = re.compile(r"^[0-9a-f]{40}\Z")
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_SHORT_HEX = re.compile(r"^[0-9a-f]{5,40}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME_LENGTH = 96
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096
#: Folders a path may nest (deeper ones serve no one and only cost recursion).
MAX_PATH_DEPTH = 64
#: Unicode bidirectional controls: they make a name display as another (``evil\u202etxt.exe``).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Names that a checkout on Windows or macOS would treat as the ``.git`` folder: ``.GIT``,
#: ``.git.`` or ``.git `` (trailing dots and spaces are dropped), NTFS short names ``GIT~1``,
#: and HFS+ ignorable code points inside ``.git`` (git's own ``verify_path`` refuses these too).
_GIT_LOOKALIKE = re.compile(r"^(?:\.git[. ]*|git~\d+)\Z", re.IGNORECASE)
_HFS_IGNORABLE = re.compile("[\u200b-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


def validate_name(name: str, what: str = "repository name") -> str:
    """Return ``name`` if it is a valid namespace or repo name, else raise."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"Invalid {what} {name!r}: 1 to {MAX_NAME_LENGTH} characters")
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"Invalid {what} {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if "--" in name or ".." in name or name.endswith((".", "-")) or name.endswith(".git"):
        raise InvalidInputError(
            f"Invalid {what} {name!r}: '--' and '..' are forbidden, and it cannot end "
            "with '.', '-' or '.git'"
        )
    return name


#: First path segments of the hub's own (the API's and the pages'): no account may take one.
HUB_PATHS = frozenset({"api", "avatars", "uploads", "spaces", "static", "models", "datasets", "collections",
                       "settings", "organizations", "login", "logout", "join", "leaderboard", "new",
                       "healthz", "readyz", "metrics"})


def validate_account_name(name: str, what: str) -> str:
    """A valid user or organization name that is not one of the hub's own paths."""
    validate_name(name, what)
    if name.lower() in HUB_PATHS:
        raise InvalidInputError(f"Invalid {what} {name!r}: the hub uses that name itself")
    return name


def is_commit_id(value: str) -> bool:
    return bool(_HEX40.match(value))


def is_short_hex(value: str) -> bool:
    return bool(_SHORT_HEX.match(value))


def validate_sha256(value: object) -> Sha256:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise InvalidInputError(f"Invalid sha256 oid {value!r}: expected 64 lowercase hex digits")
    return Sha256(value)


def validate_ref_component(name: str, what: str = "branch") -> str:
    """Validate a branch or tag name by git's ``check-ref-format`` rules (and the Hub's)."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from a JSON body
        raise InvalidInputError(f"Invalid {what} name {name!r}: not valid UTF-8") from exc
    bad = (
        not name
        or len(encoded) > MAX_SEGMENT_BYTES
        or _CONTROL.search(name) is not None
        or any(c in name for c in " ~^:?*[\\")
        or ".." in name
        or "@{" in name
        or name == "@"
        or name.startswith("/")
        or name.endswith("/")
        or name.endswith(".")
        or "//" in name
        or name.startswith("-")
        or name.startswith("refs/")
        or any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
        or bool(_HEX40.match(name))
    )
    if bad:
        raise InvalidInputError(f"Invalid {what} name {name!r}")
    return name


def validate_path(path: object) -> str:
    """Return a repo-relative file path if it is safe to store, else raise.

    A path that is not one plain relative name per folder raises ``UnsafePathError`` (422, as
    the Hub refuses them): a leading '/', an empty, '.' or '..' segment, a '.git' component or
    anything a platform reads as one (``.GIT``, ``git~1``, ...), a control character (NUL
    included), a backslash or a drive letter, a bidirectional control. A clone of the repo, or
    a tool reading the tree, would write outside the folder or into ``.git``. Paths that are only
    too long, too deep or not UTF-8 raise ``InvalidInputError`` (400).
    """
    if not isinstance(path, str) or not path:
        raise InvalidInputError("Invalid path: a non-empty string is required")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidInputError(f"Invalid path: longer than {MAX_PATH_BYTES} bytes")
    if _CONTROL.search(path):
        raise UnsafePathError(f"Invalid path {path!r}: control characters are not allowed")
    if path.startswith("/"):
        raise UnsafePathError(f"Invalid path {path!r}: it must be relative (no leading '/')")
    segments = path.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise InvalidInputError(f"Invalid path: more than {MAX_PATH_DEPTH} levels of folders")
    for segment in segments:
        if segment == "":
            raise UnsafePathError(f"Invalid path {path!r}: empty path segment")
        if segment in (".", ".."):
            raise UnsafePathError(f"Invalid path {path!r}: '.' and '..' segments are not allowed")
        if segment == ".git":
            raise UnsafePathError(f"Invalid path {path!r}: '.git' is reserved")
        try:
            encoded = segment.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(f"Invalid path {path!r}: not valid UTF-8") from exc
        if len(encoded) > MAX_SEGMENT_BYTES:
            raise InvalidInputError(
                f"Invalid path {path!r}: segment longer than {MAX_SEGMENT_BYTES} bytes"
            )
        _check_portable(path, segment)
    return path


def _check_portable(path: str, segment: str) -> None:
    if "\\" in segment:
        raise UnsafePathError(f"Invalid path {path!r}: backslashes are not allowed (Windows reads them as '/')")
    if len(segment) >= 2 and segment[1] == ":" and segment[0].isascii() and segment[0].isalpha():
        raise UnsafePathError(f"Invalid path {path!r}: a drive letter is not allowed")
    if _BIDI.search(segment):
        raise UnsafePathError(f"Invalid path {path!r}: bidirectional control characters are not allowed")
    if _GIT_LOOKALIKE.match(_HFS_IGNORABLE.sub("", segment)):
        raise UnsafePathError(f"Invalid path {path!r}: {segment!r} would be read as '.git' on some systems")


def validate_folder(path: object) -> str:
    """A folder path as in ``deletedFolder``: a trailing '/' is allowed."""
    if isinstance(path, str) and path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return validate_path(path)


def parse_repo_type(value: str | None) -> RepoType:
    if value is None or value == "":
        return "model"
    if value in REPO_TYPES:
        return value
    raise InvalidInputError(f"Invalid repo type {value!r}: expected model or dataset")
