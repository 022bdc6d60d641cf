"""Done-when 2: chunk dedup with the real client. SQLite only (a 200 MB model, pushed four times).

A ~200 MB safetensors file is pushed, then a version in which two of its fifty tensors (4% of the
bytes) are new: the second push must send and store under 10% of the file, and the server's
counters (``modelyard storage``) must agree with hf_xet's own report byte for byte. The same file
pushed to a second repository, from the same machine and from a fresh one, stores nothing new.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer, seeded_hub

pytestmark = pytest.mark.slow

TENSORS = 50
ELEMENTS = 1024 * 1024  # float32: 4 MiB per tensor, 200 MiB in all
CHANGED = (10, 30)


def weights(seed: int, changed: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i:02d}.weight": rng.standard_normal(ELEMENTS, dtype=np.float32) for i in range(TENSORS)}
    fresh = np.random.default_rng(seed + 1)
    for i in changed:
        tensors[f"layer.{i:02d}.weight"] = fresh.standard_normal(ELEMENTS, dtype=np.float32)
    return tensors


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub("sqlite", tmp_path_factory.mktemp("xet-dedup")) as hub, hub.running() as live:
        yield live


def client_env(hub: LiveServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKENS["alice"], "HF_HOME": str(home),
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    return env


def storage(hub: LiveServer) -> dict[str, int]:
    totals: dict[str, int] = json.loads(hub.cli("storage").stdout)
    return totals


def push(hub: LiveServer, home: Path, repo_id: str, local: Path) -> dict[str, Any]:
    """hf_xet's dedup report of the upload, with the commit it made (``commit``)."""
    result = run_client("xet_client.py", ["upload", repo_id, str(local), "model.safetensors"],
                        client_env(hub, home))
    [metrics] = [m for m in result["metrics"] if m["scope"] == "commit"]
    return {**metrics, "commit": result["commit"]}


def hub_dedup(hub: LiveServer, repo_id: str, commit: str) -> dict[str, int]:
    """What the hub says Xet deduplicated for a commit (its commit page shows the same)."""
    response = httpx.get(f"{hub.url}/api/models/{repo_id}/commit/{commit}",
                         headers={"Authorization": f"Bearer {TOKENS['alice']}"}, timeout=60)
    assert response.status_code == 200, response.text
    page = httpx.get(f"{hub.url}/{repo_id}/commit/{commit}", timeout=60).text
    xet: dict[str, int] = response.json()["xet"]
    assert f"{xet['files']} new large file" in page and "already stored" in page
    return xet


def test_new_version_and_second_repo_store_only_what_changed(hub: LiveServer, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1.safetensors", tmp_path / "v2.safetensors"
    save_file(weights(1), str(v1))
    save_file(weights(1, CHANGED), str(v2))
    size = v2.stat().st_size
    assert 200 * 1024 * 1024 < size < 201 * 1024 * 1024
    changed_fraction = len(CHANGED) / TENSORS
    assert changed_fraction <= 0.05
    home = tmp_path / "laptop"

    before = storage(hub)
    first = push(hub, home, "alice/big-model", v1)
    after_first = storage(hub)
    assert first["new_bytes"] > 0.99 * size  # random weights: nothing to share yet
    assert after_first["xorb_bytes"] - before["xorb_bytes"] == first["xorb_bytes_uploaded"]

    second = push(hub, home, "alice/big-model", v2)
    after_second = storage(hub)
    stored = after_second["xorb_bytes"] - after_first["xorb_bytes"]
    sent = second["xorb_bytes_uploaded"] + second["shard_bytes_uploaded"]
    print(f"\nv2 of {size} bytes: client sent {sent} ({sent / size:.2%}), server stored {stored} "
          f"({stored / size:.2%}), client deduped {second['deduped_bytes']}")
    assert second["total_bytes"] == size
    assert sent < 0.10 * size and stored < 0.10 * size
    # Server counters and hf_xet's report agree exactly: xorb bodies, and the shard it sent.
    assert stored == second["xorb_bytes_uploaded"]
    assert after_second["shard_bytes"] - after_first["shard_bytes"] == second["shard_bytes_uploaded"]
    # Each commit's page says what Xet deduplicated: hf_xet's own figure, byte for byte.
    for metrics in (first, second):
        assert hub_dedup(hub, "alice/big-model", metrics["commit"]) == {
            "files": 1, "bytes": metrics["total_bytes"], "reusedBytes": metrics["deduped_bytes"],
            "newBytes": metrics["total_bytes"] - metrics["deduped_bytes"]}

    # The same file to a second repository: from the same machine, then from a fresh one.
    again = push(hub, home, "alice/big-model-copy", v2)
    fresh = push(hub, tmp_path / "other-machine", "alice/big-model-copy2", v2)
    after_copies = storage(hub)
    assert after_copies["xorb_bytes"] == after_second["xorb_bytes"]  # nothing new stored
    assert after_copies["xorbs"] == after_second["xorbs"]
    assert again["xorb_bytes_uploaded"] == 0  # the client knew it had sent those chunks
    print(f"second repo: same machine sent {again['total_bytes_uploaded']} bytes, a fresh machine sent "
          f"{fresh['total_bytes_uploaded']} (global dedup found {fresh['deduped_bytes_by_global_dedup']})")
    assert fresh["deduped_bytes_by_global_dedup"] > 0
    # A first commit of another repo: every chunk was stored before it (for alice/big-model).
    for repo_id, metrics in (("alice/big-model-copy", again), ("alice/big-model-copy2", fresh)):
        assert hub_dedup(hub, repo_id, metrics["commit"])["reusedBytes"] == size == metrics["deduped_bytes"]

    # Accounting: each repo's logical bytes are its files; physical bytes count shared chunks once.
    repos = {r["repo"]: r for r in after_copies["repos"]}  # type: ignore[index]
    big = repos["alice/big-model"]
    assert big["xet_logical_bytes"] == v1.stat().st_size + size
    first_stored = after_first["xorb_bytes"] - before["xorb_bytes"]
    assert first_stored <= big["xet_physical_bytes"] <= first_stored + stored  # the two versions share chunks
    assert big["used_storage"] >= big["xet_physical_bytes"]
    assert repos["alice/big-model-copy"]["xet_physical_bytes"] < 1.1 * first_stored

    # And the copy downloads byte-identical through Xet.
    got = run_client("xet_client.py", ["download", "alice/big-model-copy2", "model.safetensors"],
                     client_env(hub, tmp_path / "reader"))
    digest = hashlib.sha256()
    with open(got["path"], "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(v2.read_bytes()).hexdigest()
