"""Client-side script: what a user gets from a gated repo through HF_ENDPOINT (HF_TOKEN or none).

Usage: gated.py download REPO_ID FILENAME | load REPO_ID; prints one JSON object on the last line:
``{"ok": true, ...}`` or ``{"ok": false, "gated": bool, "error": class name, "status": int|null}``
(``gated``: a ``huggingface_hub.errors.GatedRepoError`` is the error or among its causes).
"""

from __future__ import annotations

import json
import sys


def failure(exc: BaseException) -> dict[str, object]:
    from huggingface_hub.errors import GatedRepoError

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    gated = next((e for e in chain if isinstance(e, GatedRepoError)), None)
    response = getattr(gated, "response", None)
    return {"ok": False, "gated": gated is not None, "error": type(exc).__name__,
            "status": response.status_code if response is not None else None}


def main() -> None:
    mode, repo_id = sys.argv[1], sys.argv[2]
    try:
        if mode == "download":
            from huggingface_hub import hf_hub_download

            out: dict[str, object] = {"ok": True, "path": hf_hub_download(repo_id, sys.argv[3])}
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(repo_id, device="cpu")
            out = {"ok": True, "dim": len(model.encode(["A gated hub."])[0])}
    except Exception as exc:  # noqa: BLE001 - the failure is the result
        out = failure(exc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
