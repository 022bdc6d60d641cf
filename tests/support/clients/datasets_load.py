"""Client-side script: ``datasets.load_dataset`` (and streaming) from the hub at HF_ENDPOINT.

Usage: datasets_load.py REPO_ID; prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from datasets import load_dataset

    repo_id = sys.argv[1]
    ds = load_dataset(repo_id)
    streamed = load_dataset(repo_id, split="train", streaming=True)
    out = {
        "splits": sorted(ds.keys()),
        "train": ds["train"].to_list(),
        "test_rows": ds["test"].num_rows if "test" in ds else 0,
        "streamed_first": next(iter(streamed)),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
