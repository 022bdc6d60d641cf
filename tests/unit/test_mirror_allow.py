"""Which upstream repos an edge may mirror (``MODELYARD_UPSTREAM_ALLOW``)."""

from __future__ import annotations

from pathlib import Path

from modelyard.config import Settings
from modelyard.services.hub import Hub
from modelyard.services.mirror import allowed


def hub_with(tmp_path: Path, **settings: str) -> Hub:
    return Hub(Settings(data_dir=tmp_path, upstream_url="http://127.0.0.1:9", **settings))  # type: ignore[arg-type]


def test_default_allows_every_type(tmp_path: Path) -> None:
    hub = hub_with(tmp_path)
    assert allowed(hub, "model", "org/name") and allowed(hub, "dataset", "org/d") and allowed(hub, "space", "o/s")


def test_patterns_by_type_and_namespace(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, upstream_allow="sentence-transformers/*, datasets:acme/*")
    assert allowed(hub, "model", "sentence-transformers/all-MiniLM-L6-v2")
    assert allowed(hub, "model", "Sentence-Transformers/X")  # ids match whatever their case
    assert not allowed(hub, "model", "google/bert")
    assert not allowed(hub, "dataset", "sentence-transformers/data")
    assert allowed(hub, "dataset", "acme/corpus")
    assert not allowed(hub, "space", "acme/app")


def test_nothing_allowed(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, upstream_allow="")
    assert not allowed(hub, "model", "org/name")
