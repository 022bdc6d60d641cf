"""Scanning a 1 GiB PyTorch checkpoint: the hub's sandboxed scan vs picklescan on the local file.

Writes a 1 GiB state dict with ``torch.save`` (the zip format every recent PyTorch writes, and
the legacy format), imports it into a hub (SQLite + local blobs) as an LFS file, then times the
scan the job runs (``services/scans.py: scan_content``: first bytes, then the sandbox child,
which asks the hub for each range it reads) while counting the bytes read from the blob store.
Side by side, the same file scanned in this process by ``picklescan.scanner.scan_file_path``
(no sandbox, a local file) and read whole by ``sha256`` (what a scan that read the tensor data
would cost at least). The first sandboxed scan starts its child process; the warm one reuses it.

Usage: python -m bench.bench_scan [--gib 1] [--out result.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_metadata import CountingStore
from modelyard.catalog.migrate import upgrade
from modelyard.config import Settings
from modelyard.services.accounts import create_user
from modelyard.services.hub import Hub
from modelyard.services.importer import import_folder

TARGET_S = 5.0


def checkpoint(path: Path, gib: float, legacy: bool) -> None:
    import torch

    per = int(gib * 1024**3) // 16 // 4
    state = {f"layers.{i}.weight": torch.ones(per, dtype=torch.float32) for i in range(16)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)


def measure(hub: Hub, name: str, model: Path) -> dict[str, Any]:
    from picklescan.scanner import scan_file_path

    from modelyard.catalog.scans import Scan
    from modelyard.services.files import list_tree
    from modelyard.services.scans import scan_content, scan_row

    path = model / name
    size = path.stat().st_size
    _snap, entries = list_tree(hub, None, "model", "bench/scan", "main", "", True)
    entry = next(e for e in entries if e.path == name)
    scan = Scan(status="queued", report=None, rules=None, scanned_at=None, **scan_row(entry))
    hub.scanner.close()  # the first scan starts a sandbox child: cold
    counting = CountingStore(hub.blobs)
    hub.blobs = counting  # type: ignore[assignment]
    try:
        timings = []
        for _ in range(2):  # cold (starts the sandbox), then warm
            counting.read_bytes.clear()
            t0 = time.perf_counter()
            status, report = scan_content(hub, scan)
            timings.append(time.perf_counter() - t0)
        read = sum(counting.read_bytes.values())
    finally:
        hub.blobs = counting.inner
    t0 = time.perf_counter()
    direct = scan_file_path(str(path))
    direct_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    sha_s = time.perf_counter() - t0
    return {
        "file": name, "size": size, "status": status, "imports": len(report.get("imports", [])),
        "cold_s": round(timings[0], 3), "warm_s": round(timings[1], 3), "bytes_read": read,
        "picklescan_local_s": round(direct_s, 3), "picklescan_globals": len(direct.globals),
        "sha256_s": round(sha_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="a 0.1 GiB checkpoint")
    args = parser.parse_args()
    gib = 0.1 if args.quick else args.gib
    work = Path(tempfile.mkdtemp(prefix="modelyard-bench-scan-"))
    try:
        model = work / "model"
        model.mkdir()
        checkpoint(model / "pytorch_model.bin", gib, legacy=False)
        checkpoint(model / "legacy.pt", gib, legacy=True)
        hub = Hub(Settings(data_dir=work / "data"))
        upgrade(hub.db)
        create_user(hub, "bench", admin=True)
        import_folder(hub, model, "bench/scan", "model", False, "import", "bench")
        runs = [measure(hub, name, model) for name in ("pytorch_model.bin", "legacy.pt")]
        hub.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"gib": gib, "runs": runs}
    print(json.dumps(result), file=sys.stderr)
    print(headline(result), "- target", "met" if met(result) else "MISSED", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def met(result: dict[str, Any]) -> bool:
    return all(r["cold_s"] < TARGET_S and r["bytes_read"] < r["size"] / 100 and r["status"] == "safe"
               for r in result["runs"])


def headline(result: dict[str, Any]) -> str:
    return "; ".join(
        f"{r['file']} ({r['size'] / 1024**3:.2f} GiB): {r['cold_s']} s cold, {r['warm_s']} s warm, "
        f"{r['bytes_read']:,} bytes read" for r in result["runs"])


def markdown(result: dict[str, Any]) -> str:
    rows = [
        "| file | size | status | sandboxed scan, cold | warm | bytes read | picklescan, local file, in process "
        "| ratio (warm / picklescan) | sha256 of the whole file |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        ratio = r["warm_s"] / r["picklescan_local_s"] if r["picklescan_local_s"] else float("nan")
        rows.append(
            f"| {r['file']} | {r['size'] / 1024**3:.2f} GiB | {r['status']} ({r['imports']} imports) | {r['cold_s']} s "
            f"| {r['warm_s']} s | {r['bytes_read']:,} | {r['picklescan_local_s']} s | {ratio:.1f}x "
            f"| {r['sha256_s']} s |"
        )
    rows.append("")
    verdict = "met" if met(result) else "**not met**"
    rows.append(f"Target: under {TARGET_S:g} s, reading under 1% of the file: {verdict}.")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
