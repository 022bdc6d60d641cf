"""Card metadata: validation as the Hub's validate-yaml, derived tags, lineage, eval results."""

from __future__ import annotations

import time

import pytest

from modelyard.metadata.cards import (
    EMPTY_METADATA_WARNING,
    MAX_FRONT_MATTER,
    arxiv_ids,
    base_models,
    derive_tags,
    front_matter,
    parse_card,
    validate,
)
from modelyard.metadata.evals import EvalResult, parse_model_index
from modelyard.metadata.vocabulary import LICENSES
from tests.unit.files import MINILM_DIR

MINILM_DATASETS = [
    "s2orc",
    "flax-sentence-embeddings/stackexchange_xml",
    "ms_marco",
    "gooaq",
    "yahoo_answers_topics",
    "code_search_net",
    "search_qa",
    "eli5",
    "snli",
    "multi_nli",
    "wikihow",
    "natural_questions",
    "trivia_qa",
    "embedding-data/sentence-compression",
    "embedding-data/flickr30k-captions",
    "embedding-data/altlex",
    "embedding-data/simple-wiki",
    "embedding-data/QQP",
    "embedding-data/SPECTER",
    "embedding-data/PAQ_pairs",
    "embedding-data/WikiAnswers",
]

#: The licence ids the Hub accepts, as listed in the brief for this module.
HUB_LICENSES = """apache-2.0, mit, openrail, bigscience-openrail-m, creativeml-openrail-m, bigscience-bloom-rail-1.0,
bigcode-openrail-m, afl-3.0, artistic-2.0, bsl-1.0, bsd, bsd-2-clause, bsd-3-clause, bsd-3-clause-clear, c-uda, cc,
cc0-1.0, cc-by-2.0, cc-by-2.5, cc-by-3.0, cc-by-4.0, cc-by-sa-3.0, cc-by-sa-4.0, cc-by-nc-2.0, cc-by-nc-3.0,
cc-by-nc-4.0, cc-by-nd-4.0, cc-by-nc-nd-3.0, cc-by-nc-nd-4.0, cc-by-nc-sa-2.0, cc-by-nc-sa-3.0, cc-by-nc-sa-4.0,
cdla-sharing-1.0, cdla-permissive-1.0, cdla-permissive-2.0, wtfpl, ecl-2.0, epl-1.0, epl-2.0, etalab-2.0, eupl-1.1,
eupl-1.2, agpl-3.0, gfdl, gpl, gpl-2.0, gpl-3.0, lgpl, lgpl-2.1, lgpl-3.0, isc, h-research, intel-research, lppl-1.3c,
ms-pl, apple-ascl, apple-amlr, mpl-2.0, odc-by, odbl, openmdw-1.0, openrail++, osl-3.0, postgresql, ofl-1.1, ncsa,
unlicense, zlib, pddl, lgpl-lr, deepfloyd-if-license, fair-noncommercial-research-license, llama2, llama3, llama3.1,
llama3.2, llama3.3, llama4, grok2-community, gemma, unknown, other"""


def card(yaml_text: str, body: str = "# Model\n") -> str:
    return f"---\n{yaml_text.strip()}\n---\n{body}"


# --- the real all-MiniLM-L6-v2 card ------------------------------------------------------------


def test_real_minilm_card_matches_what_the_hub_shows() -> None:
    text = (MINILM_DIR / "README.md").read_text()
    report = validate(text, "model")
    assert report.errors == []
    assert report.warnings == []
    data = report.data
    assert data["license"] == "apache-2.0"
    assert data["library_name"] == "sentence-transformers"
    assert data["pipeline_tag"] == "sentence-similarity"
    assert data["language"] == "en"
    assert data["tags"] == ["sentence-transformers", "feature-extraction", "sentence-similarity", "transformers"]
    assert data["datasets"] == MINILM_DATASETS
    tags, library, pipeline = derive_tags(data, arxiv=arxiv_ids(text))
    assert (library, pipeline) == ("sentence-transformers", "sentence-similarity")
    assert tags == [
        "sentence-transformers",
        "feature-extraction",
        "sentence-similarity",
        "transformers",
        "en",
        *[f"dataset:{d}" for d in MINILM_DATASETS],
        "arxiv:1904.06472",
        "arxiv:2102.07033",
        "arxiv:2104.08727",
        "arxiv:1704.05179",
        "arxiv:1810.09305",
        "license:apache-2.0",
    ]
    # The lenient parser used by the commit path reads the same data.
    assert parse_card(text).data == data


def test_licence_list_is_exactly_the_hubs() -> None:
    assert {x.strip() for x in HUB_LICENSES.split(",")} == LICENSES


# --- validation --------------------------------------------------------------------------------


def test_missing_or_empty_metadata_is_a_warning() -> None:
    for text in ("# Just a title\n", card(""), "---\n---\nbody", card("{}")):
        report = validate(text)
        assert report.errors == [] and report.warnings == [EMPTY_METADATA_WARNING], text
        assert report.data == {}


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("license: [unclosed", "Invalid YAML"),
        ("- just\n- a list", "must be a YAML mapping"),
        ("just a string", "must be a YAML mapping"),
        ("a: !!python/object:os.system echo", "Invalid YAML"),
    ],
)
def test_structural_errors(yaml_text: str, fragment: str) -> None:
    report = validate(card(yaml_text))
    assert len(report.errors) == 1 and fragment in report.errors[0]
    assert report.data == {}


def test_unknown_licence_is_named() -> None:
    report = validate(card("license: my-own-licence\nlibrary_name: transformers"))
    assert len(report.errors) == 1
    assert '"my-own-licence"' in report.errors[0]
    # the Hub's wording: the ids in the Hub's order
    assert report.errors[0].startswith('"license" must be one of [apache-2.0, mit, openrail, ')
    assert report.errors[0].endswith(', gemma, unknown, other], not "my-own-licence"')
    assert report.data == {"library_name": "transformers"}
    hint = validate(card("license: Apache-2.0")).errors[0]
    assert '"Apache-2.0"' in hint and 'did you mean "apache-2.0"' in hint


def test_other_licence_needs_a_name_and_a_link() -> None:
    missing = validate(card("license: other"))
    assert sorted(missing.errors) == [
        '"license_link" is required when "license" is "other"',
        '"license_name" is required when "license" is "other"',
    ]
    assert missing.data == {"license": "other"}
    good = validate(card("license: other\nlicense_name: my-licence-1.0\nlicense_link: LICENSE"))
    assert good.errors == [] and good.data["license_name"] == "my-licence-1.0"
    bad_name = validate(card("license: other\nlicense_name: My Licence\nlicense_link: https://x.org/l"))
    assert len(bad_name.errors) == 1 and "license_name" in bad_name.errors[0]
    assert "license_name" not in bad_name.data
    unused = validate(card("license: mit\nlicense_name: foo"))
    assert unused.errors == [] and len(unused.warnings) == 1


def test_licence_lists_only_for_datasets() -> None:
    assert validate(card("license: [mit, apache-2.0]"), "model").errors == ['"license" must be a string']
    dataset = validate(card("license: [mit, cc-by-4.0]"), "dataset")
    assert dataset.errors == [] and dataset.data["license"] == ["mit", "cc-by-4.0"]


def test_wrong_types_are_errors_and_the_rest_is_kept() -> None:
    report = validate(
        card("""
tags: [ok, 3, {a: b}]
library_name: 12
pipeline_tag: text-generation
datasets: {a: b}
metrics: [accuracy]
thumbnail: [x]
unknown_key: {kept: true}
""")
    )
    assert sorted(report.errors) == sorted(
        [
            '"tags[1]" must be a string',
            '"tags[2]" must be a string',
            '"library_name" must be a string',
            '"datasets" must be a string or a list of strings',
            '"thumbnail" must be a string',
        ]
    )
    assert report.data == {
        "tags": ["ok"],
        "pipeline_tag": "text-generation",
        "metrics": ["accuracy"],
        "unknown_key": {"kept": True},
    }


def test_unknown_pipeline_tag() -> None:
    report = validate(card("pipeline_tag: text-generator"))
    assert len(report.errors) == 1 and '"text-generator"' in report.errors[0]
    assert "pipeline_tag" not in report.data


def test_language_codes_are_checked_with_warnings() -> None:
    report = validate(card("language: [en, fr, zh-Hans, English]"))
    assert report.errors == []
    assert len(report.warnings) == 1 and '"English"' in report.warnings[0]
    assert report.data["language"] == ["en", "fr", "zh-Hans", "English"]


def test_base_models_and_relations() -> None:
    single = validate(card("base_model: meta-llama/Llama-3.1-8B"))
    assert single.errors == [] and single.base_models == [("meta-llama/Llama-3.1-8B", "finetune")]
    merged = validate(card("base_model: [a/one, b/two]"))
    assert merged.base_models == [("a/one", "merge"), ("b/two", "merge")]
    adapter = validate(card("base_model: a/one\nbase_model_relation: adapter"))
    assert adapter.base_models == [("a/one", "adapter")]
    bad_relation = validate(card("base_model: a/one\nbase_model_relation: distilled"))
    assert len(bad_relation.errors) == 1 and "base_model_relation" in bad_relation.errors[0]
    assert bad_relation.base_models == [("a/one", "finetune")]
    bad_id = validate(card("base_model: [good/id, 'not a valid id!', a/b/c]"))
    assert len(bad_id.errors) == 2
    assert bad_id.data["base_model"] == ["good/id"]
    orphan = validate(card("base_model_relation: adapter"))
    assert orphan.errors == [] and len(orphan.warnings) == 1 and "base_model_relation" not in orphan.data
    assert base_models({"base_model": "x/y"}, default_relation="quantized") == [("x/y", "quantized")]
    assert base_models({"base_model": ["x/y", "x/y"]}) == [("x/y", "finetune")]  # duplicates collapse


def test_co2_widget_inference_new_version() -> None:
    good = validate(
        card("""
co2_eq_emissions: {emissions: 12.5, source: codecarbon, training_type: fine-tuning}
widget: [{text: "Hello"}]
inference: {parameters: {temperature: 0.7}}
new_version: org/model-v2
""")
    )
    assert good.errors == []
    assert set(good.data) == {"co2_eq_emissions", "widget", "inference", "new_version"}
    assert validate(card("co2_eq_emissions: 10")).data == {"co2_eq_emissions": 10}
    bad = validate(card("co2_eq_emissions: {source: x}\nwidget: hello\ninference: maybe"))
    assert len(bad.errors) == 3 and bad.data == {}


def test_yaml_1_2_booleans_as_the_hub_reads_them() -> None:
    report = validate(card("language: [en, no]\ninference: off"))
    assert report.data["language"] == ["en", "no"]  # Norwegian, not False
    assert report.errors == ['"inference" must be a boolean or a mapping with "parameters"']
    assert validate(card("inference: false")).data == {"inference": False}
    assert validate(card("viewer: yes"), "dataset").errors == ['"viewer" must be a boolean']


def test_data_keeps_the_card_key_order_and_unknown_keys() -> None:
    report = validate(card("zeta: 1\nlicense: mit\nalpha: [x]\ntags: [a]\nlicense_name: ignored"))
    assert list(report.data) == ["zeta", "license", "alpha", "tags", "license_name"]


def test_dataset_names_that_are_not_ids_are_warnings() -> None:
    report = validate(card("datasets: [squad, Wikipedia (English), org/data]"))
    assert report.errors == []
    assert len(report.warnings) == 1 and "Wikipedia (English)" in report.warnings[0]
    assert report.data["datasets"] == ["squad", "org/data"]
    assert "datasets" not in validate(card("datasets: 'not an id!'")).data


def test_dates_and_other_yaml_types_become_json() -> None:
    report = validate(card("released: 2024-05-01\nwhen: 2024-05-01T10:00:00\nscores: !!set {a, b}\nnan: .nan"))
    assert report.data["released"] == "2024-05-01"
    assert report.data["when"] == "2024-05-01T10:00:00"
    assert sorted(report.data["scores"]) == ["a", "b"]
    assert report.data["nan"] == "nan"


def test_alias_bombs_and_huge_front_matter_fail_fast() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    report = validate(card("\n".join(lines)))
    assert time.monotonic() - started < 5
    assert len(report.errors) == 1 and "expands too much" in report.errors[0]
    assert parse_card(card("\n".join(lines))).errors == report.errors
    deep = validate(card("a: " + "[" * 5000 + "]" * 5000))
    assert len(deep.errors) == 1
    huge = validate(card("a: '" + "x" * MAX_FRONT_MATTER + "'"))
    assert len(huge.errors) == 1 and "larger than" in huge.errors[0]


def test_dataset_cards() -> None:
    report = validate(
        card("""
license: cc-by-4.0
language: [en]
task_categories: [text-classification, made-up-task]
size_categories: [10K<n<100K]
pretty_name: My data
configs:
- config_name: default
  data_files: [{split: train, path: data/train-*.parquet}]
- {data_files: x}
paperswithcode_id: null
viewer: true
"""),
        "dataset",
    )
    assert report.errors == ['"configs[1]" must be a mapping with a string "config_name"']
    assert len(report.warnings) == 1 and "made-up-task" in report.warnings[0]
    assert report.data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
    ]
    assert report.data["viewer"] is True and report.data["paperswithcode_id"] is None
    tags, library, pipeline = derive_tags(report.data, repo_type="dataset")
    assert (library, pipeline) == (None, None)
    assert tags == [
        "task_categories:text-classification",
        "task_categories:made-up-task",
        "size_categories:10K<n<100K",
        "language:en",
        "license:cc-by-4.0",
    ]


def test_space_cards() -> None:
    report = validate(
        card(
            "title: Demo\nsdk: gradio\nsdk_version: 4.1\ncolorFrom: red\ncolorTo: turquoise\n"
            "app_port: 99999\npinned: true"
        ),
        "space",
    )
    assert sorted(report.errors) == sorted(
        [
            '"colorTo" must be one of [blue, gray, green, indigo, pink, purple, red, yellow], not "turquoise"',
            '"app_port" must be a port number',
        ]
    )
    assert report.data["sdk_version"] == "4.1" and len(report.warnings) == 1
    assert validate(card("sdk: flask"), "space").errors[0].startswith('"sdk" must be one of')


# --- derived tags and helpers -------------------------------------------------------------------


def test_derive_tags_for_a_model() -> None:
    data = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["chat", "transformers"],
        "language": ["en", "de"],
        "datasets": "org/data",
        "base_model": "meta-llama/Llama-3.1-8B",
        "license": "llama3.1",
    }
    tags, library, pipeline = derive_tags(data)
    assert tags == [
        "transformers",
        "chat",
        "text-generation",
        "en",
        "de",
        "dataset:org/data",
        "base_model:meta-llama/Llama-3.1-8B",
        "base_model:finetune:meta-llama/Llama-3.1-8B",
        "license:llama3.1",
    ]
    assert (library, pipeline) == ("transformers", "text-generation")
    adapter_tags, _, _ = derive_tags(data, lineage=[("meta-llama/Llama-3.1-8B", "adapter")])
    assert "base_model:adapter:meta-llama/Llama-3.1-8B" in adapter_tags
    assert "base_model:finetune:meta-llama/Llama-3.1-8B" not in adapter_tags
    assert derive_tags({}) == ([], None, None)
    assert derive_tags({"library_name": 3, "tags": "solo"}) == (["solo"], None, None)


def test_arxiv_ids_and_front_matter() -> None:
    text = (
        "See https://arxiv.org/abs/2106.09685v2, arxiv.org/pdf/1810.04805.pdf and arXiv: 2305.14314 (and 2106.09685)."
    )
    assert arxiv_ids(text) == ["2106.09685", "1810.04805", "2305.14314"]
    assert front_matter("---\na: 1\n---\n\nBody") == ("a: 1", "Body")
    assert front_matter("No metadata") == (None, "No metadata")
    assert front_matter("\ufeff---\r\na: 1\r\n---\r\nx")[0] == "a: 1"


def test_parse_card_keeps_its_lenient_contract() -> None:
    report = parse_card(card("license: not-a-licence\ntags: {a: 1}\nlibrary_name: [x]"))
    assert report.data == {"license": "not-a-licence", "tags": {"a": 1}, "library_name": ["x"]}
    assert sorted(report.errors) == ["'library_name' must be a string", "'tags' must be a string or a list of strings"]
    assert parse_card("no front matter").data == {}
    assert parse_card(card("[1, 2]")).errors == ["The README.md metadata must be a YAML mapping"]


# --- model-index ---------------------------------------------------------------------------------

MODEL_INDEX = """
model-index:
- name: tiny-embedder
  results:
  - task: {type: STS, name: Semantic Similarity}
    dataset: {type: mteb/stsbenchmark-sts, name: MTEB STSBenchmark, config: default, split: test, revision: abc123}
    metrics:
    - {type: cos_sim_spearman, value: 82.03, name: Cosine Spearman}
    - {type: cos_sim_pearson, value: "84.5", verified: true}
    - {type: manhattan_spearman, value: N/A}
    - {value: 1.0}
    - {type: verified_wrong, value: 1, verified: "yes"}
  - task: {type: text-classification}
    dataset: {type: imdb}
    metrics: [{type: accuracy, value: 0.9}]
  - task: {type: text-classification}
    dataset: {type: sst2, name: SST-2}
    metrics: [{type: accuracy, value: 0.91}]
    source: {name: Leaderboard, url: https://example.org/board}
  - not a mapping
"""


def test_model_index_rows_and_errors() -> None:
    report = validate(card(MODEL_INDEX))
    assert report.eval_results == [
        EvalResult(
            task_type="STS",
            task_name="Semantic Similarity",
            dataset_type="mteb/stsbenchmark-sts",
            dataset_name="MTEB STSBenchmark",
            dataset_config="default",
            dataset_split="test",
            dataset_revision="abc123",
            metric_type="cos_sim_spearman",
            metric_name="Cosine Spearman",
            metric_value=82.03,
            verified=False,
            model_name="tiny-embedder",
        ),
        EvalResult(
            task_type="STS",
            task_name="Semantic Similarity",
            dataset_type="mteb/stsbenchmark-sts",
            dataset_name="MTEB STSBenchmark",
            dataset_config="default",
            dataset_split="test",
            dataset_revision="abc123",
            metric_type="cos_sim_pearson",
            metric_value=84.5,
            verified=True,
            model_name="tiny-embedder",
        ),
        EvalResult(
            task_type="text-classification",
            dataset_type="sst2",
            dataset_name="SST-2",
            metric_type="accuracy",
            metric_value=0.91,
            model_name="tiny-embedder",
            source_name="Leaderboard",
            source_url="https://example.org/board",
        ),
    ]
    assert sorted(report.errors) == sorted(
        [
            '"model-index[0].results[0].metrics[3].type" is required',
            '"model-index[0].results[0].metrics[4].verified" must be a boolean',
            '"model-index[0].results[1].dataset.name" is required',
            '"model-index[0].results[3]" must be a mapping',
        ]
    )
    assert report.warnings == [
        "\"model-index[0].results[0].metrics[2].value\" 'N/A' is not a number: it is kept but not ranked"
    ]
    cleaned = report.data["model-index"]
    assert [len(r["metrics"]) for r in cleaned[0]["results"]] == [3, 1]


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ({"name": "x"}, ['"model-index" must be a list']),
        ([{"results": []}], ['"model-index[0].name" is required']),
        ([{"name": "x", "results": {}}], ['"model-index[0].results" must be a list']),
        (["x"], ['"model-index[0]" must be a mapping']),
        (
            [{"name": "x", "results": [{"task": "STS", "dataset": {}, "metrics": []}]}],
            ['"model-index[0].results[0].task" must be a mapping'],
        ),
        (
            [{"name": "x", "results": [{"task": {"type": "a"}, "dataset": {"type": "b", "name": "c"}}]}],
            ['"model-index[0].results[0].metrics" must be a list'],
        ),
        (
            [
                {
                    "name": "x",
                    "results": [
                        {
                            "task": {"type": "a"},
                            "dataset": {"type": "b", "name": "c"},
                            "metrics": [{"type": "m", "value": True}],
                        }
                    ],
                }
            ],
            ['"model-index[0].results[0].metrics[0].value" must be a number or a string'],
        ),
        (
            [
                {
                    "name": "x",
                    "results": [{"task": {"type": "t" * 200}, "dataset": {"type": "b", "name": "c"}, "metrics": []}],
                }
            ],
            ['"model-index[0].results[0].task.type" is longer than 128 characters'],
        ),
    ],
)
def test_model_index_shapes(value: object, errors: list[str]) -> None:
    parsed = parse_model_index(value)
    assert parsed.errors == errors
    assert parsed.results == []


def test_model_index_numbers() -> None:
    entry = [
        {
            "name": "m",
            "results": [
                {
                    "task": {"type": "t"},
                    "dataset": {"type": "d", "name": "n"},
                    "metrics": [
                        {"type": "a", "value": "85.2%"},
                        {"type": "b", "value": 3},
                        {"type": "c", "value": float("inf")},
                    ],
                }
            ],
        }
    ]
    parsed = parse_model_index(entry)
    assert [(r.metric_type, r.metric_value) for r in parsed.results] == [("a", 85.2), ("b", 3.0)]
    assert len(parsed.warnings) == 1 and parsed.errors == []
    assert parse_model_index(None).results == []
