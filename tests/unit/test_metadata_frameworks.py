"""Formats, libraries and lineage from a repo's file list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from modelyard.metadata.frameworks import FrameworkReport, detect, lineage, repo_tags
from tests.unit.files import MINILM_DIR


def _reader(files: dict[str, Any]) -> Any:
    def read_small(path: str) -> bytes | None:
        value = files.get(path)
        if value is None:
            return None
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    return read_small


def _folder_reader(folder: Path) -> Any:
    def read_small(path: str) -> bytes | None:
        target = folder / path
        return target.read_bytes() if target.is_file() else None

    return read_small


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_real_sentence_transformers_folder() -> None:
    files = _files(MINILM_DIR)
    report = detect(files, _folder_reader(MINILM_DIR))
    assert report.formats == ("safetensors",)
    assert report.libraries == ("sentence-transformers", "transformers")
    assert report.library_name == "sentence-transformers"
    assert report.pipeline_tag == "sentence-similarity"
    assert not report.adapter and not report.quantized
    assert report.tags == ["safetensors", "sentence-transformers", "transformers", "bert"]
    assert report.problems == ()


def test_tiny_transformers_model_saved_by_save_pretrained(tmp_path: Path) -> None:
    torch.manual_seed(0)
    BertForSequenceClassification(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    ).save_pretrained(tmp_path)
    report = detect(_files(tmp_path), _folder_reader(tmp_path))
    assert report.library_name == "transformers"
    assert report.pipeline_tag == "text-classification"
    assert report.tags == ["safetensors", "transformers", "bert"]


@pytest.mark.parametrize(
    ("paths", "formats"),
    [
        (["pytorch_model.bin"], ("pytorch",)),
        (["model.pt", "weights.pth"], ("pytorch",)),
        (["training_args.bin", "model.safetensors"], ("safetensors",)),
        (["model-00001-of-00002.safetensors", "model.safetensors.index.json"], ("safetensors",)),
        (["tf_model.h5"], ("tf",)),
        (["saved_model/saved_model.pb", "saved_model/variables/variables.index"], ("tf",)),
        (["flax_model.msgpack"], ("jax",)),
        (["onnx/model.onnx", "onnx/model.onnx_data"], ("onnx",)),
        (["model.onnx"], ("onnx",)),
        (["model-Q4_K_M.gguf"], ("gguf",)),
        (["rust_model.ot"], ("rust",)),
        (["openvino/openvino_model.xml", "openvino/openvino_model.bin"], ("openvino",)),
        (["coreml/model.mlpackage/Data/weights/weight.bin"], ("coreml",)),
        (["model.tflite"], ("tflite",)),
        (["runs/events.out.tfevents.1700000000.host.1.0"], ("tensorboard",)),
        (
            [
                "pytorch_model.bin",
                "tf_model.h5",
                "flax_model.msgpack",
                "rust_model.ot",
                "model.onnx",
                "model.safetensors",
            ],
            ("pytorch", "tf", "jax", "rust", "onnx", "safetensors"),
        ),
        (["README.md", ".gitattributes"], ()),
    ],
)
def test_formats(paths: list[str], formats: tuple[str, ...]) -> None:
    assert detect(paths).formats == formats


def test_peft_adapter() -> None:
    files = {
        "adapter_config.json": {
            "base_model_name_or_path": "meta-llama/Llama-3.1-8B",
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": 8,
            "target_modules": ["q_proj", "v_proj"],
        }
    }
    report = detect(["adapter_config.json", "adapter_model.safetensors", "README.md"], _reader(files))
    assert report.adapter
    assert report.adapter_base_model == "meta-llama/Llama-3.1-8B"
    assert report.library_name == "peft"
    assert report.tags == ["safetensors", "peft"]
    assert lineage({}, report) == [("meta-llama/Llama-3.1-8B", "adapter")]
    # The card's base_model wins over adapter_config.json; the relation is still inferred.
    assert lineage({"base_model": "org/other"}, report) == [("org/other", "adapter")]
    explicit = {"base_model": "org/other", "base_model_relation": "finetune"}
    assert lineage(explicit, report) == [("org/other", "finetune")]


def test_adapter_with_a_local_base_path_has_no_base() -> None:
    files = {"adapter_config.json": {"base_model_name_or_path": "/home/me/checkpoints/base"}}
    report = detect(["adapter_config.json", "adapter_model.bin"], _reader(files))
    assert report.adapter and report.adapter_base_model is None
    assert lineage({}, report) == []


def test_gguf_repo_is_quantized() -> None:
    report = detect(["llama-Q4_K_M.gguf", "llama-Q8_0.gguf", "README.md"])
    assert report.quantized
    assert report.library_name == "gguf"
    assert lineage({"base_model": "meta-llama/Llama-3.1-8B"}, report) == [("meta-llama/Llama-3.1-8B", "quantized")]


@pytest.mark.parametrize(
    ("quantization", "tags"),
    [
        ({"quant_method": "gptq", "bits": 4}, ["gptq", "4-bit"]),
        ({"quant_method": "awq", "bits": 4}, ["awq", "4-bit"]),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, ["bitsandbytes", "4-bit"]),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, ["bitsandbytes", "8-bit"]),
        ({"quant_method": "compressed_tensors"}, ["compressed-tensors"]),
        ({}, []),
    ],
)
def test_quantization_config_in_config_json(quantization: dict[str, Any], tags: list[str]) -> None:
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "quantization_config": quantization}
    report = detect(["config.json", "model.safetensors"], _reader({"config.json": config}))
    assert report.quantized
    assert list(report.quantization_tags) == tags
    assert report.tags == ["safetensors", "transformers", "llama", *tags]
    assert lineage({"base_model": "meta-llama/Llama-3.1-8B"}, report)[0][1] == "quantized"


def test_autogptq_quantize_config_file() -> None:
    files = {"quantize_config.json": {"bits": 4, "group_size": 128, "desc_act": False}}
    report = detect(["quantize_config.json", "model.safetensors"], _reader(files))
    assert report.quantized and report.quantization_tags == ("gptq", "4-bit")


def test_diffusers_pipeline() -> None:
    files = {"model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0"}}
    paths = ["model_index.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json"]
    report = detect(paths, _reader(files))
    assert report.library_name == "diffusers"
    assert report.pipeline_tag == "text-to-image"
    img2img = detect(paths, _reader({"model_index.json": {"_class_name": "StableDiffusionImg2ImgPipeline"}}))
    assert img2img.pipeline_tag == "image-to-image"


def test_merge_and_finetune_relations() -> None:
    plain = detect(["model.safetensors"])
    assert lineage({"base_model": ["a/one", "b/two"]}, plain) == [("a/one", "merge"), ("b/two", "merge")]
    assert lineage({"base_model": "a/one"}, plain) == [("a/one", "finetune")]
    assert lineage({"base_model": "a/one", "base_model_relation": "bogus"}, plain) == [("a/one", "finetune")]
    assert lineage({}, plain) == []


def test_unreadable_small_files_are_reported_not_raised() -> None:
    files = {"config.json": b"{not json", "adapter_config.json": b"[1]", "model_index.json": b"\xff"}
    report = detect(["config.json", "adapter_config.json", "model_index.json", "model.bin"], _reader(files))
    assert {path for path, _ in report.problems} == {"config.json", "adapter_config.json", "model_index.json"}
    assert report.config is None and report.adapter_base_model is None
    assert report.library_name == "diffusers"
    assert report.pipeline_tag is None


def test_repo_tags_for_the_real_minilm_repo() -> None:
    files = _files(MINILM_DIR)
    readme = (MINILM_DIR / "README.md").read_text()
    from modelyard.metadata.cards import validate

    card = validate(readme, "model").data
    tags, library, pipeline = repo_tags(card, detect(files, _folder_reader(MINILM_DIR)), readme=readme)
    assert library == "sentence-transformers"
    assert pipeline == "sentence-similarity"
    assert tags[:5] == ["sentence-transformers", "safetensors", "transformers", "bert", "feature-extraction"]
    for expected in (
        "sentence-similarity",
        "en",
        "dataset:s2orc",
        "dataset:embedding-data/WikiAnswers",
        "arxiv:1904.06472",
        "arxiv:2104.08727",
        "license:apache-2.0",
    ):
        assert expected in tags
    assert not any(t.startswith("region:") for t in tags)
    assert len(tags) == len(set(tags))


def test_repo_tags_guess_library_and_pipeline_when_the_card_is_silent() -> None:
    report = FrameworkReport(formats=("gguf",), library_name="gguf", quantized=True, pipeline_tag=None)
    tags, library, pipeline = repo_tags({"base_model": "org/base", "license": "mit"}, report)
    assert library == "gguf" and pipeline is None
    assert tags == ["gguf", "base_model:org/base", "base_model:quantized:org/base", "license:mit"]
