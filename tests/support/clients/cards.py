"""Client-side script: ``ModelCard.load`` and ``metadata_update`` against HF_ENDPOINT.

Usage: cards.py REPO_ID TAG; prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from huggingface_hub import ModelCard, metadata_update

    repo_id, tag = sys.argv[1], sys.argv[2]
    card = ModelCard.load(repo_id)
    url = metadata_update(repo_id, {"tags": [tag]}, overwrite=True)
    print(json.dumps({"license": card.data.license, "datasets": card.data.datasets, "commit_url": url}))


if __name__ == "__main__":
    main()
