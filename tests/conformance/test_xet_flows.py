"""Flows the in-process client (``HF_HUB_DISABLE_XET=1``) covers, run with the default client (Xet on).

Pinned downloads and squash (test_revisions), private repos (test_private) and a dataset of
parquet files loaded by ``datasets`` (test_datasets) move their large files through Git LFS
there. Here they go through Xet: every upload and download runs in a subprocess WITHOUT
``HF_HUB_DISABLE_XET`` (tests/support/clients/xet_client.py), as a default install would.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, RepoFile

from tests.support.clients.run import run_client
from tests.support.datasets import TRAIN, toy_dataset
from tests.support.server import TOKENS

pytestmark = pytest.mark.slow


def xet_hashes(api: HfApi, repo_id: str, revision: str | None = None, repo_type: str | None = None) -> dict[str, str]:
    """Path -> xetHash of the files that went up through Xet."""
    return {e.path: e.xet_hash for e in api.list_repo_tree(repo_id, revision=revision, recursive=True,
                                                          repo_type=repo_type)
            if isinstance(e, RepoFile) and e.xet_hash is not None}


def fetch(repo_id: str, items: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Any]:
    """hf_hub_download of each item in one Xet-on client process."""
    return run_client("xet_client.py", ["fetch", repo_id, json.dumps(items)], env)


def assert_through_xet(result: dict[str, Any], path: str) -> None:
    """No body of ``path`` came over /resolve: the client read it through Xet."""
    assert not [u for m, u in result["requests"] if m == "GET" and u.endswith(f"/{path}")]
    assert any("/xet-read-token/" in u for _m, u in result["requests"])


def test_pinned_downloads_and_squash_through_xet(
    xet_env: dict[str, str], api: HfApi, repo_name: str, tmp_path: Path
) -> None:
    rng = random.Random(17)
    v1, v2 = rng.randbytes(2_000_000), rng.randbytes(2_100_000)
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    commits = []
    for n, data in enumerate((v1, v2), 1):
        (tmp_path / f"v{n}.bin").write_bytes(data)
        commits.append(run_client("xet_client.py", ["upload", repo_id, str(tmp_path / f"v{n}.bin"), "w.bin"],
                                  xet_env)["commit"])
        if n == 1:
            api.create_tag(repo_id, tag="v1.0")
    c1, c2 = commits
    assert set(xet_hashes(api, repo_id, c1)) == set(xet_hashes(api, repo_id, c2)) == {"w.bin"}

    api.super_squash_history(repo_id, commit_message="squashed")
    squashed = api.model_info(repo_id).sha
    assert squashed not in (c1, c2) and [c.title for c in api.list_repo_commits(repo_id)] == ["squashed"]
    got = fetch(repo_id, [{"path": "w.bin", "revision": rev} for rev in ("main", "v1.0", c1, squashed, c2)],
                {**xet_env, "HF_HOME": str(tmp_path / "reader")})
    main, tagged, pinned, at_squash, gone = got["results"]
    assert Path(main["path"]).read_bytes() == v2
    assert Path(tagged["path"]).read_bytes() == v1  # the tag keeps v1 reachable
    assert Path(pinned["path"]).read_bytes() == v1
    assert Path(at_squash["path"]).read_bytes() == v2
    # v2's own commit was reachable only through the squashed history
    assert gone == {"error": "RevisionNotFoundError", "status": 404, "code": "RevisionNotFound"}
    assert_through_xet(got, "w.bin")


def test_private_repo_large_file_through_xet(
    xet_env: dict[str, str], api: HfApi, repo_name: str, tmp_path: Path
) -> None:
    data = random.Random(23).randbytes(1_500_000)
    (tmp_path / "secret.bin").write_bytes(data)
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id, private=True)
    run_client("xet_client.py", ["upload", repo_id, str(tmp_path / "secret.bin"), "secret.bin"], xet_env)
    assert set(xet_hashes(api, repo_id)) == {"secret.bin"}

    # One cache per reader: a client that finds the file in its cache serves it when the server says no.
    reader_env = {k: v for k, v in xet_env.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path / "reader")}
    got = fetch(repo_id, [{"path": "secret.bin", "token": token, "cache_dir": str(tmp_path / f"cache-{who}")}
                          for who, token in [("carol", TOKENS["carol"]),  # read member of acme
                                             ("bob", TOKENS["bob"]), ("anonymous", False)]], reader_env)
    carol, bob, anonymous = got["results"]
    assert Path(carol["path"]).read_bytes() == data
    hidden = {"error": "RepositoryNotFoundError", "status": 404, "code": "RepoNotFound"}
    assert bob == anonymous == hidden
    assert_through_xet(got, "secret.bin")

    # a read member cannot write through Xet either
    (tmp_path / "mine.bin").write_bytes(random.Random(29).randbytes(1_200_000))
    refused = run_client("xet_client.py", ["--errors-as-json", "upload", repo_id, str(tmp_path / "mine.bin"),
                                           "mine.bin"], {**xet_env, "HF_TOKEN": TOKENS["carol"]})
    assert refused == {"error": "HfHubHTTPError", "status": 403, "code": "Forbidden"}
    assert "mine.bin" not in api.list_repo_files(repo_id)


def test_dataset_parquet_upload_folder_and_load_through_xet(
    xet_env: dict[str, str], api: HfApi, repo_name: str, tmp_path: Path
) -> None:
    folder = toy_dataset(tmp_path / "ds", "---\nlicense: cc-by-4.0\n---\n# Toy\n")
    repo_id = f"acme/{repo_name}"
    run_client("xet_client.py", ["upload_folder", repo_id, str(folder), "dataset"], xet_env)
    assert set(xet_hashes(api, repo_id, repo_type="dataset")) == {
        "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}

    result = run_client("datasets_load.py", [repo_id], {**xet_env, "HF_HOME": str(tmp_path / "reader")})
    assert result["splits"] == ["test", "train"]
    assert result["train"] == TRAIN
    assert result["test_rows"] == 7
    assert result["streamed_first"] == TRAIN[0]
