"""Extractors: each fills some fields of RepoFacts from a repo's files (see services/indexer.py).

They run in order: the card and the file set first (tags, library, task, lineage), then the
weights headers (parameter counts), then config.json (``config`` and ``transformersInfo``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.catalog.facts import EvalRow, RepoFacts
from modelyard.catalog.repos import Repo
from modelyard.metadata import cards, config, frameworks, gguf, safetensors
from modelyard.metadata.reader import Read

if TYPE_CHECKING:
    from modelyard.services.indexer import Extractor, RepoFiles


def card_and_files(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    """Card metadata, eval results, and the tags, library, task and lineage of the repo."""
    readme = files.text("README.md")
    report = cards.validate(readme, repo.type) if readme is not None else cards.CardReport()
    facts.card_data = report.data or None
    facts.card_errors = list(report.errors)
    facts.eval_rows = [
        EvalRow(r.task_type, r.dataset_type, r.dataset_name, r.dataset_config, r.dataset_split,
                r.metric_type, r.metric_name, float(r.metric_value), r.verified)
        for r in report.eval_results
    ]
    if repo.type != "model":
        tags, library, pipeline = cards.derive_tags(report.data, repo_type=repo.type,
                                                    arxiv=cards.arxiv_ids(readme) if readme else ())
        facts.tags, facts.library_name, facts.pipeline_tag = tags, library, pipeline
        return

    def read_small(path: str) -> str | None:
        return files.text(path)

    detected = frameworks.detect(files.paths, read_small)
    facts.tags, facts.library_name, facts.pipeline_tag = frameworks.repo_tags(report.data, detected, readme=readme)
    facts.base_models = frameworks.lineage(report.data, detected)


def safetensors_params(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    index_path, singles = safetensors.select_sources(files.paths)
    if index_path is not None:
        raw = files.text(index_path)
        if raw is None:
            return
        index = safetensors.parse_index(raw)

        def open_shard(shard: str) -> tuple[Read, int]:
            return files.reader(safetensors.shard_path(index_path, shard))

        facts.safetensors = safetensors.combine(safetensors.parse_sharded(index, open_shard))
    elif singles:
        headers = {}
        for path in singles:
            read, size = files.reader(path)
            headers[path] = safetensors.parse_header(read, size)
        facts.safetensors = safetensors.combine(headers)
    else:
        return
    facts.num_parameters = facts.safetensors["total"]


def gguf_header(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    selected = gguf.select_files(files.paths)
    if not selected:
        return
    headers = []
    for path in selected:
        read, size = files.reader(path)
        headers.append(gguf.parse_header(read, size))
    facts.gguf = gguf.combine(headers)
    quantization = headers[0].quantization
    if quantization:
        facts.gguf.setdefault("quantization", quantization)
    if facts.num_parameters is None:
        facts.num_parameters = facts.gguf.get("total")


def transformers_config(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    text = files.text("config.json")
    if text is None or repo.type != "model":
        return
    parsed = config.parse_config(text)
    facts.config = config.config_info(parsed, files.text("tokenizer_config.json"))
    preprocessor = files.json("preprocessor_config.json")
    facts.transformers_info = config.transformers_info(parsed, files.paths, preprocessor)


EXTRACTORS: list[Extractor] = [card_and_files, safetensors_params, gguf_header, transformers_config]
