"""Xet with the default client (hf_xet on): push, pull, load, the hf CLI, and plain HTTP downloads.

Every client that uploads here runs in a subprocess WITHOUT ``HF_HUB_DISABLE_XET``; the
in-process ``HfApi`` of the fixtures has Xet disabled and so stands for ``HF_HUB_DISABLE_XET=1``
clients (and for files that arrive by LFS).
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.hf_api import RepoFile

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer

pytestmark = pytest.mark.slow


def files_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_minilm_upload_folder_snapshot_and_load_through_xet(
    xet_env: dict[str, str], api: HfApi, server: LiveServer, tmp_path: Path
) -> None:
    repo_id = "acme/all-MiniLM-L6-v2-xet"
    pushed = run_client("minilm.py", ["push", repo_id], xet_env)
    local_dir = Path(pushed["local_dir"])

    # The large files went through Xet: the tree says so, and the commit holds LFS pointers.
    tree = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True) if isinstance(e, RepoFile)}
    weights = tree["model.safetensors"]
    assert weights.lfs is not None and weights.xet_hash is not None and len(weights.xet_hash) == 64
    assert weights.lfs.sha256 == hashlib.sha256((local_dir / "model.safetensors").read_bytes()).hexdigest()
    assert tree["config.json"].xet_hash is None  # regular files stay in git

    # snapshot_download with Xet (a fresh cache): byte-identical, and no file body came over /resolve.
    snap_env = {**xet_env, "HF_HOME": str(tmp_path / "snapshot_home")}
    snapped = run_client("xet_client.py", ["snapshot", repo_id], snap_env)
    snap = Path(snapped["path"])
    assert files_of(snap) == files_of(local_dir)
    for rel in files_of(local_dir):
        assert filecmp.cmp(local_dir / rel, snap / rel, shallow=False), rel
    resolve_gets = [u for m, u in snapped["requests"] if m == "GET" and "/resolve/" in u]
    assert not any(u.endswith("/model.safetensors") for u in resolve_gets)
    assert any("/xet-read-token/" in u for _m, u in snapped["requests"])

    # sentence-transformers loads it (through Xet) and embeds exactly like the local folder.
    cold = run_client("minilm.py", ["cold", repo_id], {**xet_env, "HF_HOME": str(tmp_path / "load_home")})
    assert len(cold["remote"]) == 3 and len(cold["remote"][0]) == 384
    for remote_row, local_row in zip(cold["remote"], cold["local"], strict=True):
        assert max(abs(a - b) for a, b in zip(remote_row, local_row, strict=True)) < 1e-6

    # The same file for a client with Xet disabled: a plain GET, rebuilt by the server.
    path = hf_hub_download(repo_id, "model.safetensors", endpoint=server.url, token=TOKENS["alice"],
                           cache_dir=tmp_path / "plain")
    assert filecmp.cmp(path, local_dir / "model.safetensors", shallow=False)


def test_hf_cli_upload_and_download(xet_env: dict[str, str], server: LiveServer, tmp_path: Path,
                                    repo_name: str) -> None:
    data = random.Random(7).randbytes(3 * 1024 * 1024 + 12345)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    repo_id = f"alice/{repo_name}"
    hf = str(Path(sys.executable).parent / "hf")
    up = subprocess.run([hf, "upload", repo_id, str(src), "nested/weights.bin"], env=xet_env,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    down = subprocess.run([hf, "download", repo_id, "nested/weights.bin", "--local-dir", str(tmp_path / "out")],
                          env=xet_env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "out" / "nested" / "weights.bin").read_bytes() == data
    head = httpx.head(f"{server.url}/{repo_id}/resolve/main/nested/weights.bin")
    assert len(head.headers["x-xet-hash"]) == 64


def test_xet_file_over_plain_http_with_ranges(xet_env: dict[str, str], server: LiveServer, tmp_path: Path,
                                              repo_name: str) -> None:
    rng = random.Random(11)
    # Random bytes, a long run of zeros (compresses) and a repeated block (dedups inside the file).
    block = rng.randbytes(700_000)
    data = rng.randbytes(1_500_000) + bytes(600_000) + block + block + b"tail"
    src = tmp_path / "mixed.bin"
    src.write_bytes(data)
    repo_id = f"alice/{repo_name}"
    pushed = run_client("xet_client.py", ["upload", repo_id, str(src), "mixed.bin"], xet_env)
    commit = pushed["commit"]
    [metrics] = [m for m in pushed["metrics"] if m["scope"] == "file"]
    assert metrics["total_bytes"] == len(data) and metrics["deduped_bytes"] > 0  # the repeated block

    url = f"{server.url}/{repo_id}/resolve/main/mixed.bin"
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["x-linked-size"] == str(len(data))
    assert head.headers["x-linked-etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert head.headers["x-repo-commit"] == commit
    xet_hash = head.headers["x-xet-hash"]
    assert head.headers["link"] == (
        f'<{server.url}/api/models/{repo_id}/xet-read-token/{commit}>; rel="xet-auth"'
    )
    full = httpx.get(url)
    assert full.status_code == 200 and full.content == data
    for _ in range(12):
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randrange(1, 400_000))
        part = httpx.get(url, headers={"Range": f"bytes={start}-{end - 1}"})
        assert part.status_code == 206, (start, end)
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}"
        assert part.content == data[start:end], (start, end)
    assert httpx.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    assert httpx.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416

    curl = subprocess.run(["curl", "-sf", "-r", "2100000-2900000", url], capture_output=True, timeout=60)
    assert curl.returncode == 0 and curl.stdout == data[2_100_000:2_900_001]

    # tree and paths-info carry xetHash; the token route answers both ways hf clients read it.
    tree = httpx.get(f"{server.url}/api/models/{repo_id}/tree/main").json()
    [entry] = [e for e in tree if e["path"] == "mixed.bin"]
    assert entry["xetHash"] == xet_hash and entry["lfs"]["oid"] == hashlib.sha256(data).hexdigest()
    info = httpx.post(f"{server.url}/api/models/{repo_id}/paths-info/main", json={"paths": ["mixed.bin"]}).json()
    assert info[0]["xetHash"] == xet_hash
    tok = httpx.get(f"{server.url}/api/models/{repo_id}/xet-read-token/{commit}")
    body = tok.json()
    assert tok.headers["x-xet-access-token"] == body["accessToken"]
    assert tok.headers["x-xet-cas-url"] == body["casUrl"] == f"{server.url}/xet"
    assert int(tok.headers["x-xet-token-expiration"]) == body["exp"]

    # Download through Xet (HEAD advertises it; no GET of /resolve), pinned to the commit.
    env = {**xet_env, "HF_HOME": str(tmp_path / "dl")}
    got = run_client("xet_client.py", ["download", repo_id, "mixed.bin", commit], env)
    assert Path(got["path"]).read_bytes() == data
    assert not [u for m, u in got["requests"] if m == "GET" and "/resolve/" in u]

    # ... and with HF_HUB_DISABLE_XET=1 (this process): the plain GET, byte-identical.
    plain = hf_hub_download(repo_id, "mixed.bin", endpoint=server.url, cache_dir=tmp_path / "plain")
    assert Path(plain).read_bytes() == data


def test_lfs_uploads_stay_lfs(api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path) -> None:
    """A file that arrived through Git LFS (Xet disabled) is served as before: no xetHash."""
    repo_id = api.create_repo(repo_name).repo_id
    data = os.urandom(200_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    head = httpx.head(f"{server.url}/{repo_id}/resolve/main/w.bin")
    assert head.status_code == 200 and "x-xet-hash" not in head.headers and "link" not in head.headers
    tree = httpx.get(f"{server.url}/api/models/{repo_id}/tree/main").json()
    assert all("xetHash" not in e for e in tree)
    assert httpx.get(f"{server.url}/{repo_id}/resolve/main/w.bin").content == data
