"""A gated all-MiniLM-L6-v2: refused to the anonymous and the unapproved by the real clients
(``hf_hub_download``, ``SentenceTransformer``), loaded by the same user once accepted."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer

pytestmark = pytest.mark.slow


def test_gated_minilm(hf_env: dict[str, str], tmp_path: Path, server: LiveServer, api: HfApi) -> None:
    repo_id = f"alice/gated-minilm-{uuid.uuid4().hex[:8]}"
    run_client("minilm.py", ["push", repo_id], hf_env)
    api.update_repo_settings(repo_id, gated="manual")
    anonymous = {k: v for k, v in hf_env.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path / "anon")}
    bob = hf_env | {"HF_TOKEN": TOKENS["bob"], "HF_HOME": str(tmp_path / "bob")}

    for env, status in ((anonymous, 401), (bob, 403)):
        got = run_client("gated.py", ["download", repo_id, "config.json"], env)
        assert (got["ok"], got["error"], got["status"]) == (False, "GatedRepoError", status)
        loaded = run_client("gated.py", ["load", repo_id], env)
        assert loaded["ok"] is False and loaded["gated"] is True and loaded["status"] == status, loaded

    asked = httpx.post(f"{server.url}/api/models/{repo_id}/user-access-request", json={"fields": {}},
                       headers={"Authorization": f"Bearer {TOKENS['bob']}"})
    assert asked.json() == {"status": "pending"}
    assert run_client("gated.py", ["download", repo_id, "config.json"], bob)["gated"] is True
    api.accept_access_request(repo_id, "bob")
    assert run_client("gated.py", ["load", repo_id], bob) == {"ok": True, "dim": 384}
    assert run_client("gated.py", ["load", repo_id], anonymous)["gated"] is True
