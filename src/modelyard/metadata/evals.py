"""Evaluation results: the ``model-index`` of a model card, as rows.

The structure (from the Hub's model card spec)::

    model-index:
    - name: <model name>
      results:
      - task: {type: <task id>, name: <display name>}
        dataset: {type: <dataset id>, name: <display name>, config, split, revision, args}
        metrics:
        - {type: <metric id>, value: <number>, name, config, args, verified, verifyToken}
        source: {name, url}

``task.type``, ``dataset.type``, ``dataset.name``, ``metrics[].type`` and ``metrics[].value``
are required. A bad result or metric is skipped and reported by its path; the rest is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_TYPE_LENGTH = 128
MAX_NAME_LENGTH = 256


@dataclass(frozen=True)
class EvalResult:
    """One metric value of a model on a task and dataset."""

    task_type: str
    dataset_type: str
    dataset_name: str
    metric_type: str
    metric_value: float
    task_name: str | None = None
    dataset_config: str | None = None
    dataset_split: str | None = None
    dataset_revision: str | None = None
    metric_name: str | None = None
    metric_config: str | None = None
    verified: bool = False
    model_name: str | None = None
    source_name: str | None = None
    source_url: str | None = None


@dataclass
class ModelIndex:
    """Rows, the cleaned ``model-index`` (bad parts removed), errors and warnings."""

    results: list[EvalResult] = field(default_factory=list)
    cleaned: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Invalid(Exception):
    pass


class _NotANumber(_Invalid):
    """A metric value the Hub accepts but that cannot be ranked: a warning, not an error."""


def _required(obj: dict[str, Any], key: str, path: str, *, limit: int = MAX_NAME_LENGTH) -> str:
    text = _text(obj, key, path, limit=limit)
    if text is None:
        raise _Invalid(f'"{path}.{key}" is required')
    return text


def _text(obj: dict[str, Any], key: str, path: str, *, limit: int = MAX_NAME_LENGTH) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Invalid(f'"{path}.{key}" must be a string')
    text = str(value)
    if len(text) > limit:
        raise _Invalid(f'"{path}.{key}" is longer than {limit} characters')
    return text


def _mapping(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        raise _Invalid(f'"{path}.{key}" is required')
    if not isinstance(value, dict):
        raise _Invalid(f'"{path}.{key}" must be a mapping')
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise _Invalid(f'"{path}.value" must be a number or a string')
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removesuffix("%"))
        except ValueError:
            raise _NotANumber(f'"{path}.value" {value[:40]!r} is not a number: it is kept but not ranked') from None
    else:
        raise _Invalid(f'"{path}.value" must be a number or a string')
    if not math.isfinite(number):
        raise _NotANumber(f'"{path}.value" is not a finite number: it is kept but not ranked')
    return number


def parse_model_index(value: Any) -> ModelIndex:
    """Parse a card's ``model-index`` value; never raises."""
    out = ModelIndex()
    if value is None:
        return out
    if not isinstance(value, list):
        out.errors.append('"model-index" must be a list')
        return out
    for i, entry in enumerate(value):
        path = f"model-index[{i}]"
        if not isinstance(entry, dict):
            out.errors.append(f'"{path}" must be a mapping')
            continue
        try:
            name = _required(entry, "name", path)
        except _Invalid as exc:
            out.errors.append(str(exc))
            continue
        results = entry.get("results")
        if not isinstance(results, list):
            out.errors.append(f'"{path}.results" must be a list')
            continue
        kept_results = []
        for j, result in enumerate(results):
            kept = _result(result, f"{path}.results[{j}]", name, out)
            if kept is not None:
                kept_results.append(kept)
        out.cleaned.append({**entry, "results": kept_results})
    return out


def _result(result: Any, path: str, model_name: str, out: ModelIndex) -> dict[str, Any] | None:
    """Append the rows of one result; return it without its bad metrics, or None if unusable."""
    if not isinstance(result, dict):
        out.errors.append(f'"{path}" must be a mapping')
        return None
    try:
        task = _mapping(result, "task", path)
        dataset = _mapping(result, "dataset", path)
        task_type = _required(task, "type", f"{path}.task", limit=MAX_TYPE_LENGTH)
        task_name = _text(task, "name", f"{path}.task")
        dpath = f"{path}.dataset"
        dataset_type = _required(dataset, "type", dpath)
        dataset_name = _required(dataset, "name", dpath)
        dataset_config = _text(dataset, "config", dpath)
        dataset_split = _text(dataset, "split", dpath, limit=MAX_TYPE_LENGTH)
        dataset_revision = _text(dataset, "revision", dpath)
        source_name = source_url = None
        if result.get("source") is not None:
            source = _mapping(result, "source", path)
            source_name = _text(source, "name", f"{path}.source")
            source_url = _required(source, "url", f"{path}.source", limit=2048)
        metrics = result.get("metrics")
        if not isinstance(metrics, list):
            raise _Invalid(f'"{path}.metrics" must be a list')
    except _Invalid as exc:
        out.errors.append(str(exc))
        return None
    kept_metrics = []
    for k, metric in enumerate(metrics):
        mpath = f"{path}.metrics[{k}]"
        try:
            if not isinstance(metric, dict):
                raise _Invalid(f'"{mpath}" must be a mapping')
            metric_type = _required(metric, "type", mpath, limit=MAX_TYPE_LENGTH)
            if metric.get("value") is None:
                raise _Invalid(f'"{mpath}.value" is required')
            metric_name = _text(metric, "name", mpath)
            metric_config = _text(metric, "config", mpath)
            verified = metric.get("verified", False)
            if not isinstance(verified, bool):
                raise _Invalid(f'"{mpath}.verified" must be a boolean')
            number = _number(metric["value"], mpath)
        except _NotANumber as exc:
            out.warnings.append(str(exc))
            kept_metrics.append(metric)
            continue
        except _Invalid as exc:
            out.errors.append(str(exc))
            continue
        kept_metrics.append(metric)
        out.results.append(
            EvalResult(
                task_type=task_type,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                metric_type=metric_type,
                metric_value=number,
                task_name=task_name,
                dataset_config=dataset_config,
                dataset_split=dataset_split,
                dataset_revision=dataset_revision,
                metric_name=metric_name,
                metric_config=metric_config,
                verified=verified,
                model_name=model_name,
                source_name=source_name,
                source_url=source_url,
            )
        )
    return {**result, "metrics": kept_metrics}
