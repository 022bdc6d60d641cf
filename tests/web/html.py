"""What a page's HTML holds, read with the standard library's parser (as a browser tokenizes it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: Elements that run code or load active content; none may come from user input.
ACTIVE = frozenset({"script", "iframe", "object", "embed", "style", "svg", "math", "frame", "frameset",
                    "base", "link", "meta", "form", "input", "button", "textarea", "select", "applet"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "background", "poster", "srcset"})


@dataclass
class Page(HTMLParser):
    elements: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    @property
    def plain(self) -> str:
        return "".join(self.text)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def active_elements(html: str) -> Counter[str]:
    """How many elements of each active kind a page has."""
    return Counter(tag for tag, _attrs in parse(html).elements if tag in ACTIVE)


def dangers(html: str, baseline: Counter[str]) -> list[str]:
    """What is active in ``html`` beyond what the same template holds with harmless input
    (``baseline``, from ``active_elements``): event handlers, script or data URLs, inline styles,
    and any extra script, frame, form, style, svg... element."""
    found = []
    for tag, attrs in parse(html).elements:
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}={value!r}>")
            if name in URL_ATTRIBUTES and value is not None:
                squeezed = "".join(value.split()).lower()
                if squeezed.startswith(("javascript:", "vbscript:", "data:", "//")):
                    found.append(f"<{tag} {name}={value!r}>")
            if name == "style":
                found.append(f"<{tag} style={value!r}>")
    extra = active_elements(html) - baseline
    found += [f"{n} extra <{tag}>" for tag, n in extra.items()]
    return found
