"""Done-when 2: a dataset repo of parquet files loads with ``datasets.load_dataset``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.support.clients.run import run_client

pytestmark = pytest.mark.slow


def test_load_dataset_from_parquet_files(api: HfApi, hf_env: dict[str, str], tmp_path: Path, repo_name: str) -> None:
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    train = [{"text": f"row {i}", "label": i % 3} for i in range(50)]
    test = [{"text": f"held out {i}", "label": i % 2} for i in range(7)]
    pq.write_table(pa.Table.from_pylist(train), folder / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(test), folder / "data" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\ntask_categories:\n- text-classification\n---\n# Toy\n")
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
    assert result["train"] == train
    assert result["test_rows"] == 7
    assert result["streamed_first"] == train[0]
