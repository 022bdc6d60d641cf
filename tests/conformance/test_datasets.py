"""Done-when 2: a dataset repo of parquet files loads with ``datasets.load_dataset``."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.support.clients.run import run_client
from tests.support.datasets import TRAIN, toy_dataset

pytestmark = pytest.mark.slow


def test_load_dataset_from_parquet_files(api: HfApi, hf_env: dict[str, str], tmp_path: Path, repo_name: str) -> None:
    card = "---\nlicense: cc-by-4.0\ntask_categories:\n- text-classification\n---\n# Toy\n"
    folder = toy_dataset(tmp_path / "ds", card)
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset")

    files = api.list_repo_files(repo_id, repo_type="dataset")
    assert "data/train-00000-of-00001.parquet" in files
    info = api.dataset_info(repo_id, files_metadata=True)
    parquet = [s for s in info.siblings if s.rfilename.endswith(".parquet")]
    assert parquet and all(s.lfs is not None for s in parquet)
    assert info.card_data["license"] == "cc-by-4.0"

    result = run_client("datasets_load.py", [repo_id], hf_env)
    assert result["splits"] == ["test", "train"]
    assert result["train"] == TRAIN
    assert result["test_rows"] == 7
    assert result["streamed_first"] == TRAIN[0]
