"""Syntax highlighting of text files and of code blocks in Markdown, by Pygments.

Output is one list of HTML fragments per line: each token's text escaped here, wrapped in a
``<span>`` whose class names a token type (Pygments' short names, ``k``, ``s2``...). Nothing but
those class names and escaped text is ever produced, so the fragments are safe in a page; the
colours come from the hub's stylesheet (no inline style: the pages' CSP forbids it). A token that
spans lines (a docstring, a block comment) is cut at each line end, so every line stands alone
beside its number.
"""

from __future__ import annotations

from html import escape

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

#: Longer texts are shown without colours (Pygments is pure Python: about 1 MB/s).
HIGHLIGHT_LIMIT = 256 * 1024


def _css_class(token: _TokenType) -> str:
    while token not in STANDARD_TYPES:
        token = token.parent
    css: str = STANDARD_TYPES[token]
    return css


def _lines(lexer: Lexer, text: str) -> list[str]:
    lines: list[list[str]] = [[]]
    for token, value in lexer.get_tokens(text):
        css = _css_class(token)
        for i, piece in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if piece:
                lines[-1].append(f'<span class="{css}">{escape(piece)}</span>' if css else escape(piece))
    out = ["".join(parts) for parts in lines]
    if out and out[-1] == "" and not text.endswith("\n"):
        out.pop()
    return out


def file_lines(path: str, text: str) -> list[str] | None:
    """A text file's lines as highlighted HTML, or None when no lexer knows the file's name (or it
    is too long): the page then shows the plain lines."""
    if len(text) > HIGHLIGHT_LIMIT:
        return None
    try:
        lexer = get_lexer_for_filename(path.rsplit("/", 1)[-1], stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None
    lines = _lines(lexer, text)
    return lines[: len(text.splitlines())] if text else []


def code_block(code: str, language: str) -> str | None:
    """A fenced code block's HTML (lines joined), or None for an unknown language."""
    if not language or len(code) > HIGHLIGHT_LIMIT:
        return None
    try:
        lexer = get_lexer_by_name(language.split()[0], stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None
    return "\n".join(_lines(lexer, code))
