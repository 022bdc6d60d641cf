"""The page templates (autoescaped Jinja2) and the filters they use."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def filesize(size: int) -> str:
    """Bytes as people read them: ``512 Bytes``, ``1.5 kB``, ``2.1 GB`` (powers of 1000, as the Hub)."""
    if size < 1000:
        return f"{size} Bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def count(value: int | None) -> str:
    """A count as on the Hub's cards: ``950``, ``1.2k``, ``3.4M``, ``1.1B``."""
    if value is None:
        return ""
    for limit, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def segment(value: str) -> str:
    """One URL path segment: a revision such as ``feature/x`` keeps its slash encoded."""
    return quote(value, safe="")


def day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelyard.web", "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(filesize=filesize, count=count, day=day, segment=segment)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def trusted(html: str) -> Markup:
    """HTML the sanitizer produced (``services/markdown.py``): inserted as it is."""
    return Markup(html)


@lru_cache(maxsize=16)
def asset(name: str) -> bytes | None:
    """A file of ``web/static`` (None if there is none by that name)."""
    files = resources.files("modelyard.web").joinpath("static")
    if "/" in name or name.startswith("."):
        return None
    item = files.joinpath(name)
    return item.read_bytes() if item.is_file() else None
