"""Markdown of discussion bodies and comments to sanitized HTML (a pure function).

The raw text is kept as written and served as ``raw``; ``html`` is rendered by markdown-it
(CommonMark, tables, strikethrough, fenced code highlighted by ``services/highlight.py``; inline
HTML allowed so that ``<details>`` or ``<audio>`` embeds survive) and then cleaned by nh3
(ammonia) with an allow-list: only presentational tags,
only ``href``/``src``/``alt``/``title`` and a few table attributes, only http(s) and mailto URLs
(relative ones stay, they point at this hub; scheme-relative ``//host`` ones are dropped).
Nothing executable survives: no ``<script>``, ``<style>``, ``<iframe>``, no ``on*`` handler, no
``javascript:`` or ``data:`` URL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments.token import STANDARD_TYPES

from modelyard.services import highlight

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul", "audio", "video",
    "source",
})
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "audio": {"src", "controls"},
    "video": {"src", "controls", "width", "height"},
    "source": {"src", "type"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "code": {"class"},  # language-xyz from fenced code blocks: plain text to a browser
    "span": {"class"},  # a highlighted token's type: only Pygments' short names are kept
}
TOKEN_CLASSES = frozenset(c for c in STANDARD_TYPES.values() if c)
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _highlight(code: str, language: str, _attrs: object) -> str:
    return highlight.code_block(code, language) or ""  # "": markdown-it escapes the code itself


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "highlight": _highlight}).enable(["table", "strikethrough"])


#: Rewrites a URL attribute that survived sanitizing: (tag, attribute, value) -> new value.
Links = Callable[[str, str, str], str]
URL_ATTRIBUTES = frozenset({"href", "src"})


def render(raw: str, links: Links | None = None) -> str:
    """Sanitized HTML of a Markdown text; ``links`` may point relative URLs somewhere (a card's
    links at the repo's files). It sees only values the allow-list kept, and nh3 does not check
    what it returns: anything but the value it got or a path on this hub is dropped."""

    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if tag == "span" and attribute == "class":
            return value if set(value.split()) <= TOKEN_CLASSES else None
        if attribute not in URL_ATTRIBUTES:
            return value
        if value.lstrip().startswith(("//", "\\", "/\\")):
            return None  # scheme-relative: another host, dressed as a path of this one
        if links is None:
            return value
        new = links(tag, attribute, value)
        if new == value or (new.startswith("/") and not new.startswith("//") and "\\" not in new):
            return new
        return None

    html = _parser().render(raw)
    cleaned: str = nh3.clean(
        html, tags=set(TAGS), attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow",
        attribute_filter=rewrite,
    )
    return cleaned
