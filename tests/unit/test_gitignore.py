"""``GitIgnore`` decides exactly what ``git check-ignore`` decides.

Every case writes the ``.gitignore`` and the files into a real git work tree and asks git (2.39,
installed here) which of them it ignores; the matcher must give the same set. A table covers each
rule of gitignore(5) and git's wildmatch; a seeded random sweep covers their combinations.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from modelyard.errors import InvalidInputError
from modelyard.versioning.gitignore import (
    MAX_PATTERN_BYTES,
    MAX_PATTERNS,
    MAX_REMEMBERED_STEPS,
    MAX_TOTAL_BYTES,
    GitIgnore,
)
from tests.support.gitcheck import git_ignored

PATHS = [
    "a", "b", "ab", "a.txt", "b.txt", "x.log", "README.md", ".hidden", "-dash", "a-c",
    "foo", "dir/foo", "dir/sub/foo", "dir/a.txt", "dir/sub/b.txt", "dir/sub/deep/c.txt",
    "build/out.bin", "build/keep.txt", "sub/build/out.bin", "logs/x.log", "logs/keep/x.log",
    "doc/frotz/a", "p/frotz/b", "foo.d/x", "abc/def", "abcdef/g", "p/q/c/d", "p/x/b", "p/b", "p/bb",
    "#comment", "!bang", "trail ", "space in", "q?", "star*", "[br]", "x\\y",
    "caf\u00e9.txt", "\u00e9", "CAPS.TXT", "n1.txt", "n5.txt", "weights/model.safetensors",
    "data/train/0.parquet", "data/test/0.parquet", "data/train/notes.md",
]

TABLE: dict[str, str] = {
    "empty": "",
    "comment and blank lines": "# a comment\n\n   \n#a.txt\n",
    "plain name at any depth": "foo\n",
    "star suffix": "*.txt\n",
    "star in the middle": "a*c\n",
    "question mark": "?\n",
    "question mark is one byte": "caf?.txt\n?\n",
    "two question marks match one two-byte character": "??\n",
    "negation": "*.txt\n!b.txt\n",
    "negation then re-ignore": "*.txt\n!*.txt\na.txt\n",
    "directory only": "foo/\nbuild/\n",
    "directory pattern on a file": "a.txt/\n",
    "anchored": "/foo\n/a.txt\n",
    "anchored folder": "/build/\n",
    "middle slash is anchored": "doc/frotz\ndir/sub\n",
    "middle slash with trailing slash": "doc/frotz/\n",
    "leading double star": "**/foo\n**/b.txt\n",
    "leading double star folder": "**/build/\n",
    "trailing double star": "logs/**\n",
    "inner double star": "p/**/b\ndir/**/c.txt\n",
    "double star not a whole component": "a**b\nab**\n**b\np/b**\n",
    "double star after a literal prefix": "dir/s**\n",
    "triple star": "***.txt\n/***/x.log\n",
    "double star alone": "**\n!dir/\n",
    "star does not cross folders": "dir/*.txt\ndir/*/deep\n",
    "star then slash": "*/foo\n*/*/b.txt\n",
    "class": "[ab].txt\n",
    "negated class with !": "[!a].txt\n",
    "negated class with ^": "[^a].txt\n",
    "range": "n[1-3].txt\n",
    "range and literal dash": "a[-x]c\n[a-]*\n",
    "closing bracket first": "[]br]*\n[!]]\n",
    "posix classes": "[[:upper:]]*\n[[:digit:]]*\n[[:punct:]]*\n",
    "posix class alpha alnum space": "a[[:space:]]in\n[[:alpha:]][[:alnum:]]\n",
    "malformed posix class": "[[:nope:]]*\n",
    "unterminated class": "[ab\n*.log\n",
    "bracket colon without colon bracket": "[[:a]*\n",
    "escaped specials": "star\\*\nq\\?\n\\[br]\n",
    "escaped hash and bang": "\\#comment\n\\!bang\n",
    "trailing spaces trimmed": "a.txt   \nfoo \n",
    "escaped trailing space kept": "trail\\ \n",
    "space inside a name": "space in\n",
    "backslash escapes a letter": "\\a\n",
    "trailing backslash matches nothing": "a\\\n",
    "crlf lines": "a.txt\r\nfoo\r\n",
    "bom": "\ufeffa.txt\n",
    "no final newline": "*.log",
    "folder excluded, file re-included stays ignored": "build/\n!build/keep.txt\n",
    "star excludes contents, re-include works": "build/*\n!build/keep.txt\n",
    "re-include a folder under an ignored folder": "dir/\n!dir/sub/\n",
    "ignore all but one folder": "/*\n!/data/\n/data/*\n!/data/train/\n",
    "safetensors and parquet": "*.safetensors\ndata/test/\n",
    "hidden files": ".*\n",
    "non-ascii": "caf\u00e9.txt\n\u00e9\n",
    "range over bytes": "[\u00e0-\u00ff]*\n",
    "dot segments in a pattern": "./a.txt\ndir/../foo\n",
    "lone bang and slash": "!\n/\n//\n",
}


def ours(gitignore: str, paths: list[str]) -> set[str]:
    rules = GitIgnore.parse(gitignore)
    return {p for p in paths if rules.ignores(p)}


@pytest.mark.parametrize("case", list(TABLE))
def test_table_matches_git_check_ignore(tmp_path: Path, case: str) -> None:
    gitignore = TABLE[case]
    expected = git_ignored(tmp_path, gitignore, PATHS)
    assert ours(gitignore, PATHS) == expected


def test_the_table_is_not_trivial(tmp_path: Path) -> None:
    """Guards the comparison itself: git ignores something in most cases and not everything."""
    some = sum(1 for case in ("star suffix", "negation", "leading double star", "class") if
               0 < len(git_ignored(tmp_path / case, TABLE[case], PATHS)) < len(PATHS))
    assert some == 4


RANDOM_PIECES = ["a", "b", "c", ".", "-", "/", "*", "**", "?", "[ab]", "[!a]", "[a-c]", "\\*", "x", "/",
                 "[[:alpha:]]", "[]a]", "\\", " ", "#"]
RANDOM_NAMES = ["a", "b", "c", "ab", "ba", "a.b", "b.c", "x", "abc", "*", "a?"]


def random_paths(rng: random.Random) -> list[str]:
    paths: set[str] = set()
    while len(paths) < 30:
        paths.add("/".join(rng.choice(RANDOM_NAMES) for _ in range(rng.randint(1, 4))))
    # A file cannot also be a folder on disk: keep the paths that are not a prefix of another.
    return sorted(p for p in paths if not any(q.startswith(p + "/") for q in paths))


def random_gitignore(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 4)):
        pattern = "".join(rng.choice(RANDOM_PIECES) for _ in range(rng.randint(1, 5)))
        if rng.random() < 0.25:
            pattern = "!" + pattern
        lines.append(pattern)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(6))
def test_random_patterns_match_git_check_ignore(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    decisive = 0
    for n in range(20):
        paths, gitignore = random_paths(rng), random_gitignore(rng)
        expected = git_ignored(tmp_path / str(n), gitignore, paths)
        assert ours(gitignore, paths) == expected, gitignore
        decisive += 0 < len(expected) < len(paths)
    assert decisive >= 4  # the sweep compares real decisions, not only "nothing ignored"


def test_pathological_pattern_is_linear() -> None:
    """A pattern that makes a backtracking matcher take exponential time is answered at once."""
    import time

    rules = GitIgnore.parse("/" + "*a" * 40 + "b\n" + "**/a" * 30 + "/b\n")
    path = "/".join(["a" * 200] * 20)
    start = time.perf_counter()
    assert not rules.ignores(path)
    assert time.perf_counter() - start < 2.0


def test_limits() -> None:
    GitIgnore.parse("x\n" * MAX_PATTERNS)
    with pytest.raises(InvalidInputError, match="more than"):
        GitIgnore.parse("x\n" * (MAX_PATTERNS + 1))
    with pytest.raises(InvalidInputError, match="longer than"):
        GitIgnore.parse("x" * (MAX_PATTERN_BYTES + 1) + "\n")
    line = "y" * (MAX_PATTERN_BYTES - 1) + "\n# comments are free\n"
    GitIgnore.parse(line * (MAX_TOTAL_BYTES // MAX_PATTERN_BYTES))
    with pytest.raises(InvalidInputError, match="bytes of patterns"):
        GitIgnore.parse(line * (MAX_TOTAL_BYTES // MAX_PATTERN_BYTES + 1))


def test_remembered_steps_change_no_answer() -> None:
    """Answers from one ``GitIgnore`` that has filled its memory of steps equal fresh ones."""
    rng = random.Random(5)
    letters = "abcdef"
    lines = ["**/" + "*".join(rng.choice(letters) for _ in range(4)) + rng.choice(["/", "", "*/"]) for _ in range(40)]
    text = "\n".join(("!" if n % 5 == 0 else "") + line for n, line in enumerate(lines)) + "\n"
    paths = ["/".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 5)))
             for _ in range(400)]
    shared = GitIgnore.parse(text)
    answers = [shared.ignores(p) for p in paths]
    assert answers == [GitIgnore.parse(text).ignores(p) for p in paths]
    assert len(shared._path._seen) == MAX_REMEMBERED_STEPS  # the memory did fill up
    assert 0 < sum(answers) < len(paths)
