"""config.json -> the ``config`` and ``transformersInfo`` fields, checked against transformers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoConfig,
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    ViTConfig,
    ViTForImageClassification,
)
from transformers.models.auto import modeling_auto

from modelyard.metadata.config import (
    ModelConfig,
    config_info,
    config_tags,
    default_library_name,
    default_pipeline_tag,
    is_sentence_transformers,
    parse_config,
    processor_class,
    transformers_info,
)
from modelyard.metadata.reader import MetadataError
from tests.unit.files import MINILM_DIR


def _tiny_bert() -> BertConfig:
    return BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)


def _saved_config(model: torch.nn.Module, folder: Path) -> ModelConfig:
    model.save_pretrained(folder)  # type: ignore[operator]
    return parse_config((folder / "config.json").read_text())


@pytest.mark.parametrize(
    ("build", "auto_model", "pipeline"),
    [
        (lambda: BertModel(_tiny_bert()), "AutoModel", "feature-extraction"),
        (lambda: BertForMaskedLM(_tiny_bert()), "AutoModelForMaskedLM", "fill-mask"),
        (
            lambda: BertForSequenceClassification(_tiny_bert()),
            "AutoModelForSequenceClassification",
            "text-classification",
        ),
        (
            lambda: BertForTokenClassification(_tiny_bert()),
            "AutoModelForTokenClassification",
            "token-classification",
        ),
        (
            lambda: BertForQuestionAnswering(_tiny_bert()),
            "AutoModelForQuestionAnswering",
            "question-answering",
        ),
        (
            lambda: LlamaForCausalLM(
                LlamaConfig(
                    vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
                )
            ),
            "AutoModelForCausalLM",
            "text-generation",
        ),
        (
            lambda: GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2)),
            "AutoModelForCausalLM",
            "text-generation",
        ),
        (
            lambda: T5ForConditionalGeneration(
                T5Config(vocab_size=100, d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16)
            ),
            "AutoModelForSeq2SeqLM",
            "text2text-generation",
        ),
        (
            lambda: ViTForImageClassification(
                ViTConfig(
                    hidden_size=32,
                    num_hidden_layers=1,
                    num_attention_heads=2,
                    intermediate_size=37,
                    image_size=32,
                    patch_size=8,
                )
            ),
            "AutoModelForImageClassification",
            "image-classification",
        ),
    ],
)
def test_tiny_saved_models(build: Any, auto_model: str, pipeline: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build()
    config = _saved_config(model, tmp_path)
    assert config.architectures == (type(model).__name__,)
    info = transformers_info(config, ["config.json", "model.safetensors"])
    assert info == {"auto_model": auto_model, "pipeline_tag": pipeline}
    # transformers itself loads this architecture through that Auto class.
    auto_class = getattr(modeling_auto, auto_model)
    assert type(model).__name__ in json.dumps(auto_class._model_mapping._model_mapping)
    assert default_pipeline_tag(config, ["config.json"]) == pipeline
    assert default_library_name(config, ["config.json"]) == "transformers"


def _configs_by_type() -> dict[str, dict[str, Any]]:
    configs: dict[str, dict[str, Any]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_type in modeling_auto.MODEL_MAPPING_NAMES:
            try:
                configs[model_type] = json.loads(AutoConfig.for_model(model_type).to_json_string())
            except Exception:  # a few model types need arguments; model_type alone then
                configs[model_type] = {"model_type": model_type}
    return configs


def _auto_classes_by_pair() -> dict[tuple[str, str], set[str]]:
    pairs: dict[tuple[str, str], set[str]] = {}
    for name in dir(modeling_auto):
        auto = getattr(modeling_auto, name)
        if name.startswith("AutoModel") and hasattr(auto, "_model_mapping"):
            for model_type, archs in auto._model_mapping._model_mapping.items():
                for arch in archs if isinstance(archs, (list, tuple)) else [archs]:
                    pairs.setdefault((model_type, arch), set()).add(name)
    return pairs


#: Popular architectures that must map exactly as transformers loads them.
POPULAR = [
    ("bert", "BertModel"),
    ("bert", "BertForMaskedLM"),
    ("roberta", "RobertaForSequenceClassification"),
    ("distilbert", "DistilBertForTokenClassification"),
    ("deberta-v2", "DebertaV2ForQuestionAnswering"),
    ("llama", "LlamaForCausalLM"),
    ("mistral", "MistralForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("gemma", "GemmaForCausalLM"),
    ("gpt2", "GPT2LMHeadModel"),
    ("phi3", "Phi3ForCausalLM"),
    ("t5", "T5ForConditionalGeneration"),
    ("bart", "BartForConditionalGeneration"),
    ("marian", "MarianMTModel"),
    ("mt5", "MT5ForConditionalGeneration"),
    ("t5", "T5EncoderModel"),
    ("whisper", "WhisperForConditionalGeneration"),
    ("wav2vec2", "Wav2Vec2ForCTC"),
    ("wav2vec2", "Wav2Vec2ForSequenceClassification"),
    ("hubert", "HubertForSequenceClassification"),
    ("vit", "ViTForImageClassification"),
    ("vit", "ViTModel"),
    ("convnext", "ConvNextForImageClassification"),
    ("detr", "DetrForObjectDetection"),
    ("segformer", "SegformerForSemanticSegmentation"),
    ("dpt", "DPTForDepthEstimation"),
    ("clip", "CLIPModel"),
    ("siglip", "SiglipModel"),
    ("owlvit", "OwlViTForObjectDetection"),
    ("sam", "SamModel"),
    ("llava", "LlavaForConditionalGeneration"),
    ("qwen2_vl", "Qwen2VLForConditionalGeneration"),
    ("gemma3", "Gemma3ForConditionalGeneration"),
    ("paligemma", "PaliGemmaForConditionalGeneration"),
    ("blip", "BlipForConditionalGeneration"),
    ("vision-encoder-decoder", "VisionEncoderDecoderModel"),
    ("tapas", "TapasForQuestionAnswering"),
    ("layoutlmv3", "LayoutLMv3ForTokenClassification"),
    ("videomae", "VideoMAEForVideoClassification"),
    ("speecht5", "SpeechT5ForTextToSpeech"),
    ("musicgen", "MusicgenForConditionalGeneration"),
    ("xlm", "XLMWithLMHeadModel"),
]


def test_mapping_agrees_with_transformers_auto_classes() -> None:
    """Every (model_type, architecture) transformers registers, with its default config: our
    ``auto_model`` must be one of the Auto classes that load it, for all popular ones and for
    nearly all of the ~1,500 registered pairs."""
    configs = _configs_by_type()
    pairs = _auto_classes_by_pair()
    disagree = []
    for (model_type, arch), autos in sorted(pairs.items()):
        raw = {**configs.get(model_type, {"model_type": model_type}), "architectures": [arch]}
        info = transformers_info(parse_config(json.dumps(raw)))
        assert info is not None
        if info["auto_model"] not in autos:
            disagree.append((model_type, arch, info["auto_model"], autos))
    popular_misses = [d for d in disagree if (d[0], d[1]) in POPULAR]
    assert popular_misses == []
    assert all(pair in pairs for pair in POPULAR)  # the list names real registered pairs
    assert len(pairs) > 1000
    assert len(disagree) / len(pairs) < 0.03, disagree


@pytest.mark.parametrize(
    ("model_type", "arch", "extra", "pipeline"),
    [
        ("llava", "LlavaForConditionalGeneration", {"vision_config": {}, "text_config": {}}, "image-text-to-text"),
        ("whisper", "WhisperForConditionalGeneration", {}, "automatic-speech-recognition"),
        ("wav2vec2", "Wav2Vec2ForSequenceClassification", {}, "audio-classification"),
        ("blip", "BlipForConditionalGeneration", {}, "image-to-text"),
        ("clip", "CLIPModel", {}, "zero-shot-image-classification"),
        ("owlv2", "Owlv2ForObjectDetection", {}, "zero-shot-object-detection"),
        ("dinov2", "Dinov2Model", {}, "image-feature-extraction"),
        ("tapas", "TapasForQuestionAnswering", {}, "table-question-answering"),
        ("bert", "BertForPreTraining", {}, None),
    ],
)
def test_pipeline_tags(model_type: str, arch: str, extra: dict[str, Any], pipeline: str | None) -> None:
    config = parse_config(json.dumps({"model_type": model_type, "architectures": [arch], **extra}))
    info = transformers_info(config)
    assert info is not None
    assert info.get("pipeline_tag") == pipeline
    assert set(info) <= {"auto_model", "custom_class", "pipeline_tag", "processor"}


def test_real_minilm_config() -> None:
    files = sorted(p.relative_to(MINILM_DIR).as_posix() for p in MINILM_DIR.rglob("*") if p.is_file())
    config = parse_config((MINILM_DIR / "config.json").read_bytes())
    assert config.model_type == "bert" and config.architectures == ("BertModel",)
    assert transformers_info(config, files) == {
        "auto_model": "AutoModel",
        "pipeline_tag": "feature-extraction",
        "processor": "AutoTokenizer",
    }
    assert is_sentence_transformers(files)
    assert default_pipeline_tag(config, files) == "sentence-similarity"
    assert default_library_name(config, files) == "sentence-transformers"
    assert config_info(config, (MINILM_DIR / "tokenizer_config.json").read_text()) == {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "tokenizer_config": {
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        },
    }
    assert config_tags(config) == ["bert"]


def test_custom_code_and_tokenizer_config_details() -> None:
    config = parse_config(
        json.dumps(
            {
                "model_type": "mymodel",
                "architectures": ["MyModelForCausalLM"],
                "auto_map": {
                    "AutoConfig": "configuration_my.MyConfig",
                    "AutoModelForCausalLM": "modeling_my.MyModelForCausalLM",
                },
                "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128},
            }
        )
    )
    assert transformers_info(config, ["tokenizer.json"]) == {
        "auto_model": "AutoModelForCausalLM",
        "custom_class": "modeling_my.MyModelForCausalLM",
        "pipeline_tag": "text-generation",
        "processor": "AutoTokenizer",
    }
    tokenizer = json.dumps(
        {
            "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False},
            "eos_token": "</s>",
            "chat_template": "{{ messages }}",
            "model_max_length": 4096,
            "pad_token": None,
        }
    )
    info = config_info(config, tokenizer)
    assert info["auto_map"]["AutoModelForCausalLM"] == "modeling_my.MyModelForCausalLM"
    assert info["quantization_config"] == {"quant_method": "gptq", "bits": 4}
    assert info["tokenizer_config"] == {"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ messages }}"}
    assert config_tags(config) == ["mymodel", "custom_code"]
    assert "tokenizer_config" not in config_info(config, "not json")


def test_custom_model_registered_only_under_a_task_class() -> None:
    config = parse_config(
        json.dumps(
            {
                "architectures": ["ChatThing"],
                "auto_map": {"AutoModelForCausalLM": ["modeling.ChatThing", None]},
            }
        )
    )
    assert transformers_info(config) == {
        "auto_model": "AutoModelForCausalLM",
        "custom_class": "modeling.ChatThing",
        "pipeline_tag": "text-generation",
    }


def test_processor_classes() -> None:
    text = parse_config('{"model_type": "bert", "architectures": ["BertModel"]}')
    vision = parse_config('{"model_type": "vit", "architectures": ["ViTForImageClassification"]}')
    audio = parse_config('{"model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"]}')
    assert processor_class(text, ["vocab.txt"]) == "AutoTokenizer"
    assert processor_class(text, ["sub/tokenizer.json"]) is None  # only root files count
    assert processor_class(vision, ["preprocessor_config.json"]) == "AutoImageProcessor"
    assert processor_class(audio, ["preprocessor_config.json"]) == "AutoFeatureExtractor"
    assert processor_class(text, ["preprocessor_config.json"], {"sampling_rate": 16000}) == "AutoFeatureExtractor"
    assert processor_class(vision, ["preprocessor_config.json", "tokenizer.json"]) == "AutoProcessor"
    assert processor_class(vision, ["processor_config.json"]) == "AutoProcessor"


def test_configs_without_architectures_and_bad_files() -> None:
    config = parse_config('{"model_type": "bert", "architectures": "BertModel"}')  # mistyped: ignored
    assert config.architectures == ()
    assert transformers_info(config) is None
    assert default_pipeline_tag(config) is None
    assert default_library_name(config) == "transformers"
    assert default_library_name(parse_config("{}")) is None
    assert default_pipeline_tag(None, ["modules.json"]) == "sentence-similarity"
    assert config_info(parse_config("{}")) == {}
    for bad in ("not json", "[1, 2]", '"text"', "[" * 100_000, b"\xff\xfe", "x" * (17 * 1024 * 1024)):
        with pytest.raises(MetadataError):
            parse_config(bad)
