"""``.gitignore`` rules as git applies them (``dir.c`` and ``wildmatch.c``), for ``shouldIgnore``.

Patterns and paths are compared as UTF-8 bytes, as git does (``?`` matches one byte). A pattern
is compiled to a small automaton simulated with bitmasks, so matching costs one step per byte of
the path whatever the pattern: no backtracking, no pattern that takes exponential time.

What git does and this module copies:

- lines are split on ``\\n`` (a ``\\r`` before it is dropped), a UTF-8 BOM is skipped, blank
  lines and lines starting with ``#`` are skipped, unescaped trailing spaces are trimmed;
- ``!`` negates, a trailing ``/`` matches folders only, a pattern without any other ``/``
  matches the last component at any depth, otherwise it is matched against the whole path
  (one leading ``/`` dropped);
- ``*`` and ``?`` never match ``/``; ``**`` matches across folders only between slashes or at
  either end (``**/x``, ``x/**``, ``a/**/b``), elsewhere it is a ``*``; ``[...]`` classes with
  ``!`` or ``^``, ranges, POSIX ``[:name:]`` classes and ``\\`` escapes; a malformed class makes
  its pattern match nothing;
- the last matching pattern decides, and a file inside an ignored folder is ignored whatever
  later patterns say about the file (git never looks inside an ignored folder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.errors import InvalidInputError

#: Bounds on what a request makes the server evaluate: one preupload batch is 256 paths.
MAX_PATTERNS = 2000
MAX_PATTERN_BYTES = 1024

_SLASH = ord("/")
_BACKSLASH = ord("\\")
_GLOB_SPECIAL = frozenset(b"*?[\\")

# Token kinds of a compiled pattern.
_LIT, _ANY, _SET, _STAR, _GLOBSTAR, _DIRS = range(6)

_ASCII = range(128)
_POSIX_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset(c for c in _ASCII if chr(c).isalnum()),
    b"alpha": frozenset(c for c in _ASCII if chr(c).isalpha()),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(32), 127]),
    b"digit": frozenset(b"0123456789"),
    b"graph": frozenset(range(33, 127)),
    b"lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    b"print": frozenset(range(32, 127)),
    b"punct": frozenset(c for c in range(33, 127) if not chr(c).isalnum()),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
}


class _Malformed(Exception):
    """A class git's wildmatch gives up on: the pattern matches nothing."""


def _parse_class(p: bytes, i: int) -> tuple[frozenset[int], int]:
    """The bytes a ``[...]`` starting at ``p[i]`` accepts, and the index after its ``]``."""
    i += 1
    negated = i < len(p) and p[i] in b"!^"
    if negated:
        i += 1
    members: set[int] = set()
    prev = 0
    first = True
    while True:
        if i >= len(p):
            raise _Malformed
        c = p[i]
        if c == ord("]") and not first:
            break
        first = False
        if c == _BACKSLASH:
            i += 1
            if i >= len(p):
                raise _Malformed
            c = p[i]
            members.add(c)
        elif c == ord("-") and prev and i + 1 < len(p) and p[i + 1] != ord("]"):
            i += 1
            end = p[i]
            if end == _BACKSLASH:
                i += 1
                if i >= len(p):
                    raise _Malformed
                end = p[i]
            members.update(range(prev, end + 1))
            c = 0  # a range ends: no range may start from its last byte
        elif c == ord("[") and i + 1 < len(p) and p[i + 1] == ord(":"):
            close = p.find(b"]", i + 2)
            if close < 0:
                raise _Malformed
            if close - 1 < i + 2 or p[close - 1] != ord(":"):
                members.add(c)  # no ":]": a plain '[' in the set
            else:
                name = p[i + 2 : close - 1]
                if name not in _POSIX_CLASSES:
                    raise _Malformed
                members |= _POSIX_CLASSES[name]
                i = close
                c = 0
        else:
            members.add(c)
        prev = c
        i += 1
    accepted = (set(range(256)) - members) if negated else members
    accepted.discard(_SLASH)
    return frozenset(accepted), i + 1


def _tokens(p: bytes) -> list[tuple[int, int | frozenset[int]]]:
    """Compile a wildmatch pattern (with ``WM_PATHNAME``) to tokens; ``p[0]`` is its start."""
    out: list[tuple[int, int | frozenset[int]]] = []
    i = 0
    while i < len(p):
        c = p[i]
        if c == _BACKSLASH:
            if i + 1 >= len(p):
                raise _Malformed  # a trailing backslash matches nothing
            out.append((_LIT, p[i + 1]))
            i += 2
        elif c == ord("?"):
            out.append((_ANY, 0))
            i += 1
        elif c == ord("*"):
            j = i
            while j < len(p) and p[j] == ord("*"):
                j += 1
            whole_component = (i == 0 or p[i - 1] == _SLASH) and (
                j == len(p) or p[j] == _SLASH or p[j : j + 2] == b"\\/"
            )
            if j - i >= 2 and whole_component:
                if j < len(p) and p[j] == _SLASH:
                    out.append((_DIRS, 0))  # "**/": nothing, or any folders and a '/'
                    j += 1
                else:
                    out.append((_GLOBSTAR, 0))
            else:
                out.append((_STAR, 0))
            i = j
        elif c == ord("["):
            members, i = _parse_class(p, i)
            out.append((_SET, members))
        else:
            out.append((_LIT, c))
            i += 1
    return out


@dataclass
class _Automaton:
    """A pattern as an NFA: state k is "tokens[:k] matched"; sets of states are bitmasks."""

    tokens: list[tuple[int, int | frozenset[int]]]
    skip1: int = 0  # states that may move on without input (stars, the entry of "**/")
    skip3: int = 0  # the entry of a "**/" may also jump over it (matching no folder)
    accept: int = 0
    start: int = 0
    _steps: dict[int, tuple[int, int]] = field(default_factory=dict)
    _states: list[tuple[int, int | frozenset[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind, arg in self.tokens:
            if kind == _DIRS:  # an entry that consumes nothing, a '**' state, a '/' state
                entry = len(self._states)
                self.skip1 |= (1 << entry) | (1 << (entry + 1))
                self.skip3 |= 1 << entry
                self._states += [(_DIRS, 0), (_GLOBSTAR, 0), (_LIT, _SLASH)]
                continue
            if kind in (_STAR, _GLOBSTAR):
                self.skip1 |= 1 << len(self._states)
            self._states.append((kind, arg))
        self.accept = 1 << len(self._states)
        self.start = self._close(1)

    def _close(self, states: int) -> int:
        while True:
            more = states | ((states & self.skip1) << 1) | ((states & self.skip3) << 3)
            if more == states:
                return states
            states = more

    def _step(self, byte: int) -> tuple[int, int]:
        """(states that consume ``byte`` and advance, states that consume it and stay)."""
        cached = self._steps.get(byte)
        if cached is not None:
            return cached
        advance = stay = 0
        for k, (kind, arg) in enumerate(self._states):
            if kind == _LIT:
                advance |= (arg == byte) << k
            elif kind == _ANY:
                advance |= (byte != _SLASH) << k
            elif kind == _SET:
                assert isinstance(arg, frozenset)
                advance |= (byte in arg) << k
            elif kind == _STAR:
                stay |= (byte != _SLASH) << k
            elif kind == _GLOBSTAR:
                stay |= 1 << k
        self._steps[byte] = (advance, stay)
        return advance, stay

    def matches(self, text: bytes) -> bool:
        states = self.start
        for byte in text:
            advance, stay = self._step(byte)
            states = self._close(((states & advance) << 1) | (states & stay))
            if not states:
                return False
        return bool(states & self.accept)


def _compile(p: bytes) -> Callable[[bytes], bool]:
    try:
        tokens = _tokens(p)
    except _Malformed:
        return lambda _text: False
    if all(kind == _LIT for kind, _ in tokens):
        literal = bytes(arg for _, arg in tokens if isinstance(arg, int))
        return lambda text: text == literal
    return _Automaton(tokens).matches


def _simple_length(p: bytes) -> int:
    """Bytes before the first glob special character (git's ``simple_length``)."""
    for i, c in enumerate(p):
        if c in _GLOB_SPECIAL:
            return i
    return len(p)


@dataclass(frozen=True)
class IgnorePattern:
    """One line of a ``.gitignore``."""

    text: bytes  # without '!' and the trailing '/'
    negative: bool
    dir_only: bool
    basename_only: bool  # no '/' in it: matched against the last component at any depth
    _match: Callable[[bytes], bool] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, line: bytes) -> IgnorePattern:
        negative = line.startswith(b"!")
        text = line[1:] if negative else line
        dir_only = text.endswith(b"/")
        if dir_only:
            text = text[:-1]
        basename_only = b"/" not in text
        return cls(text, negative, dir_only, basename_only, cls._matcher(text, basename_only))

    @staticmethod
    def _matcher(text: bytes, basename_only: bool) -> Callable[[bytes], bool]:
        if basename_only:
            if _simple_length(text) == len(text):
                return lambda name: name == text
            if text.startswith(b"*") and _simple_length(text[1:]) == len(text) - 1:
                suffix = text[1:]
                return lambda name: name.endswith(suffix)
            return _compile(text)
        # git's match_pathname: one leading '/' dropped, the literal prefix compared first, and
        # the rest matched on its own (so a '**' right after that prefix counts as leading).
        if text.startswith(b"/"):
            text = text[1:]
        prefix = text[: _simple_length(text)]
        rest = _compile(text[len(prefix) :])
        return lambda path: path.startswith(prefix) and rest(path[len(prefix) :])

    def matches(self, path: bytes, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.basename_only:
            return self._match(path[path.rfind(b"/") + 1 :])
        return self._match(path)


def _lines(content: bytes) -> list[bytes]:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    out = []
    for line in content.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line.startswith(b"#"):
            continue
        line = _trim_trailing_spaces(line)
        if line:
            out.append(line)
    return out


def _trim_trailing_spaces(line: bytes) -> bytes:
    """Drop trailing spaces unless escaped with a backslash (git's ``trim_trailing_spaces``)."""
    last_space = None
    i = 0
    while i < len(line):
        c = line[i]
        if c == ord(" "):
            if last_space is None:
                last_space = i
        elif c == _BACKSLASH:
            i += 1
            if i >= len(line):
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


class GitIgnore:
    """The rules of one ``.gitignore`` at the root of a repository."""

    def __init__(self, patterns: list[IgnorePattern]) -> None:
        self.patterns = patterns
        self._dirs: dict[bytes, bool] = {}

    @classmethod
    def parse(cls, content: bytes | str) -> GitIgnore:
        """Parse a ``.gitignore``; InvalidInputError past ``MAX_PATTERNS`` or ``MAX_PATTERN_BYTES``."""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogatepass")  # JSON allows lone surrogates
        lines = _lines(content)
        if len(lines) > MAX_PATTERNS:
            raise InvalidInputError(f"The .gitignore has more than {MAX_PATTERNS} patterns")
        if any(len(line) > MAX_PATTERN_BYTES for line in lines):
            raise InvalidInputError(f"The .gitignore has a pattern longer than {MAX_PATTERN_BYTES} bytes")
        return cls([IgnorePattern.parse(line) for line in lines])

    def _decides(self, path: bytes, is_dir: bool) -> bool:
        for pattern in reversed(self.patterns):
            if pattern.matches(path, is_dir):
                return not pattern.negative
        return False

    def ignores(self, path: str) -> bool:
        """Whether the file ``path`` (from the repo root, '/'-separated) is ignored."""
        raw = path.encode("utf-8", "surrogatepass")
        slash = raw.find(b"/")
        while slash >= 0:
            folder = raw[:slash]
            ignored = self._dirs.get(folder)
            if ignored is None:
                ignored = self._dirs[folder] = self._decides(folder, is_dir=True)
            if ignored:
                return True
            slash = raw.find(b"/", slash + 1)
        return self._decides(raw, is_dir=False)
