"""Done-when 5: ``modelyard gc`` after deleting a repo and squashing history; ``fsck`` on Xet data.

Files go up through the real hf_xet client (one upload per file, so each gets its own xorbs) and
one through Git LFS. What gc must free is known from the blob folder itself: the xorb files that
appeared when the now-unreachable files were pushed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.integration.conftest import BACKENDS
from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer, seeded_hub

pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"xet-gc-{request.param}")) as hub, hub.running() as live:
        yield live


def xorb_files(hub: LiveServer) -> set[Path]:
    return {p for p in (hub.data_dir / "blobs" / "xet" / "xorbs").rglob("*") if p.is_file()}


def scan_rows(hub: LiveServer) -> set[str]:
    """The sha256 of every large file with a scan row (``file_scans``)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(hub.database_url or f"sqlite:///{hub.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT sha256 FROM file_scans WHERE sha256 IS NOT NULL"))}
    finally:
        engine.dispose()


def blob_bytes(paths: set[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def test_gc_frees_unreachable_and_keeps_reachable(hub: LiveServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKENS["alice"], "HF_HOME": str(tmp_path / "home"),
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    rng = random.Random(5)
    files = {name: rng.randbytes(1_500_000 + i) for i, name in enumerate("abcd")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    api = HfApi(endpoint=hub.url, token=TOKENS["alice"])  # Xet disabled in this process: Git LFS
    added: dict[str, set[Path]] = {}

    def push(repo_id: str, name: str) -> None:
        before = xorb_files(hub)
        run_client("xet_client.py", ["upload", repo_id, str(tmp_path / name), f"{name}.bin"], env)
        added[f"{repo_id}:{name}"] = xorb_files(hub) - before

    push("alice/keep", "a")
    push("alice/keep", "b")
    api.delete_file("b.bin", "alice/keep")  # still reachable through history
    push("alice/keep", "c")
    push("alice/drop", "a")  # the same bytes: deduplicated, nothing new
    push("alice/drop", "d")
    lfs_data = rng.randbytes(300_000)
    api.upload_file(path_or_fileobj=lfs_data, path_in_repo="e.bin", repo_id="alice/drop")
    assert added["alice/drop:a"] == set()
    assert all(added[k] for k in ("alice/keep:a", "alice/keep:b", "alice/keep:c", "alice/drop:d"))
    lfs_blobs = {p for p in (hub.data_dir / "blobs" / "lfs").rglob("*") if p.is_file()}
    assert len(lfs_blobs) == 1

    assert hub.cli("fsck").stdout.strip() == "fsck: no problems found"
    # Every file is referenced: only the shard of the deduplicated push (it added no file) goes.
    first = json.loads(hub.cli("gc", "--grace", "0").stdout)
    assert first["xorb_bytes"] == first["lfs_bytes"] == first["xet_files"] == 0 and first["shards"] == 1

    api.delete_repo("alice/drop")
    api.super_squash_history("alice/keep")
    # Inside the grace period nothing goes, although it is unreachable now.
    assert json.loads(hub.cli("gc").stdout)["freed_bytes"] == 0
    gone = added["alice/keep:b"] | added["alice/drop:d"]
    kept = added["alice/keep:a"] | added["alice/keep:c"]
    gone_bytes = blob_bytes(gone)
    before = json.loads(hub.cli("storage").stdout)
    hub.settle()  # the scans of every pushed file are queued (by the event jobs)
    scanned = scan_rows(hub)
    report = json.loads(hub.cli("gc", "--grace", "0").stdout)
    after = json.loads(hub.cli("storage").stdout)
    # The scan results of the deleted files go with them (d.bin and e.bin; b.bin's bytes too).
    deleted = {hashlib.sha256(files[n]).hexdigest() for n in "bd"} | {hashlib.sha256(lfs_data).hexdigest()}
    assert deleted <= scanned and report["file_scans"] == len(deleted)
    assert scan_rows(hub) == scanned - deleted

    assert report["xorbs"] == len(gone) and report["xorb_bytes"] == gone_bytes
    assert report["lfs_objects"] == 1 and report["lfs_bytes"] == len(lfs_data)
    assert report["xet_files"] == 2 and report["shards"] == 2
    assert not any(p.exists() for p in gone | lfs_blobs)
    assert all(p.exists() for p in kept)
    assert after["xorb_bytes"] == before["xorb_bytes"] - report["xorb_bytes"] == blob_bytes(kept)
    assert after["lfs_bytes"] == 0
    [keep] = after["repos"]
    assert keep["xet_files"] == 2 and keep["used_storage"] >= keep["xet_physical_bytes"] > 0

    # What is still reachable downloads byte-identical, through Xet and over plain HTTP.
    for name in "ac":
        got = run_client("xet_client.py", ["download", "alice/keep", f"{name}.bin"],
                         {**env, "HF_HOME": str(tmp_path / f"reader-{name}")})
        assert Path(got["path"]).read_bytes() == files[name]
        assert httpx.get(f"{hub.url}/alice/keep/resolve/main/{name}.bin").content == files[name]
    assert hub.cli("fsck").stdout.strip() == "fsck: no problems found"
    assert json.loads(hub.cli("gc", "--grace", "0").stdout)["freed_bytes"] == 0

    # fsck reads Xet data back: one flipped byte in a stored xorb is reported.
    victim = sorted(added["alice/keep:c"])[0]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    broken = hub.cli("fsck", check=False)
    assert broken.returncode == 1
    # Random bytes are stored uncompressed: the flipped byte sits in chunk data, so the file still
    # decodes and only its sha256 tells (a flip in a chunk header would say "cannot be reconstructed").
    [line] = broken.stdout.splitlines()
    assert line.startswith("model alice/keep refs/heads/main:c.bin: Xet file ")
    assert ": reconstructs to sha256 " in line and line.endswith(f", expected {hashlib.sha256(files['c']).hexdigest()}")
    victim.unlink()
    missing = hub.cli("fsck", check=False)
    assert missing.returncode == 1 and "missing from storage" in missing.stdout
