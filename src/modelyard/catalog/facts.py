"""What the indexer extracted from a repo's files: catalog columns, lineage and eval results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from modelyard.catalog.repos import Repo, _repo
from modelyard.catalog.tables import eval_results, repo_relations, repo_tags, repos
from modelyard.catalog.visibility import EVERYTHING, Visibility


@dataclass(frozen=True)
class EvalRow:
    task_type: str
    dataset_type: str
    dataset_name: str | None
    dataset_config: str | None
    dataset_split: str | None
    metric_type: str
    metric_name: str | None
    metric_value: float
    verified: bool


@dataclass
class RepoFacts:
    """Everything derived from one revision of a repo's files."""

    card_data: dict[str, Any] | None = None
    card_errors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    library_name: str | None = None
    pipeline_tag: str | None = None
    num_parameters: int | None = None
    safetensors: dict[str, Any] | None = None
    gguf: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    transformers_info: dict[str, Any] | None = None
    base_models: list[tuple[str, str]] = field(default_factory=list)  # (base repo id, relation)
    eval_rows: list[EvalRow] = field(default_factory=list)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def store(conn: Connection, repo_id: int, commit: str, facts: RepoFacts) -> None:
    conn.execute(update(repos).where(repos.c.id == repo_id).values(
        card_data=_json(facts.card_data),
        card_errors=_json(facts.card_errors or None),
        tags=json.dumps(facts.tags),
        library_name=facts.library_name,
        pipeline_tag=facts.pipeline_tag,
        num_parameters=facts.num_parameters,
        safetensors=_json(facts.safetensors),
        gguf=_json(facts.gguf),
        config=_json(facts.config),
        transformers_info=_json(facts.transformers_info),
        indexed_commit=commit,
    ))
    conn.execute(delete(repo_tags).where(repo_tags.c.repo_id == repo_id))
    if facts.tags:
        conn.execute(insert(repo_tags), [{"repo_id": repo_id, "tag": t} for t in sorted(set(facts.tags))])
    conn.execute(delete(repo_relations).where(repo_relations.c.repo_id == repo_id))
    seen: set[str] = set()
    rows = []
    for base, relation in facts.base_models:
        if base.lower() not in seen:
            seen.add(base.lower())
            rows.append({"repo_id": repo_id, "base_key": base.lower(), "base_id": base, "relation": relation})
    if rows:
        conn.execute(insert(repo_relations), rows)
    conn.execute(delete(eval_results).where(eval_results.c.repo_id == repo_id))
    if facts.eval_rows:
        conn.execute(insert(eval_results), [{"repo_id": repo_id, **row.__dict__} for row in facts.eval_rows])


def base_models(conn: Connection, repo_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(repo_relations.c.base_id, repo_relations.c.relation).where(repo_relations.c.repo_id == repo_id)
        .order_by(repo_relations.c.base_key)
    )
    return [(r.base_id, r.relation) for r in rows]


def base_models_of(conn: Connection, repo_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """``base_models`` of several repos in one statement."""
    out: dict[int, list[tuple[str, str]]] = {pk: [] for pk in repo_ids}
    if repo_ids:
        rows = conn.execute(
            select(repo_relations.c.repo_id, repo_relations.c.base_id, repo_relations.c.relation)
            .where(repo_relations.c.repo_id.in_(repo_ids)).order_by(repo_relations.c.repo_id, repo_relations.c.base_key)
        )
        for r in rows:
            out[r.repo_id].append((r.base_id, r.relation))
    return out


def children_counts(conn: Connection, repo_keys: list[str], visible: Visibility = EVERYTHING) -> dict[str, int]:
    """``children_count`` of several repos (by key) in one statement."""
    out = dict.fromkeys(repo_keys, 0)
    if repo_keys:
        stmt = (
            select(repo_relations.c.base_key, func.count()).select_from(repo_relations)
            .join(repos, repos.c.id == repo_relations.c.repo_id)
            .where(repo_relations.c.base_key.in_(repo_keys), repos.c.type == "model")
            .group_by(repo_relations.c.base_key)
        )
        stmt = stmt.where(visible.repos())
        for key, count in conn.execute(stmt):
            out[key] = int(count)
    return out


def children_count(conn: Connection, repo_key: str, visible: Visibility = EVERYTHING) -> int:
    """Models that name ``repo_key`` as their base, counting only the private ones ``visible``,
    as ``children`` lists them."""
    # The children's ids first (the base_key index), then those rows by primary key: joined in one
    # statement, SQLite walked every model by its type index instead (30 ms at 30,000 repos).
    ids = [r[0] for r in conn.execute(select(repo_relations.c.repo_id).where(repo_relations.c.base_key == repo_key))]
    if not ids:
        return 0
    stmt = select(func.count()).select_from(repos).where(repos.c.id.in_(ids), repos.c.type == "model")
    stmt = stmt.where(visible.repos())
    return int(conn.execute(stmt).scalar_one())


def children(conn: Connection, repo_key: str, relation: str | None) -> list[tuple[Repo, str]]:
    stmt = (
        select(repos, repo_relations.c.relation)
        .join(repo_relations, repo_relations.c.repo_id == repos.c.id)
        .where(repo_relations.c.base_key == repo_key, repos.c.type == "model")
        .order_by(repos.c.id)
    )
    if relation:
        stmt = stmt.where(repo_relations.c.relation == relation)
    return [(_repo(r), r.relation) for r in conn.execute(stmt)]


@dataclass(frozen=True)
class BoardEntry:
    repo: Repo
    value: float
    verified: bool
    dataset_name: str | None
    metric_name: str | None


def leaderboard(
    conn: Connection, task_type: str, dataset_type: str, metric_type: str, limit: int, ascending: bool,
    visible: Visibility = EVERYTHING,
) -> list[BoardEntry]:
    """Models ranked by their best reported value of a metric on a task and dataset, among the
    repos the caller may see (private ones only if ``visible``): a page
    is filled with visible entries, in two statements whatever its size."""
    best = func.min(eval_results.c.metric_value) if ascending else func.max(eval_results.c.metric_value)
    sub = (
        select(eval_results.c.repo_id, best.label("value"))
        .where(eval_results.c.task_type == task_type, eval_results.c.dataset_type == dataset_type,
               eval_results.c.metric_type == metric_type)
        .group_by(eval_results.c.repo_id)
        .subquery()
    )
    order = sub.c.value.asc() if ascending else sub.c.value.desc()
    stmt = select(repos, sub.c.value).join(sub, sub.c.repo_id == repos.c.id)
    stmt = stmt.where(visible.repos())
    rows = conn.execute(stmt.order_by(order, repos.c.id).limit(limit)).all()
    details: dict[tuple[int, float], Any] = {}
    if rows:
        for d in conn.execute(
            select(eval_results.c.repo_id, eval_results.c.metric_value, eval_results.c.verified,
                   eval_results.c.dataset_name, eval_results.c.metric_name)
            .where(eval_results.c.repo_id.in_([r.id for r in rows]), eval_results.c.task_type == task_type,
                   eval_results.c.dataset_type == dataset_type, eval_results.c.metric_type == metric_type)
            .order_by(eval_results.c.id)
        ):
            details.setdefault((d.repo_id, d.metric_value), d)
    out = []
    for row in rows:
        detail = details.get((row.id, row.value))
        out.append(BoardEntry(_repo(row), float(row.value), bool(detail and detail.verified),
                              detail.dataset_name if detail else None, detail.metric_name if detail else None))
    return out
