"""Model and dataset cards: the YAML front matter of README.md."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", re.S | re.M)


@dataclass
class CardReport:
    """The parsed metadata and what is wrong with it."""

    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


def parse_card(text: str) -> CardReport:
    """Parse the front matter; type errors become report errors, never exceptions."""
    report = CardReport()
    match = _FRONT_MATTER.match(text)
    if match is None:
        return report
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        report.errors.append(f"Invalid YAML in the README.md metadata: {exc}")
        return report
    if data is None:
        return report
    if not isinstance(data, dict):
        report.errors.append("The README.md metadata must be a YAML mapping")
        return report
    report.data = {str(k): v for k, v in data.items()}
    for key in ("tags", "datasets", "language", "base_model", "metrics"):
        value = report.data.get(key)
        if value is not None and not isinstance(value, (str, list)):
            report.errors.append(f"'{key}' must be a string or a list of strings")
    for key in ("license", "library_name", "pipeline_tag"):
        value = report.data.get(key)
        if value is not None and not isinstance(value, str):
            report.errors.append(f"'{key}' must be a string")
    return report


def derive_tags(card: dict[str, Any]) -> tuple[list[str], str | None, str | None]:
    """Tags the Hub derives from a card, plus ``library_name`` and ``pipeline_tag``."""
    tags: list[str] = []
    library = card.get("library_name") if isinstance(card.get("library_name"), str) else None
    pipeline = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
    if library:
        tags.append(library)
    tags.extend(_as_list(card.get("tags")))
    if pipeline:
        tags.append(pipeline)
    tags.extend(f"dataset:{d}" for d in _as_list(card.get("datasets")))
    tags.extend(_as_list(card.get("language")))
    tags.extend(f"base_model:{b}" for b in _as_list(card.get("base_model")))
    license_value = card.get("license")
    if isinstance(license_value, str):
        tags.append(f"license:{license_value}")
    seen: set[str] = set()
    unique = [t for t in tags if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]
    return unique, library, pipeline
