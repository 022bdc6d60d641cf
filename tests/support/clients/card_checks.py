"""Client-side script: the card helpers that validate through HF_ENDPOINT's ``/api/validate-yaml``.

Usage: card_checks.py validate REPO_TYPE CARD_FILE | push REPO_ID REPO_TYPE CARD_FILE |
metadata_update REPO_ID METADATA_JSON. Prints one JSON object on the last line: the exception the
client raised (its class and message) or none, and the warnings it issued.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any


def run(action: str, args: list[str]) -> Any:
    from huggingface_hub import RepoCard, metadata_update

    if action == "validate":
        repo_type, path = args
        RepoCard(Path(path).read_text(), ignore_metadata_errors=True).validate(repo_type=repo_type)
        return None
    if action == "push":
        repo_id, repo_type, path = args
        return RepoCard(Path(path).read_text(), ignore_metadata_errors=True).push_to_hub(repo_id, repo_type=repo_type)
    if action == "metadata_update":
        repo_id, metadata = args
        return metadata_update(repo_id, json.loads(metadata), overwrite=True)
    raise SystemExit(f"unknown action {action}")


def main() -> None:
    out: dict[str, Any] = {"error": None, "message": None, "cause": None, "result": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out["result"] = run(sys.argv[1], sys.argv[2:])
        except Exception as exc:  # reported to the test, which asserts the class and message
            out["error"], out["message"] = type(exc).__name__, str(exc)
            out["cause"] = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
    out["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
