"""The Markdown renderer of discussion comments: useful HTML in, nothing executable out."""

from __future__ import annotations

import pytest

from modelyard.services.markdown import render


def test_markdown_renders() -> None:
    html = render("# Title\n\n**bold** and [a link](https://example.com) ~~gone~~\n\n| a |\n|---|\n| 1 |\n")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<s>gone</s>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">a link</a>' in html
    assert "<table>" in html and "<td>1</td>" in html


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<style>body{display:none}</style>",
    "<iframe src='https://evil.example'></iframe>",
    "<object data='x.swf'></object><embed src='x.swf'>",
    "<svg onload=alert(1)><circle/></svg>",
    "<form action='https://evil.example'><input name=x></form>",
])
def test_active_tags_do_not_survive(text: str) -> None:
    html = render(text).lower()
    for tag in ("<script", "<style", "<iframe", "<object", "<embed", "<svg", "<form", "<input"):
        assert tag not in html


@pytest.mark.parametrize("text", [
    '<img src=x onerror="alert(1)">',
    '<a href="https://ok.example" onclick="alert(1)" onmouseover="alert(2)">x</a>',
    '<p onclick="alert(1)" style="background:url(javascript:alert(1))">x</p>',
    '<details open ontoggle="alert(1)"><summary>s</summary>x</details>',
])
def test_event_handlers_and_styles_are_stripped(text: str) -> None:
    html = render(text).lower()
    assert " on" not in html.replace(" one", "") and "style=" not in html and "javascript:" not in html


@pytest.mark.parametrize("text", [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href='java&#x09;script:alert(1)'>x</a>",
    "![i](javascript:alert(1))",
    "<img src='data:text/html,<script>alert(1)</script>'>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
])
def test_only_http_and_mailto_urls(text: str) -> None:
    html = render(text).lower()
    assert 'href="javascript' not in html and 'src="javascript' not in html
    assert 'href="data:' not in html and 'src="data:' not in html and 'href="vbscript' not in html
    assert "<script" not in html


def test_safe_urls_stay() -> None:
    html = render("[m](mailto:a@example.com) ![i](https://hub.example/uploads/x.png) [r](/acme/model)")
    assert 'href="mailto:a@example.com"' in html and 'src="https://hub.example/uploads/x.png"' in html
    assert 'href="/acme/model"' in html


@pytest.mark.parametrize("text", ["[x](//evil.example/)", "[x](  //evil.example/a)", "<a href='/\\evil.example'>x</a>",
                                  "<a href='\\\\evil.example'>x</a>", "![i](//evil.example/i.png)"])
def test_scheme_relative_urls_are_dropped(text: str) -> None:
    """``//host`` is another host spelled as a path of this one: no link or image keeps it."""
    html = render(text)
    assert "evil.example" not in html.split(">", 1)[0] and "href=" not in html and "src=" not in html
    assert 'href="/docs/a"' in render("[ok](/docs/a)")  # a path of this hub stays
    assert 'href="/%5Cevil.example"' in render("[x](/\\evil.example)")  # markdown-it encodes it: a path here
