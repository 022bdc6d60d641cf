"""Gated repos and the real clients in subprocesses: a gated all-MiniLM-L6-v2 refused to the
anonymous and the unapproved (``hf_hub_download``, ``SentenceTransformer``) and loaded by the same
user once accepted; a gated Xet file and the default install's Xet download."""

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


def test_gated_xet_file(xet_env: dict[str, str], tmp_path: Path, server: LiveServer, api: HfApi) -> None:
    """The default install downloads through Xet: its read token and the CAS reconstruction are
    gated like ``/resolve``, and a token obtained before access was withdrawn stops working."""
    repo_id = f"alice/gated-xet-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo_id)
    data = uuid.uuid4().bytes * 40_000
    (tmp_path / "w.bin").write_bytes(data)
    run_client("xet_client.py", ["upload", repo_id, str(tmp_path / "w.bin"), "w.bin"], xet_env)
    api.update_repo_settings(repo_id, gated="manual")
    bob = xet_env | {"HF_TOKEN": TOKENS["bob"], "HF_HOME": str(tmp_path / "bob")}
    refused = run_client("xet_client.py", ["--errors-as-json", "download", repo_id, "w.bin"], bob)
    assert (refused["error"], refused["status"], refused["code"]) == ("GatedRepoError", 403, "GatedRepo")

    api.grant_access(repo_id, "bob")
    got = run_client("xet_client.py", ["download", repo_id, "w.bin"], bob)
    assert Path(got["path"]).read_bytes() == data
    assert not [u for m, u in got["requests"] if m == "GET" and "/resolve/" in u]  # through Xet

    auth = {"Authorization": f"Bearer {TOKENS['bob']}"}
    xet_hash = httpx.head(f"{server.url}/{repo_id}/resolve/main/w.bin", headers=auth).headers["x-xet-hash"]
    token = httpx.get(f"{server.url}/api/models/{repo_id}/xet-read-token/main", headers=auth).json()
    plan = f"{token['casUrl']}/v1/reconstructions/{xet_hash}"
    cas_auth = {"Authorization": f"Bearer {token['accessToken']}"}
    assert httpx.get(plan, headers=cas_auth).status_code == 200
    api.cancel_access_request(repo_id, "bob")
    r = httpx.get(plan, headers=cas_auth)
    assert (r.status_code, r.headers.get("x-error-code")) == (403, "GatedRepo")
