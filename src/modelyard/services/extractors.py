"""Extractors: each fills some fields of RepoFacts from a repo's files (see services/indexer.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.catalog.facts import EvalRow, RepoFacts
from modelyard.catalog.repos import Repo
from modelyard.metadata import gguf, safetensors
from modelyard.metadata.cards import derive_tags, parse_card
from modelyard.metadata.reader import Read

if TYPE_CHECKING:
    from modelyard.services.indexer import Extractor, RepoFiles

MAX_GGUF_FILES = 1


def card(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    text = files.text("README.md")
    if text is None:
        return
    report = parse_card(text)
    facts.card_data = report.data or None
    facts.card_errors = list(report.errors)
    tags, library, pipeline = derive_tags(report.data)
    facts.tags.extend(t for t in tags if t not in facts.tags)
    facts.library_name = facts.library_name or library
    facts.pipeline_tag = facts.pipeline_tag or pipeline


def safetensors_params(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    index_path = next((p for p in files.paths if p.endswith("model.safetensors.index.json")), None)
    if index_path is not None:
        raw = files.text(index_path)
        if raw is None:
            return
        index = safetensors.parse_index(raw)

        def open_shard(shard: str) -> tuple[Read, int]:
            return files.reader(safetensors.shard_path(index_path, shard))

        facts.safetensors = safetensors.combine(safetensors.parse_sharded(index, open_shard))
    else:
        single = [p for p in files.paths if p.endswith(".safetensors")]
        if not single:
            return
        path = "model.safetensors" if "model.safetensors" in single else single[0]
        read, size = files.reader(path)
        facts.safetensors = safetensors.combine({path: safetensors.parse_header(read, size)})
    facts.num_parameters = facts.safetensors["total"]


def gguf_header(repo: Repo, files: RepoFiles, facts: RepoFacts) -> None:
    candidates = sorted((p for p in files.paths if p.endswith(".gguf")), key=lambda p: -(files.size(p) or 0))
    if not candidates:
        return
    read, size = files.reader(candidates[0])
    header = gguf.parse_header(read, size)
    facts.gguf = header.as_info()
    quant = header.quantization
    if quant and "quantization" not in facts.gguf:
        facts.gguf["quantization"] = quant
    if facts.num_parameters is None:
        facts.num_parameters = header.total
    for tag in ("gguf",):
        if tag not in facts.tags:
            facts.tags.append(tag)


EXTRACTORS: list[Extractor] = [card, safetensors_params, gguf_header]
__all__ = ["EXTRACTORS", "EvalRow"]
