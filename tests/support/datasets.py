"""A toy dataset folder: two parquet splits and a card."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TRAIN = [{"text": f"row {i}", "label": i % 3} for i in range(50)]
TEST = [{"text": f"held out {i}", "label": i % 2} for i in range(7)]


def toy_dataset(folder: Path, card: str) -> Path:
    """Write ``data/{train,test}-00000-of-00001.parquet`` and ``README.md`` under ``folder``."""
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(TRAIN), folder / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(TEST), folder / "data" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text(card)
    return folder
