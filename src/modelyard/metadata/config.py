"""config.json of a ``transformers`` model: the ``config`` and ``transformersInfo`` fields.

The Hub reads ``model_type`` and ``architectures`` from config.json. The first architecture's
class name says which ``Auto*`` class loads the model and which pipeline it serves
(``LlamaForCausalLM`` -> ``AutoModelForCausalLM`` + ``text-generation``); that pipeline is the
repo's ``pipeline_tag`` when its card names none. Sentence-transformers repos (``modules.json``
or ``config_sentence_transformers.json``) are ``sentence-similarity`` models instead.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.metadata.reader import MetadataError

#: config.json (and tokenizer_config.json) files larger than this are not parsed.
MAX_CONFIG_LENGTH = 16 * 1024 * 1024

SENTENCE_TRANSFORMERS_FILES = ("modules.json", "config_sentence_transformers.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
)
PROCESSOR_FILES = ("processor_config.json", "chat_template.json")
PREPROCESSOR_FILE = "preprocessor_config.json"
#: Keys of tokenizer_config.json that the Hub copies into ``config.tokenizer_config``.
TOKENIZER_CONFIG_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
    "chat_template",
    "use_default_system_prompt",
)

# Model types whose sequence classifiers take audio, not text.
_AUDIO_TYPES = frozenset(
    {
        "wav2vec2",
        "wav2vec2-conformer",
        "wav2vec2-bert",
        "hubert",
        "wavlm",
        "data2vec-audio",
        "unispeech",
        "unispeech-sat",
        "sew",
        "sew-d",
        "whisper",
        "audio-spectrogram-transformer",
    }
)
_SPEECH_SEQ2SEQ_TYPES = frozenset(
    {
        "whisper",
        "speech_to_text",
        "speech-encoder-decoder",
        "moonshine",
        "moonshine_streaming",
        "canary",
        "cohere_asr",
        "kyutai_speech_to_text",
        "pop2piano",
        "dia",
    }
)
_TEXT_TO_AUDIO_TYPES = frozenset(
    {"musicgen", "musicgen_melody", "bark", "csm", "pocket_tts", "higgs_audio_v2", "qwen2_5_omni", "qwen3_omni_moe"}
)
# Image-to-text models that caption rather than chat.
_IMAGE_TO_TEXT_TYPES = frozenset({"blip", "pix2struct", "vision-encoder-decoder", "kosmos-2", "git"})
_VISION_LANGUAGE_TYPES = frozenset({"chameleon", "emu3", "udop", "pi0", "idefics"})
_ZERO_SHOT_IMAGE_TYPES = frozenset({"clip", "siglip", "siglip2", "chinese_clip", "altclip", "align"})
_ZERO_SHOT_DETECTION_TYPES = frozenset({"owlvit", "owlv2", "grounding-dino", "mm-grounding-dino", "omdet-turbo"})
_MASK_GENERATION_MODELS = frozenset({"SamModel", "SamHQModel", "Sam2Model", "Sam3TrackerModel", "EdgeTamModel"})
# Question answering heads that read something other than plain text.
_QA_TASKS = {
    "tapas": ("AutoModelForTableQuestionAnswering", "table-question-answering"),
    "vilt": ("AutoModelForVisualQuestionAnswering", "visual-question-answering"),
    "blip": ("AutoModelForVisualQuestionAnswering", "visual-question-answering"),
    "layoutlm": ("AutoModelForDocumentQuestionAnswering", "document-question-answering"),
}
_VISION_BACKBONE_TYPES = frozenset(
    {
        "vit",
        "dinov2",
        "dinov3_vit",
        "deit",
        "beit",
        "convnext",
        "convnextv2",
        "swin",
        "swinv2",
        "resnet",
        "regnet",
        "efficientnet",
        "mobilevit",
        "mobilenet_v2",
        "levit",
        "poolformer",
        "vit_mae",
        "dinat",
        "hiera",
    }
)

# Architecture class suffix -> (auto class, pipeline). Checked in order, so the longer suffix of
# two that overlap comes first. ForConditionalGeneration, ForSequenceClassification and plain
# *Model depend on the model type and are decided in _task().
_SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    ("ForImageClassificationWithTeacher", "AutoModelForImageClassification", "image-classification"),
    ("ForQuestionAnsweringSimple", "AutoModelForQuestionAnswering", "question-answering"),
    ("ForVisionText2Text", "AutoModelForImageTextToText", "image-text-to-text"),
    ("ModelForPrediction", "AutoModelForTimeSeriesPrediction", "time-series-forecasting"),
    ("ForKeypointMatching", "AutoModelForKeypointMatching", None),
    ("ForSegmentation", "AutoModelForImageSegmentation", "image-segmentation"),
    ("ForXVector", "AutoModelForAudioXVector", None),
    ("ModelWithLMHead", "AutoModelForCausalLM", "text-generation"),
    ("WithLMHeadModel", "AutoModelForMaskedLM", "fill-mask"),
    ("T5EncoderModel", "AutoModelForTextEncoding", "feature-extraction"),
    ("GemmaEncoderModel", "AutoModelForTextEncoding", "feature-extraction"),
    ("ForSpeechToText", "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForTextToText", "AutoModelForSeq2SeqLM", "text2text-generation"),
    ("ForZeroShotImageClassification", "AutoModelForZeroShotImageClassification", "zero-shot-image-classification"),
    ("ForAudioFrameClassification", "AutoModelForAudioFrameClassification", None),
    ("ForTableQuestionAnswering", "AutoModelForTableQuestionAnswering", "table-question-answering"),
    ("ForVisualQuestionAnswering", "AutoModelForVisualQuestionAnswering", "visual-question-answering"),
    ("ForDocumentQuestionAnswering", "AutoModelForDocumentQuestionAnswering", "document-question-answering"),
    ("ForNextSentencePrediction", "AutoModelForNextSentencePrediction", None),
    ("ForSemanticSegmentation", "AutoModelForSemanticSegmentation", "image-segmentation"),
    ("ForUniversalSegmentation", "AutoModelForUniversalSegmentation", "image-segmentation"),
    ("ForInstanceSegmentation", "AutoModelForInstanceSegmentation", "image-segmentation"),
    ("ForAudioClassification", "AutoModelForAudioClassification", "audio-classification"),
    ("ForImageClassification", "AutoModelForImageClassification", "image-classification"),
    ("ForVideoClassification", "AutoModelForVideoClassification", "video-classification"),
    ("ForTokenClassification", "AutoModelForTokenClassification", "token-classification"),
    ("ForKeypointDetection", "AutoModelForKeypointDetection", "keypoint-detection"),
    ("ForMaskedImageModeling", "AutoModelForMaskedImageModeling", None),
    ("ForTextToSpectrogram", "AutoModelForTextToSpectrogram", "text-to-audio"),
    ("ForTextToWaveform", "AutoModelForTextToWaveform", "text-to-audio"),
    ("ForQuestionAnswering", "AutoModelForQuestionAnswering", "question-answering"),
    ("ForDepthEstimation", "AutoModelForDepthEstimation", "depth-estimation"),
    ("ForImageTextToText", "AutoModelForImageTextToText", "image-text-to-text"),
    ("ForMultipleChoice", "AutoModelForMultipleChoice", None),
    ("ForImageToImage", "AutoModelForImageToImage", "image-to-image"),
    ("ForImageSuperResolution", "AutoModelForImageToImage", "image-to-image"),
    ("ForMaskGeneration", "AutoModelForMaskGeneration", "mask-generation"),
    ("ForPreTraining", "AutoModelForPreTraining", None),
    ("ForMaskedLM", "AutoModelForMaskedLM", "fill-mask"),
    ("ForCausalLM", "AutoModelForCausalLM", "text-generation"),
    ("LMHeadModel", "AutoModelForCausalLM", "text-generation"),
    ("ForCTC", "AutoModelForCTC", "automatic-speech-recognition"),
)


@dataclass(frozen=True)
class ModelConfig:
    """The facts of a config.json that the Hub uses."""

    model_type: str | None
    architectures: tuple[str, ...]
    auto_map: dict[str, Any] = field(default_factory=dict)
    quantization_config: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_encoder_decoder(self) -> bool:
        return self.raw.get("is_encoder_decoder") is True

    @property
    def is_multimodal(self) -> bool:
        """A vision (or other modality) tower beside a text model: Llava, Gemma 3, Qwen2-VL, ..."""
        return any(key in self.raw for key in ("vision_config", "text_config", "vq_config", "mm_vision_tower"))


def load_json_object(text: str | bytes, what: str) -> dict[str, Any]:
    """A JSON object from a small file, or MetadataError."""
    if len(text) > MAX_CONFIG_LENGTH:
        raise MetadataError(f"{what} is larger than {MAX_CONFIG_LENGTH} bytes")
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise MetadataError(f"{what} is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MetadataError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MetadataError(f"{what} must be a JSON object")
    return value


def parse_config(text: str | bytes) -> ModelConfig:
    """Parse config.json; MetadataError if it is not a JSON object. Mistyped fields are ignored."""
    raw = load_json_object(text, "config.json")
    model_type = raw.get("model_type")
    architectures = raw.get("architectures")
    auto_map = raw.get("auto_map")
    quantization = raw.get("quantization_config")
    return ModelConfig(
        model_type=model_type if isinstance(model_type, str) and model_type else None,
        architectures=tuple(a for a in architectures if isinstance(a, str) and a)
        if isinstance(architectures, list)
        else (),
        auto_map=dict(auto_map) if isinstance(auto_map, dict) else {},
        quantization_config=dict(quantization) if isinstance(quantization, dict) else None,
        raw=raw,
    )


def _task(architecture: str, config: ModelConfig) -> tuple[str, str | None]:
    """(auto class, pipeline) for an architecture class name."""
    model_type = config.model_type or ""
    if architecture.endswith("ForConditionalGeneration"):
        return _conditional_generation(config)
    if architecture.endswith("ForSequenceClassification"):
        if model_type in _AUDIO_TYPES:
            return "AutoModelForAudioClassification", "audio-classification"
        return "AutoModelForSequenceClassification", "text-classification"
    if architecture.endswith("ForObjectDetection"):
        if model_type in _ZERO_SHOT_DETECTION_TYPES:
            return "AutoModelForZeroShotObjectDetection", "zero-shot-object-detection"
        return "AutoModelForObjectDetection", "object-detection"
    if architecture.endswith("ForTextToSpeech"):
        if model_type == "speecht5":
            return "AutoModelForTextToSpectrogram", "text-to-speech"
        return "AutoModelForTextToWaveform", "text-to-speech"
    if architecture.endswith("ForQuestionAnswering") and model_type in _QA_TASKS:
        return _QA_TASKS[model_type]
    if architecture == "MarianMTModel" or architecture == "EncoderDecoderModel":
        return "AutoModelForSeq2SeqLM", "text2text-generation"
    if architecture == "VisionEncoderDecoderModel":
        return "AutoModelForImageTextToText", "image-to-text"
    if architecture == "SpeechEncoderDecoderModel":
        return "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"
    if architecture.endswith("LMHeadModel") and config.is_encoder_decoder:  # T5WithLMHeadModel
        return "AutoModelForSeq2SeqLM", "text2text-generation"
    for suffix, auto_model, pipeline in _SUFFIXES:
        if architecture.endswith(suffix):
            return auto_model, pipeline
    if "ForImageClassification" in architecture:  # PerceiverForImageClassificationLearned, ...
        return "AutoModelForImageClassification", "image-classification"
    if model_type in _ZERO_SHOT_IMAGE_TYPES:
        return "AutoModelForZeroShotImageClassification", "zero-shot-image-classification"
    if architecture in _MASK_GENERATION_MODELS:
        return "AutoModelForMaskGeneration", "mask-generation"
    if model_type in _VISION_BACKBONE_TYPES:
        return "AutoModel", "image-feature-extraction"
    return "AutoModel", "feature-extraction"


def _conditional_generation(config: ModelConfig) -> tuple[str, str | None]:
    """``*ForConditionalGeneration`` names speech, audio, vision-language and text seq2seq models."""
    model_type = config.model_type or ""
    if model_type in _SPEECH_SEQ2SEQ_TYPES:
        return "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"
    if model_type in _TEXT_TO_AUDIO_TYPES:
        return "AutoModelForTextToWaveform", "text-to-audio"
    if model_type in _IMAGE_TO_TEXT_TYPES:
        return "AutoModelForImageTextToText", "image-to-text"
    if "audio_config" in config.raw and "vision_config" not in config.raw:  # Voxtral, Qwen2-Audio, ...
        return "AutoModelForSeq2SeqLM", "audio-text-to-text"
    if config.is_multimodal or model_type in _VISION_LANGUAGE_TYPES:
        return "AutoModelForImageTextToText", "image-text-to-text"
    return "AutoModelForSeq2SeqLM", "text2text-generation"


def _root_names(files: Collection[str]) -> set[str]:
    return {f for f in files if "/" not in f}


def processor_class(
    config: ModelConfig, files: Collection[str], preprocessor: Mapping[str, Any] | None = None
) -> str | None:
    """Which ``Auto*`` class loads the repo's inputs processing, from its root files."""
    names = _root_names(files)
    has_tokenizer = any(name in names for name in TOKENIZER_FILES)
    has_preprocessor = PREPROCESSOR_FILE in names or preprocessor is not None
    if any(name in names for name in PROCESSOR_FILES) or (has_tokenizer and has_preprocessor):
        return "AutoProcessor"
    if has_preprocessor:
        # Audio feature extractors carry a sampling rate; everything else processes images.
        audio = config.model_type in _AUDIO_TYPES or (preprocessor is not None and "sampling_rate" in preprocessor)
        return "AutoFeatureExtractor" if audio else "AutoImageProcessor"
    if has_tokenizer:
        return "AutoTokenizer"
    return None


def transformers_info(
    config: ModelConfig, files: Collection[str] = (), preprocessor: Mapping[str, Any] | None = None
) -> dict[str, str] | None:
    """The ``transformersInfo`` field: ``auto_model`` and, when known, ``pipeline_tag``,
    ``processor`` and ``custom_class`` (those four keys only: the client refuses others).

    None when config.json names no architecture.
    """
    if not config.architectures:
        return None
    auto_model, pipeline = _task(config.architectures[0], config)
    custom = config.auto_map.get(auto_model)
    if custom is None and auto_model == "AutoModel":
        # Custom code may register its model only under a task-specific Auto class.
        registered = [k for k in config.auto_map if k.startswith("AutoModelFor")]
        if registered:
            auto_model = registered[0]
            custom = config.auto_map[auto_model]
            pipeline = next((p for _, a, p in _SUFFIXES if a == auto_model), None)
    info: dict[str, str] = {"auto_model": auto_model}
    if isinstance(custom, list) and custom and isinstance(custom[0], str):
        custom = custom[0]
    if isinstance(custom, str) and custom:
        info["custom_class"] = custom
    if pipeline is not None:
        info["pipeline_tag"] = pipeline
    processor = processor_class(config, files, preprocessor)
    if processor is not None:
        info["processor"] = processor
    return info


def is_sentence_transformers(files: Collection[str]) -> bool:
    names = _root_names(files)
    return any(name in names for name in SENTENCE_TRANSFORMERS_FILES)


def default_pipeline_tag(config: ModelConfig | None, files: Collection[str] = ()) -> str | None:
    """The ``pipeline_tag`` a repo gets when its card names none."""
    if is_sentence_transformers(files):
        return "sentence-similarity"
    if config is None:
        return None
    info = transformers_info(config, files)
    return info.get("pipeline_tag") if info else None


def default_library_name(config: ModelConfig | None, files: Collection[str] = ()) -> str | None:
    """``sentence-transformers`` or ``transformers`` from the files, else None."""
    if is_sentence_transformers(files):
        return "sentence-transformers"
    if config is not None and (config.architectures or config.model_type):
        return "transformers"
    return None


def config_info(config: ModelConfig, tokenizer_config: str | bytes | None = None) -> dict[str, Any]:
    """The ``config`` field of ``model_info``: architectures, model_type, auto_map, the
    quantization method, and the special tokens and chat template of tokenizer_config.json.

    A tokenizer_config.json that is not a JSON object is left out rather than failing.
    """
    info: dict[str, Any] = {}
    if config.architectures:
        info["architectures"] = list(config.architectures)
    if config.model_type:
        info["model_type"] = config.model_type
    if config.auto_map:
        info["auto_map"] = dict(config.auto_map)
    if config.quantization_config is not None:
        quant = {k: v for k, v in config.quantization_config.items() if k in ("quant_method", "bits")}
        if quant:
            info["quantization_config"] = quant
    if tokenizer_config is not None:
        try:
            tokenizer = load_json_object(tokenizer_config, "tokenizer_config.json")
        except MetadataError:
            tokenizer = {}
        kept = {k: _token_value(tokenizer[k]) for k in TOKENIZER_CONFIG_KEYS if k in tokenizer}
        kept = {k: v for k, v in kept.items() if v is not None}
        if kept:
            info["tokenizer_config"] = kept
    return info


def _token_value(value: Any) -> Any:
    """Special tokens are strings or serialized AddedTokens (``{"content": ...}``); templates are
    a string or a list of ``{name, template}``."""
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(value, list) and all(
        isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("template"), str) for v in value
    ):
        return [{"name": v["name"], "template": v["template"]} for v in value]
    return None


def config_tags(config: ModelConfig) -> list[str]:
    """Tags the Hub adds from config.json: the model type, and ``custom_code`` for auto_map."""
    tags: list[str] = []
    if config.model_type:
        tags.append(config.model_type)
    if config.auto_map:
        tags.append("custom_code")
    return tags
