"""Done-when 1: the real all-MiniLM-L6-v2 pushed and pulled by the real clients."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from tests.support.clients.run import run_client

pytestmark = pytest.mark.slow


def test_minilm_push_pull_load(hf_env: dict[str, str], tmp_path: Path) -> None:
    repo_id = "acme/all-MiniLM-L6-v2"
    pushed = run_client("minilm.py", ["push", repo_id], hf_env)
    local_dir = Path(pushed["local_dir"])

    snapshot_env = {**hf_env, "HF_HOME": str(tmp_path / "snapshot_home")}
    snap = Path(run_client("minilm.py", ["snapshot", repo_id], snapshot_env)["path"])
    local_files = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
    remote_files = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
    assert remote_files == local_files
    for rel in local_files:
        assert filecmp.cmp(local_dir / rel, snap / rel, shallow=False), rel

    cold = run_client("minilm.py", ["cold", repo_id], hf_env)
    assert cold["auto_model_class"] == "BertModel"
    assert cold["tokens"][0] == 101 and cold["tokens"][-1] == 102
    assert len(cold["remote"]) == 3 and len(cold["remote"][0]) == 384
    for remote_row, local_row in zip(cold["remote"], cold["local"], strict=True):
        assert max(abs(a - b) for a, b in zip(remote_row, local_row, strict=True)) < 1e-6
    assert any(m == "GET" and "/resolve/" in u for m, u in cold["requests"])

    # Same HF_HOME, new process: the cache is warm, so no file contents are fetched again.
    warm = run_client("minilm.py", ["warm", repo_id], hf_env)
    assert warm["remote"] == cold["remote"]
    content_gets = [u for m, u in warm["requests"] if m == "GET" and "/resolve/" in u]
    assert content_gets == []
    # ... yet it still asks the hub which revision main is (the repo info), as a warm load does
    assert ("GET", f"{hf_env['HF_ENDPOINT']}/api/models/{repo_id}") in [tuple(r) for r in warm["requests"]]
