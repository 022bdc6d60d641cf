"""Collection slugs and generated avatars: pure functions, checked over many inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import NotFoundError
from modelyard.services.collections import title_key
from modelyard.services.people import avatar_svg

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("title", "key"), [
    ("ICCV 2023", "iccv-2023"),
    ("  Recent models!! ", "recent-models"),
    ("Ünïcödé / stuff", "n-c-d-stuff"),
    ("!!!", "collection"),
])
def test_title_key(title: str, key: str) -> None:
    assert title_key(title) == key


@given(st.text(max_size=300))
def test_title_keys_are_plain_and_bounded(title: str) -> None:
    key = title_key(title)
    assert 1 <= len(key) <= 80
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in key)
    assert not key.startswith("-") and not key.endswith("-")


@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z"))
def test_avatars_are_inert_symmetric_svg(name: str) -> None:
    svg = avatar_svg(name)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    elements = {el.tag for el in root.iter()}
    assert elements <= {f"{SVG}svg", f"{SVG}rect", f"{SVG}g"}  # shapes only: no script, link or foreignObject
    cells = {(r.get("x"), r.get("y")) for r in root.iter(f"{SVG}rect") if r.get("width") == "1"}
    assert cells == {(str(6 - int(x)), y) for x, y in cells}  # mirrored (x, 6 - x)
    assert avatar_svg(name) == svg and avatar_svg(name.upper()) == svg  # stable, case-insensitive


@pytest.mark.parametrize("name", ["", "<script>", "a/b", "../x", ".hidden", "x" * 97])
def test_avatars_refuse_odd_names(name: str) -> None:
    with pytest.raises(NotFoundError):
        avatar_svg(name)
