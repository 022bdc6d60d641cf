"""Highlighting (services/highlight.py): token classes and escaped text only, a line at a time."""

from __future__ import annotations

import re

from modelyard.services.highlight import HIGHLIGHT_LIMIT, code_block, file_lines
from modelyard.services.markdown import render

SPAN = re.compile(r'<span class="[a-z0-9]+">|</span>')


def test_each_line_stands_alone_and_only_spans_are_added() -> None:
    text = 'def f():\n    """doc\n    </span><script>alert(1)</script>"""\n    return "<b>" + \'x\'\n'
    lines = file_lines("src/a.py", text)
    assert lines is not None and len(lines) == len(text.splitlines())
    for line, original in zip(lines, text.splitlines(), strict=True):
        # what is left without the spans is the line, escaped: nothing else was added
        bare = SPAN.sub("", line)
        assert bare == original.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
            .replace('"', "&quot;").replace("'", "&#x27;")
        assert line.count("<span") == line.count("</span>")  # a docstring's spans close on each line
    assert '<span class="k">def</span>' in lines[0] and "<script>" not in "".join(lines)


def test_unknown_names_and_long_texts_are_not_highlighted() -> None:
    assert file_lines("notes.unknownext", "x") is None
    assert file_lines("big.py", "x = 1\n" * (HIGHLIGHT_LIMIT // 6 + 1)) is None
    assert file_lines("empty.py", "") == []
    assert code_block("x", "no-such-language") is None and code_block("x", "") is None


def test_markdown_keeps_token_classes_only() -> None:
    html = render('```python\nprint("<b>")\n```\n\n<span class="hidden">a</span> <span class="k s2">b</span>')
    assert '<span class="nb">print</span>' in html and "&lt;b&gt;" in html
    assert '<span>a</span>' in html and '<span class="k s2">b</span>' in html  # our layout's classes are dropped
