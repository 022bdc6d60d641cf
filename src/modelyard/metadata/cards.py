"""Model and dataset cards: the YAML front matter of README.md.

:func:`parse_card` reads the front matter leniently (structure only); :func:`validate` checks it
as the Hub's ``validate-yaml`` does, keeping what is valid in ``data`` and listing errors and
warnings; :func:`derive_tags` turns card data into the tags the Hub publishes.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelyard.errors import InvalidInputError
from modelyard.ids import validate_name
from modelyard.metadata.evals import EvalResult, parse_model_index
from modelyard.metadata.vocabulary import (
    BASE_MODEL_RELATIONS,
    DATASET_TAG_KEYS,
    LICENSE_IDS,
    LICENSES,
    PIPELINE_TAGS,
    SPACE_COLORS,
    SPACE_SDKS,
)

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*\r?$", re.S | re.M)
#: Front matter larger than this is refused (cards with big model-index stay far below it).
MAX_FRONT_MATTER = 1024 * 1024
#: YAML aliases can make a small document expand enormously: count the expanded nodes.
MAX_NODES = 200_000
MAX_DEPTH = 64
EMPTY_METADATA_WARNING = "Empty or missing yaml metadata in repo card"
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{1,8})*\Z")
_LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]*\Z")
_ARXIV = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf)/|\barxiv:\s*)(\d{4}\.\d{4,5})(?:v\d+)?",
    re.IGNORECASE,
)

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _CardLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader with YAML 1.2 booleans, as the Hub reads cards: only true/false are
    booleans, so ``language: no`` (Norwegian) or ``on``/``yes`` stay strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


_CardLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass
class CardReport:
    """The parsed metadata and what is wrong with it."""

    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Filled by :func:`validate` for model cards.
    eval_results: list[EvalResult] = field(default_factory=list)
    base_models: list[tuple[str, str]] = field(default_factory=list)


class _TooLarge(Exception):
    pass


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return []


def front_matter(text: str) -> tuple[str | None, str]:
    """The YAML block (None if there is none) and the Markdown body after it."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end() :].lstrip("\r\n")


def _load(report: CardReport, text: str) -> dict[str, Any] | None:
    """The front matter as JSON-compatible data, or None (with the reason in ``report``)."""
    block, _ = front_matter(text)
    if block is None:
        return None
    if len(block) > MAX_FRONT_MATTER:
        report.errors.append(f"The README.md metadata is larger than {MAX_FRONT_MATTER} bytes")
        return None
    try:
        data = yaml.load(block, Loader=_CardLoader)  # a SafeLoader: plain data, no Python objects
        data = _plain(data, [MAX_NODES], 0)
    except yaml.YAMLError as exc:
        report.errors.append(f"Invalid YAML in the README.md metadata: {exc}")
        return None
    except (RecursionError, _TooLarge):
        report.errors.append("The README.md metadata is nested too deeply or expands too much (YAML aliases)")
        return None
    if data is None:
        return None
    if not isinstance(data, dict):
        report.errors.append("The README.md metadata must be a YAML mapping")
        return None
    return data


def _plain(value: Any, budget: list[int], depth: int) -> Any:
    """A JSON-compatible copy: dates become ISO strings, keys strings, sets lists; aliases are
    expanded within a node budget so that a "billion laughs" document fails fast."""
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooLarge
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v, budget, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_card(text: str) -> CardReport:
    """Parse the front matter; type errors become report errors, never exceptions."""
    report = CardReport()
    data = _load(report, text)
    if data is None:
        return report
    report.data = data
    for key in ("tags", "datasets", "language", "base_model", "metrics"):
        value = report.data.get(key)
        if value is not None and not isinstance(value, (str, list)):
            report.errors.append(f"'{key}' must be a string or a list of strings")
    for key in ("license", "library_name", "pipeline_tag"):
        value = report.data.get(key)
        if value is not None and not isinstance(value, str):
            report.errors.append(f"'{key}' must be a string")
    return report


# --- validation -------------------------------------------------------------------------------


class _Checker:
    """Moves each valid key of ``source`` into ``report.data``; records errors for the rest."""

    def __init__(self, source: dict[str, Any], report: CardReport) -> None:
        self.source = source
        self.report = report

    def error(self, message: str) -> None:
        self.report.errors.append(message)

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)

    def keep(self, key: str, value: Any) -> None:
        self.report.data[key] = value

    def string(self, key: str) -> str | None:
        value = self.source.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f'"{key}" must be a string')
            return None
        self.keep(key, value)
        return value

    def strings(self, key: str, check: Callable[[str], str | None] | None = None) -> list[str]:
        """A string or a list of strings; ``check`` returns an error message for a bad item."""
        value = self.source.get(key)
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.error(f'"{key}" must be a string or a list of strings')
            return []
        good: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.error(f'"{key}[{i}]" must be a string')
                continue
            problem = check(item) if check else None
            if problem:
                self.error(f'"{key}[{i}]" {problem}')
                continue
            good.append(item)
        if good:
            self.keep(key, value if isinstance(value, str) else good)
        return good

    def boolean(self, key: str) -> None:
        value = self.source.get(key)
        if value is None:
            return
        if isinstance(value, bool):
            self.keep(key, value)
        else:
            self.error(f'"{key}" must be a boolean')

    def one_of(self, key: str, allowed: frozenset[str]) -> str | None:
        value = self.string(key)
        if value is not None and value not in allowed:
            self.report.data.pop(key, None)
            self.error(f'"{key}" must be one of [{", ".join(sorted(allowed))}], not "{value}"')
            return None
        return value


def repo_id_problem(value: str) -> str | None:
    """Why ``value`` is not a repo id (``name`` or ``namespace/name``), or None if it is one."""
    parts = value.split("/")
    if len(parts) > 2:
        return f'"{value}" is not a valid repo id (namespace/name)'
    try:
        for part in parts:
            validate_name(part)
    except InvalidInputError:
        return f'"{value}" is not a valid repo id (namespace/name)'
    return None


def _language_problem(value: str) -> str | None:
    return None if _LANGUAGE.match(value) else f'"{value}" is not a language code (ISO 639-1, 639-2 or 639-3)'


def validate(text: str, repo_type: str = "model") -> CardReport:
    """Validate a README's metadata as the Hub's ``validate-yaml`` does for ``repo_type``.

    Errors: invalid YAML, a non-mapping, wrong types, unknown licence ids or pipeline tags, a
    malformed model-index. Warnings: empty metadata, other non-fatal issues. Only valid keys
    are kept in ``data``; unknown keys are kept as they are.
    """
    report = CardReport()
    source = _load(report, text)
    if source is None:
        if not report.errors:
            report.warnings.append(EMPTY_METADATA_WARNING)
        return report
    if not source:
        report.warnings.append(EMPTY_METADATA_WARNING)
        return report
    check = _Checker(source, report)
    _check_common(check, repo_type)
    if repo_type == "dataset":
        _check_dataset(check)
    elif repo_type == "space":
        _check_space(check)
    else:
        _check_model(check)
    # Keep the card's own key order; keys this module does not know are kept as they are.
    kept = report.data
    report.data = {k: kept.get(k, v) for k, v in source.items() if k in kept or k not in _CHECKED_KEYS}
    return report


_CHECKED_KEYS = frozenset(
    {
        "license",
        "license_name",
        "license_link",
        "language",
        "tags",
        "thumbnail",
        "pretty_name",
        "library_name",
        "pipeline_tag",
        "datasets",
        "metrics",
        "base_model",
        "base_model_relation",
        "new_version",
        "model-index",
        "model_name",
        "co2_eq_emissions",
        "widget",
        "inference",
        "paperswithcode_id",
        "configs",
        "viewer",
        "title",
        "emoji",
        "colorFrom",
        "colorTo",
        "sdk",
        "sdk_version",
        "python_version",
        "app_file",
        "app_port",
        "pinned",
        "models",
        "short_description",
        *DATASET_TAG_KEYS,
    }
)


def _check_common(check: _Checker, repo_type: str) -> None:
    _check_license(check, repo_type)
    check.strings("language")
    for i, code in enumerate(_as_list(check.report.data.get("language"))):
        problem = _language_problem(code)
        if problem:
            check.warn(f'"language[{i}]" {problem}')
    check.strings("tags")
    check.string("thumbnail")
    check.string("pretty_name")


def _check_license(check: _Checker, repo_type: str) -> None:
    value = check.source.get("license")
    if value is None:
        return
    licenses = value if isinstance(value, list) and repo_type == "dataset" else [value]
    good: list[str] = []
    for item in licenses:
        if not isinstance(item, str):
            check.error('"license" must be a string' + (" or a list of strings" if repo_type == "dataset" else ""))
            continue
        if item not in LICENSES:
            # The Hub's wording, naming the value; "other" takes license_name and license_link.
            hint = f' (did you mean "{item.lower()}"?)' if item.lower() in LICENSES else ""
            check.error(f'"license" must be one of [{", ".join(LICENSE_IDS)}], not "{item}"{hint}')
            continue
        good.append(item)
    if good:
        check.keep("license", value if isinstance(value, str) else good)
    name = check.string("license_name")
    link = check.string("license_link")
    if "other" in good:
        if name is None:
            check.error('"license_name" is required when "license" is "other"')
        elif not _LICENSE_NAME.match(name):
            check.error(f'"license_name" "{name}" must be lowercase letters, digits, ".", "+" and "-"')
            check.report.data.pop("license_name", None)
        if link is None:
            check.error('"license_link" is required when "license" is "other"')
    elif name is not None or link is not None:
        check.warn('"license_name" and "license_link" are only used when "license" is "other"')


def _check_model(check: _Checker) -> None:
    check.string("library_name")
    check.one_of("pipeline_tag", PIPELINE_TAGS)
    _check_dataset_ids(check, "datasets")
    check.strings("metrics")
    check.string("model_name")
    check.string("new_version")
    bases = check.strings("base_model", repo_id_problem)
    relation = check.one_of("base_model_relation", frozenset(BASE_MODEL_RELATIONS))
    if relation is not None and not bases:
        check.report.data.pop("base_model_relation", None)
        check.warn('"base_model_relation" is ignored without "base_model"')
    check.report.base_models = base_models(check.report.data)
    _check_co2(check)
    _check_widget(check)
    _check_inference(check)
    if "model-index" in check.source:
        index = parse_model_index(check.source["model-index"])
        check.report.errors.extend(index.errors)
        check.report.warnings.extend(index.warnings)
        check.report.eval_results = index.results
        if index.cleaned:
            check.keep("model-index", index.cleaned)


def _check_dataset_ids(check: _Checker, key: str) -> None:
    """Dataset names that are not repo ids are warned about and left out (they make no tag)."""
    good = []
    for i, name in enumerate(check.strings(key)):
        problem = repo_id_problem(name)
        if problem:
            check.warn(f'"{key}[{i}]" {problem}')
        else:
            good.append(name)
    if good:
        check.keep(key, check.source[key] if isinstance(check.source[key], str) else good)
    else:
        check.report.data.pop(key, None)


def _check_co2(check: _Checker) -> None:
    value = check.source.get("co2_eq_emissions")
    if value is None:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        check.keep("co2_eq_emissions", value)
        return
    if not isinstance(value, dict):
        check.error('"co2_eq_emissions" must be a number or a mapping')
        return
    emissions = value.get("emissions")
    if isinstance(emissions, bool) or not isinstance(emissions, (int, float)):
        check.error('"co2_eq_emissions.emissions" is required and must be a number (grams of CO2)')
        return
    for key in ("source", "training_type", "geographical_location", "hardware_used"):
        if key in value and not isinstance(value[key], str):
            check.error(f'"co2_eq_emissions.{key}" must be a string')
            return
    check.keep("co2_eq_emissions", value)


def _check_widget(check: _Checker) -> None:
    value = check.source.get("widget")
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        check.error('"widget" must be a list of mappings')
        return
    check.keep("widget", value)


def _check_inference(check: _Checker) -> None:
    value = check.source.get("inference")
    if value is None:
        return
    if isinstance(value, bool) or (isinstance(value, dict) and isinstance(value.get("parameters", {}), dict)):
        check.keep("inference", value)
    else:
        check.error('"inference" must be a boolean or a mapping with "parameters"')


def _check_dataset(check: _Checker) -> None:
    for key in DATASET_TAG_KEYS:
        check.strings(key)
    for i, task in enumerate(_as_list(check.report.data.get("task_categories"))):
        if task not in PIPELINE_TAGS:
            check.warn(f'"task_categories[{i}]" "{task}" is not a known task')
    value = check.source.get("paperswithcode_id")
    if value is not None and not isinstance(value, str):
        check.error('"paperswithcode_id" must be a string or null')
    elif "paperswithcode_id" in check.source:
        check.keep("paperswithcode_id", value)
    check.boolean("viewer")
    configs = check.source.get("configs")
    if configs is not None:
        if not isinstance(configs, list):
            check.error('"configs" must be a list')
        else:
            good = []
            for i, config in enumerate(configs):
                if not isinstance(config, dict) or not isinstance(config.get("config_name"), str):
                    check.error(f'"configs[{i}]" must be a mapping with a string "config_name"')
                else:
                    good.append(config)
            if good:
                check.keep("configs", good)


def _check_space(check: _Checker) -> None:
    check.string("title")
    check.string("emoji")
    check.string("short_description")
    check.one_of("colorFrom", SPACE_COLORS)
    check.one_of("colorTo", SPACE_COLORS)
    check.one_of("sdk", SPACE_SDKS)
    for key in ("sdk_version", "python_version"):
        value = check.source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check.warn(f'"{key}" should be a quoted string, like "{value}"')
            check.keep(key, str(value))
        else:
            check.string(key)
    check.string("app_file")
    port = check.source.get("app_port")
    if port is not None:
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            check.keep("app_port", port)
        else:
            check.error('"app_port" must be a port number')
    check.boolean("pinned")
    check.strings("models", repo_id_problem)
    _check_dataset_ids(check, "datasets")


# --- derived facts ----------------------------------------------------------------------------


def base_models(card: dict[str, Any], *, default_relation: str | None = None) -> list[tuple[str, str]]:
    """``base_model`` (a string or a list) with its relation: ``base_model_relation`` if the card
    gives a valid one, else ``default_relation``, else ``merge`` for several bases and
    ``finetune`` for one (adapters and quantizations are seen in the files: frameworks.lineage)."""
    bases = list(dict.fromkeys(b for b in _as_list(card.get("base_model")) if b and repo_id_problem(b) is None))
    relation = card.get("base_model_relation")
    if relation not in BASE_MODEL_RELATIONS:
        relation = default_relation or ("merge" if len(bases) > 1 else "finetune")
    return [(base, str(relation)) for base in bases]


def arxiv_ids(text: str) -> list[str]:
    """arXiv ids linked from a card (``arxiv.org/abs/…``, ``…/pdf/…``, ``arXiv:…``), in order."""
    return list(dict.fromkeys(_ARXIV.findall(text)))


def derive_tags(
    card: dict[str, Any],
    *,
    repo_type: str = "model",
    lineage: Sequence[tuple[str, str]] | None = None,
    arxiv: Sequence[str] = (),
) -> tuple[list[str], str | None, str | None]:
    """Tags the Hub derives from a card, plus ``library_name`` and ``pipeline_tag``.

    Models: library, card tags, pipeline tag, language codes, ``dataset:x``, ``arxiv:x``,
    ``base_model:x`` and ``base_model:{relation}:x`` (relations from ``lineage`` when the files
    were looked at, else from the card), ``license:x``. Datasets: card tags, ``key:value`` for the
    dataset facets, ``language:x``, ``arxiv:x``, ``license:x``. Spaces: the SDK, card tags,
    ``license:x``. No ``region:`` tag.
    """
    tags: list[str] = []
    library = card.get("library_name") if isinstance(card.get("library_name"), str) else None
    pipeline = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
    licenses = _as_list(card.get("license"))
    if repo_type == "dataset":
        tags.extend(_as_list(card.get("tags")))
        for key in DATASET_TAG_KEYS:
            tags.extend(f"{key}:{v}" for v in _as_list(card.get(key)))
        tags.extend(f"language:{code}" for code in _as_list(card.get("language")))
        tags.extend(f"arxiv:{a}" for a in arxiv)
        tags.extend(f"license:{lic}" for lic in licenses)
        return _unique(tags), None, None
    if repo_type == "space":
        sdk = card.get("sdk")
        tags.extend([sdk] if isinstance(sdk, str) else [])
        tags.extend(_as_list(card.get("tags")))
        tags.extend(f"license:{lic}" for lic in licenses)
        return _unique(tags), None, None
    if library:
        tags.append(library)
    tags.extend(_as_list(card.get("tags")))
    if pipeline:
        tags.append(pipeline)
    tags.extend(_as_list(card.get("language")))
    tags.extend(f"dataset:{d}" for d in _as_list(card.get("datasets")))
    tags.extend(f"arxiv:{a}" for a in arxiv)
    for base, relation in lineage if lineage is not None else base_models(card):
        tags.append(f"base_model:{base}")
        tags.append(f"base_model:{relation}:{base}")
    tags.extend(f"license:{lic}" for lic in licenses)
    return _unique(tags), library, pipeline


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in tags if t))
