"""The closed vocabularies of card metadata: licence ids, pipeline tags, relations, Space SDKs."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _ordered(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Licence identifiers the Hub accepts in ``license:`` (``other`` needs license_name/license_link),
#: in the Hub's order (its validation error lists them so).
LICENSE_IDS: tuple[str, ...] = _ordered(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear
    c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl
    ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
    lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0
    odc-by odbl openmdw-1.0 openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
    llama3.3 llama4 grok2-community gemma unknown other
    """
)
LICENSES: frozenset[str] = frozenset(LICENSE_IDS)

#: Task identifiers accepted as ``pipeline_tag``.
PIPELINE_TAGS: frozenset[str] = _words(
    """
    text-classification token-classification table-question-answering question-answering
    zero-shot-classification translation summarization feature-extraction text-generation
    text2text-generation fill-mask sentence-similarity text-to-speech text-to-audio
    automatic-speech-recognition audio-to-audio audio-classification audio-text-to-text
    voice-activity-detection depth-estimation image-classification object-detection
    image-segmentation text-to-image image-to-text image-to-image image-to-video
    unconditional-image-generation video-classification reinforcement-learning robotics
    tabular-classification tabular-regression tabular-to-text table-to-text multiple-choice
    text-ranking text-retrieval time-series-forecasting text-to-video image-text-to-text
    image-text-to-image image-text-to-video visual-question-answering document-question-answering
    zero-shot-image-classification graph-ml mask-generation zero-shot-object-detection text-to-3d
    image-to-3d image-feature-extraction video-text-to-text keypoint-detection
    visual-document-retrieval any-to-any video-to-video other
    """
)

#: ``base_model_relation`` values, in the order the Hub infers them when a card gives none.
BASE_MODEL_RELATIONS: tuple[str, ...] = ("adapter", "quantized", "merge", "finetune")

SPACE_SDKS: frozenset[str] = frozenset({"gradio", "streamlit", "docker", "static"})
SPACE_COLORS: frozenset[str] = frozenset({"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"})

#: Dataset card keys whose values the Hub publishes as ``key:value`` tags.
DATASET_TAG_KEYS: tuple[str, ...] = (
    "task_categories",
    "task_ids",
    "annotations_creators",
    "language_creators",
    "multilinguality",
    "size_categories",
    "source_datasets",
)
