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

from dataclasses import dataclass, field

from modelyard.errors import InvalidInputError

#: Bounds on what a request makes the server evaluate: one preupload batch is 256 paths.
MAX_PATTERNS = 2000
MAX_PATTERN_BYTES = 1024
MAX_TOTAL_BYTES = 16 * 1024  # of patterns (comments and blank lines are free)
#: Steps of the automaton remembered per ``GitIgnore`` (each holds two sets of at most ~2 KiB).
MAX_REMEMBERED_STEPS = 1024

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
                    if not out or out[-1][0] != _DIRS:  # "**/**/" matches what "**/" does
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


Token = tuple[int, int | frozenset[int]]


class _Machine:
    """Every pattern of one kind (matched on the last component, or on the whole path) as one
    NFA. Each pattern owns a run of states, "its first k tokens matched", ending in its
    accepting state; a set of states is an int, so a step over all patterns at once is a few
    integer operations, whatever the number of patterns."""

    def __init__(self, patterns: list[tuple[int, list[Token]]]) -> None:
        self.skip1 = 0  # states that may move on without input (stars, the entry of "**/")
        self.skip3 = 0  # the entry of a "**/" may also jump over it (matching no folder)
        self.accept = 0
        self._lits: dict[int, int] = {}
        self._any = self._star = self._glob = 0
        self._sets: list[tuple[int, frozenset[int]]] = []
        self._owner: dict[int, int] = {}  # accepting state -> index of its pattern
        self._steps: dict[int, tuple[int, int]] = {}
        self._seen: dict[tuple[int, int], int] = {}
        start = n = 0
        for index, tokens in patterns:
            start |= 1 << n
            for kind, arg in tokens:
                bit = 1 << n
                if kind == _DIRS:  # an entry that consumes nothing, a '**' state, a '/' state
                    self.skip1 |= bit | bit << 1
                    self.skip3 |= bit
                    self._glob |= bit << 1
                    self._lits[_SLASH] = self._lits.get(_SLASH, 0) | bit << 2
                    n += 3
                    continue
                if kind == _LIT:
                    assert isinstance(arg, int)
                    self._lits[arg] = self._lits.get(arg, 0) | bit
                elif kind == _ANY:
                    self._any |= bit
                elif kind == _SET:
                    assert isinstance(arg, frozenset)
                    self._sets.append((bit, arg))
                elif kind == _STAR:
                    self._star |= bit
                    self.skip1 |= bit
                else:
                    self._glob |= bit
                    self.skip1 |= bit
                n += 1
            self.accept |= 1 << n
            self._owner[n] = index
            n += 1
        self._passes = self._longest_skip_chain(n)
        self.start = self._close(start)

    def _longest_skip_chain(self, n: int) -> int:
        """How many moves without input can follow each other: the closure takes that many
        passes (consecutive stars are one token, so it is 1 or 2 for most patterns)."""
        longest = [0] * (n + 4)
        for k in range(n - 1, -1, -1):
            if self.skip1 >> k & 1:
                longest[k] = 1 + longest[k + 1]
            if self.skip3 >> k & 1:
                longest[k] = max(longest[k], 1 + longest[k + 3])
        return max(longest, default=0)

    def _close(self, states: int) -> int:
        skip1, skip3 = self.skip1, self.skip3
        for _ in range(self._passes):
            states |= ((states & skip1) << 1) | ((states & skip3) << 3)
        return states

    def _step(self, byte: int) -> tuple[int, int]:
        """(states that consume ``byte`` and advance, states that consume it and stay)."""
        cached = self._steps.get(byte)
        if cached is None:
            advance = self._lits.get(byte, 0)
            for bit, members in self._sets:
                if byte in members:
                    advance |= bit
            stay = self._glob
            if byte != _SLASH:
                advance |= self._any
                stay |= self._star
            cached = self._steps[byte] = (advance, stay)
        return cached

    def run(self, states: int, text: bytes) -> int:
        seen = self._seen
        for byte in text:
            if not states:
                return 0
            # The sets met are few in practice (names repeat, patterns die early): a step already
            # taken is a dictionary look-up (the automaton turns into a DFA as it is used).
            key = (states, byte)
            following = seen.get(key)
            if following is None:
                advance, stay = self._step(byte)
                following = self._close(((states & advance) << 1) | (states & stay))
                if len(seen) < MAX_REMEMBERED_STEPS:
                    seen[key] = following
            states = following
        return states

    def matched(self, states: int) -> list[int]:
        """Indexes of the patterns whose accepting state is in ``states``."""
        found = []
        accepted = states & self.accept
        while accepted:
            low = accepted & -accepted
            found.append(self._owner[low.bit_length() - 1])
            accepted ^= low
        return found


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
    tokens: list[Token] | None = field(repr=False, compare=False)  # None: matches nothing

    @classmethod
    def parse(cls, line: bytes) -> IgnorePattern:
        negative = line.startswith(b"!")
        text = line[1:] if negative else line
        dir_only = text.endswith(b"/")
        if dir_only:
            text = text[:-1]
        basename_only = b"/" not in text
        return cls(text, negative, dir_only, basename_only, cls._compile(text, basename_only))

    @staticmethod
    def _compile(text: bytes, basename_only: bool) -> list[Token] | None:
        prefix = b""
        if not basename_only:
            # git's match_pathname: one leading '/' dropped, the literal prefix compared first and
            # the rest matched on its own (so a '**' right after that prefix counts as leading).
            if text.startswith(b"/"):
                text = text[1:]
            prefix = text[: _simple_length(text)]
            text = text[len(prefix) :]
        try:
            tokens: list[Token] = [(_LIT, c) for c in prefix] + _tokens(text)
        except _Malformed:
            return None
        return tokens or None  # an empty pattern matches no (non-empty) name


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
        self._base = _Machine([(i, p.tokens) for i, p in enumerate(patterns) if p.tokens and p.basename_only])
        self._path = _Machine([(i, p.tokens) for i, p in enumerate(patterns) if p.tokens and not p.basename_only])

    @classmethod
    def parse(cls, content: bytes | str) -> GitIgnore:
        """Parse a ``.gitignore``; InvalidInputError past ``MAX_PATTERNS``, ``MAX_PATTERN_BYTES``
        or ``MAX_TOTAL_BYTES``."""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogatepass")  # JSON allows lone surrogates
        lines = _lines(content)
        if len(lines) > MAX_PATTERNS:
            raise InvalidInputError(f"The .gitignore has more than {MAX_PATTERNS} patterns")
        if any(len(line) > MAX_PATTERN_BYTES for line in lines):
            raise InvalidInputError(f"The .gitignore has a pattern longer than {MAX_PATTERN_BYTES} bytes")
        if sum(len(line) for line in lines) > MAX_TOTAL_BYTES:
            raise InvalidInputError(f"The .gitignore has more than {MAX_TOTAL_BYTES} bytes of patterns")
        return cls([IgnorePattern.parse(line) for line in lines])

    def _decides(self, in_path: int, in_base: int, is_dir: bool) -> bool:
        """Whether the last pattern matching (in either machine) ignores the name."""
        last = -1
        for index in self._path.matched(in_path) + self._base.matched(in_base):
            if index > last and (is_dir or not self.patterns[index].dir_only):
                last = index
        return last >= 0 and not self.patterns[last].negative

    def ignores(self, path: str) -> bool:
        """Whether the file ``path`` (from the repo root, '/'-separated) is ignored: it is, or
        one of its folders is (git never looks inside an ignored folder)."""
        *folders, name = path.encode("utf-8", "surrogatepass").split(b"/")
        states = self._path.start
        for folder in folders:
            states = self._path.run(states, folder)
            if self._decides(states, self._base.run(self._base.start, folder), is_dir=True):
                return True
            states = self._path.run(states, b"/")
        states = self._path.run(states, name)
        return self._decides(states, self._base.run(self._base.start, name), is_dir=False)
