"""Frameworks, formats and lineage, from the list of a repo's files.

The Hub tags a model with the formats its files are in (``pytorch`` for ``*.bin``/``*.pt``,
``safetensors``, ``tf``, ``jax``, ``onnx``, ``gguf``, ...) and with the libraries that load it
(``transformers``, ``sentence-transformers``, ``diffusers``, ``peft``), and guesses
``library_name`` and the relation to a base model when the card does not say. A few small files
are read for that through the caller's ``read_small(path)``: config.json, adapter_config.json,
model_index.json and quantization configs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.metadata import cards
from modelyard.metadata.config import (
    ModelConfig,
    config_tags,
    default_pipeline_tag,
    is_sentence_transformers,
    load_json_object,
    parse_config,
)
from modelyard.metadata.reader import MetadataError
from modelyard.metadata.vocabulary import BASE_MODEL_RELATIONS

ReadSmall = Callable[[str], bytes | str | None]
"""``read_small(path)`` returns a small file's content, or None if it is absent or too large."""

#: Format tags in the order the Hub lists them.
FORMAT_ORDER = (
    "pytorch",
    "tf",
    "jax",
    "rust",
    "coreml",
    "onnx",
    "safetensors",
    "openvino",
    "tflite",
    "keras",
    "gguf",
    "tensorboard",
)
#: Trainer state that is pickled but holds no weights.
_NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"})
#: AutoGPTQ and AutoAWQ quantization config files -> their method.
_QUANT_FILES = {"quantize_config.json": "gptq", "quant_config.json": "awq"}


@dataclass(frozen=True)
class FrameworkReport:
    """What the file list says about a repo."""

    #: Format tags (pytorch, safetensors, ...), in the Hub's order.
    formats: tuple[str, ...] = ()
    #: Libraries whose files are present (transformers, sentence-transformers, diffusers, peft, ...).
    libraries: tuple[str, ...] = ()
    #: The library that loads the repo, when the card names none.
    library_name: str | None = None
    #: The task, when the card names none.
    pipeline_tag: str | None = None
    #: A PEFT adapter (adapter_config.json / adapter_model.*).
    adapter: bool = False
    #: ``base_model_name_or_path`` from adapter_config.json.
    adapter_base_model: str | None = None
    #: GGUF files, or a quantization config (config.json ``quantization_config`` or AutoGPTQ/AWQ).
    quantized: bool = False
    #: Quantization tags: the method (gptq, awq, bitsandbytes, ...) and ``{bits}-bit``.
    quantization_tags: tuple[str, ...] = ()
    config: ModelConfig | None = None
    #: Small files that could not be parsed (path, reason); detection went on without them.
    problems: tuple[tuple[str, str], ...] = field(default=())

    @property
    def tags(self) -> list[str]:
        """File-derived tags: formats, libraries, model type, quantization, ``custom_code``."""
        tags = [*self.formats, *self.libraries]
        if self.config is not None:
            tags.extend(config_tags(self.config))
        tags.extend(self.quantization_tags)
        return list(dict.fromkeys(tags))


def _formats(paths: Sequence[str]) -> list[str]:
    found: set[str] = set()
    for path in paths:
        name = posixpath.basename(path)
        lower = name.lower()
        # OpenVINO and Core ML keep their weights in .bin files of their own.
        if (
            lower.endswith((".bin", ".pt", ".pth"))
            and name not in _NOT_WEIGHTS
            and not (name.startswith("openvino") or ".mlpackage/" in path)
        ):
            found.add("pytorch")
        if lower.endswith(".safetensors") or lower.endswith(".safetensors.index.json"):
            found.add("safetensors")
        if name in ("tf_model.h5", "saved_model.pb", "saved_model.pbtxt") or name.startswith("tf_model-"):
            found.add("tf")
        if name.startswith("flax_model") and lower.endswith((".msgpack", ".msgpack.index.json")):
            found.add("jax")
        if name == "rust_model.ot":
            found.add("rust")
        if lower.endswith((".mlmodel", ".mlpackage")) or ".mlpackage/" in path:
            found.add("coreml")
        if lower.endswith((".onnx", ".onnx_data", ".onnx.data")):
            found.add("onnx")
        if name.startswith("openvino") and lower.endswith(".xml"):
            found.add("openvino")
        if lower.endswith(".tflite"):
            found.add("tflite")
        if lower.endswith(".keras") or name == "keras_metadata.pb":
            found.add("keras")
        if lower.endswith(".gguf"):
            found.add("gguf")
        if name.startswith("events.out.tfevents"):
            found.add("tensorboard")
    return [f for f in FORMAT_ORDER if f in found]


def _read_json(read_small: ReadSmall | None, path: str, problems: list[tuple[str, str]]) -> dict[str, Any] | None:
    if read_small is None:
        return None
    content = read_small(path)
    if content is None:
        return None
    try:
        return load_json_object(content, path)
    except MetadataError as exc:
        problems.append((path, exc.message))
        return None


def _quantization(
    config: ModelConfig | None, names: set[str], read_small: ReadSmall | None, problems: list[tuple[str, str]]
) -> tuple[bool, list[str]]:
    """Whether the weights are quantized, and the tags that say how."""
    tags: list[str] = []
    quant = config.quantization_config if config is not None else None
    method: Any = None
    bits: Any = None
    for file_name, file_method in _QUANT_FILES.items():
        if quant is None and file_name in names:
            quant = _read_json(read_small, file_name, problems) or {}
            method = quant.get("quant_method") or file_method
            bits = quant.get("bits", quant.get("w_bit"))
    if quant is None:
        return False, tags
    method = method or quant.get("quant_method")
    bits = bits if bits is not None else quant.get("bits")
    if quant.get("load_in_4bit") is True:
        bits = 4
    elif quant.get("load_in_8bit") is True:
        bits = 8
    if isinstance(method, str) and method:
        tags.append(method.replace("_", "-"))
    if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= 64:
        tags.append(f"{bits}-bit")
    return True, tags


def _read_config(read_small: ReadSmall | None, names: set[str], problems: list[tuple[str, str]]) -> ModelConfig | None:
    content = read_small("config.json") if read_small is not None and "config.json" in names else None
    if content is None:
        return None
    try:
        return parse_config(content)
    except MetadataError as exc:
        problems.append(("config.json", exc.message))
        return None


def detect(paths: Iterable[str], read_small: ReadSmall | None = None) -> FrameworkReport:
    """Formats, libraries, a ``library_name``/``pipeline_tag`` guess and lineage hints from the
    repo's file paths (and, through ``read_small``, a few small files at the repo root)."""
    all_paths = list(paths)
    names = {p for p in all_paths if "/" not in p}
    problems: list[tuple[str, str]] = []
    formats = _formats(all_paths)

    config = _read_config(read_small, names, problems)

    libraries: list[str] = []
    sentence_transformers = is_sentence_transformers(names)
    if sentence_transformers:
        libraries.append("sentence-transformers")
    diffusers = "model_index.json" in names
    if diffusers:
        libraries.append("diffusers")
    adapter = "adapter_config.json" in names or any(n.startswith("adapter_model.") for n in names)
    adapter_base: str | None = None
    if adapter:
        libraries.append("peft")
        adapter_config = _read_json(read_small, "adapter_config.json", problems)
        base = adapter_config.get("base_model_name_or_path") if adapter_config else None
        if isinstance(base, str) and cards.repo_id_problem(base) is None:
            adapter_base = base
    transformers = config is not None and bool(config.architectures or config.model_type)
    if transformers:
        libraries.append("transformers")
    timm = config is not None and not transformers and "architecture" in config.raw and "pretrained_cfg" in config.raw
    if timm:
        libraries.append("timm")

    quantized, quant_tags = _quantization(config, names, read_small, problems)
    quantized = quantized or "gguf" in formats

    library_name: str | None = None
    for candidate, present in (
        ("sentence-transformers", sentence_transformers),
        ("diffusers", diffusers),
        ("peft", adapter),
        ("transformers", transformers),
        ("timm", timm),
        ("gguf", "gguf" in formats),
        ("onnx", "onnx" in formats),
        ("keras", "keras" in formats),
    ):
        if present:
            library_name = candidate
            break

    pipeline = default_pipeline_tag(config, names)
    if pipeline is None and diffusers:
        pipeline = _diffusers_pipeline(read_small, problems)
    return FrameworkReport(
        formats=tuple(formats),
        libraries=tuple(libraries),
        library_name=library_name,
        pipeline_tag=pipeline,
        adapter=adapter,
        adapter_base_model=adapter_base,
        quantized=quantized,
        quantization_tags=tuple(quant_tags),
        config=config,
        problems=tuple(problems),
    )


def _diffusers_pipeline(read_small: ReadSmall | None, problems: list[tuple[str, str]]) -> str | None:
    """The task of a diffusers pipeline, from ``_class_name`` in model_index.json."""
    index = _read_json(read_small, "model_index.json", problems)
    class_name = index.get("_class_name") if index else None
    if not isinstance(class_name, str):
        return None
    for marker, task in (
        ("Img2Img", "image-to-image"),
        ("Inpaint", "image-to-image"),
        ("ImageToVideo", "image-to-video"),
        ("TextToVideo", "text-to-video"),
        ("Video", "text-to-video"),
        ("Audio", "text-to-audio"),
    ):
        if marker in class_name:
            return task
    return "text-to-image" if class_name.endswith("Pipeline") else None


def lineage(card: dict[str, Any], report: FrameworkReport) -> list[tuple[str, str]]:
    """(base model id, relation) pairs, as the Hub infers them.

    Bases come from the card's ``base_model``, else from adapter_config.json. The relation is
    the card's ``base_model_relation`` if valid; otherwise ``adapter`` for a PEFT adapter,
    ``quantized`` for GGUF files or a quantization config, ``merge`` for several bases, else
    ``finetune``.
    """
    relation = card.get("base_model_relation")
    bases = [base for base, _ in cards.base_models(card)]
    if not bases and report.adapter_base_model:
        bases = [report.adapter_base_model]
    if relation not in BASE_MODEL_RELATIONS:
        if report.adapter:
            relation = "adapter"
        elif report.quantized:
            relation = "quantized"
        elif len(bases) > 1:
            relation = "merge"
        else:
            relation = "finetune"
    return [(base, str(relation)) for base in bases]


def repo_tags(
    card: dict[str, Any], report: FrameworkReport, *, readme: str | None = None
) -> tuple[list[str], str | None, str | None]:
    """All the tags of a model repo, with its ``library_name`` and ``pipeline_tag``.

    The card's ``library_name``/``pipeline_tag`` win over the guesses from the files. Tags:
    library, formats and other libraries, model type, quantization, then the card-derived tags
    (card tags, pipeline, languages, datasets, arXiv ids linked from ``readme``, base models with
    their relation, licence).
    """
    card_tags, library, pipeline = cards.derive_tags(
        card, lineage=lineage(card, report), arxiv=cards.arxiv_ids(readme) if readme else ()
    )
    library = library or report.library_name
    pipeline = pipeline or report.pipeline_tag
    tags = [library] if library else []
    tags.extend(report.tags)
    tags.extend(card_tags)
    if pipeline:
        tags.append(pipeline)
    return list(dict.fromkeys(t for t in tags if t)), library, pipeline
