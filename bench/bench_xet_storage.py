"""Xet storage: server-side xorb validation speed, and bytes stored for 10 versions of a model.

Validation: ``modelyard.xet.xorb.parse_xorb`` (parse every chunk header, decompress, BLAKE3 every
chunk, merkle hash, compare with the claimed name) on 64 MiB xorbs, in this process, one thread
(BLAKE3 and LZ4 run single-threaded here). Three kinds of content: random bytes (stored
uncompressed), float32 weights (byte-grouped + LZ4, as hf_xet picks for them) and repetitive
text (LZ4). Throughput is in uncompressed bytes per second. Target: at least 500 MB/s on one core.

Versions: a 100 MiB safetensors model (50 float32 tensors) is pushed through the real hf_xet
client, then 9 more versions, each replacing one tensor (2% of the bytes). Reported: the xorb
bytes the server stores (``modelyard storage``) after each version against keeping every version
as a full copy (as Git LFS does).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from bench.bench_xet_transfer import xet_client
from bench.common import MIB, main, median, modelyard, workspace

TARGET_MBS = 500.0
VERSIONS = 10
TENSORS = 50
ELEMENTS = 512 * 1024  # float32: 2 MiB per tensor


def _chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def validation(reps: int) -> dict[str, Any]:
    from modelyard.xet.xorb import Compression, parse_xorb, serialize_xorb

    rng = np.random.default_rng(0)
    text = b"".join(f"token_{i % 5000} appears in line {i}\n".encode() for i in range(2_000_000))
    contents = {
        "random (no compression)": (rng.bytes(63 * MIB), Compression.LZ4),
        "float32 weights (BG4+LZ4)": (rng.standard_normal(63 * MIB // 4, dtype=np.float32).tobytes(),
                                      Compression.BG4_LZ4),
        "text (LZ4)": (text[: 63 * MIB], Compression.LZ4),
    }
    out: dict[str, Any] = {}
    for name, (data, scheme) in contents.items():
        body, index = serialize_xorb(_chunks(data), scheme)
        claimed = index.hash()
        seconds = []
        for _ in range(reps):
            start = time.process_time()  # CPU time of this (single-threaded) work: one core
            parse_xorb(body, claimed)
            seconds.append(time.process_time() - start)
        out[name] = {"uncompressed": len(data), "stored": len(body), "seconds": seconds,
                     "mb_per_s": len(data) / 1e6 / median(seconds)}
        print(f"validation {name}: {out[name]['mb_per_s']:.0f} MB/s", flush=True)
    return out


def versions() -> dict[str, Any]:
    from safetensors.numpy import save_file

    ws = workspace()
    rng = np.random.default_rng(1)
    tensors = {f"layer.{i:02d}.weight": rng.standard_normal(ELEMENTS, dtype=np.float32) for i in range(TENSORS)}
    rows: list[dict[str, int]] = []
    with modelyard() as hub:
        for v in range(VERSIONS):
            if v:
                tensors[f"layer.{(v * 7) % TENSORS:02d}.weight"] = rng.standard_normal(ELEMENTS, dtype=np.float32)
            path = ws / "model.safetensors"
            save_file(tensors, str(path))
            pushed = xet_client(hub, ws / "home", "upload", "admin/versions", str(path), "model.safetensors")
            [commit] = [m for m in pushed["metrics"] if m["scope"] == "commit"]
            totals = json.loads(hub.live.cli("storage").stdout)
            rows.append({"version": v + 1, "size": path.stat().st_size, "xorb_bytes": totals["xorb_bytes"],
                         "shard_bytes": totals["shard_bytes"], "sent": commit["total_bytes_uploaded"]})
            print(f"version {v + 1}: stored {totals['xorb_bytes'] / MIB:.1f} MiB", flush=True)
    return {"rows": rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {"bench": "xet_storage", "validation": validation(1 if args.quick else 5), "versions": versions()}


def slowest(result: dict[str, Any]) -> float:
    return min(v["mb_per_s"] for v in result["validation"].values())


def met(result: dict[str, Any]) -> bool:
    return slowest(result) >= TARGET_MBS


def headline(result: dict[str, Any]) -> str:
    last = result["versions"]["rows"][-1]
    full = sum(r["size"] for r in result["versions"]["rows"])
    return (f"validation ≥ {slowest(result):.0f} MB/s; 10 versions store "
            f"{last['xorb_bytes'] / MIB:.0f} MiB vs {full / MIB:.0f} MiB as full copies")


def markdown(result: dict[str, Any]) -> str:
    lines = ["| xorb content (64 MiB) | stored bytes | validation, one core | target ≥ 500 MB/s |",
             "|---|---|---|---|"]
    for name, v in result["validation"].items():
        ok = "met" if v["mb_per_s"] >= TARGET_MBS else "**not met**"
        lines.append(f"| {name} | {v['stored'] / MIB:.1f} MiB | {v['mb_per_s']:.0f} MB/s | {ok} |")
    lines += ["", "| version | file | stored by Xet (cumulative xorbs) | 10 full copies (cumulative) | "
              "sent by the client |", "|---|---|---|---|---|"]
    full = 0
    for r in result["versions"]["rows"]:
        full += r["size"]
        lines.append(f"| {r['version']} | {r['size'] / MIB:.1f} MiB | {r['xorb_bytes'] / MIB:.1f} MiB | "
                     f"{full / MIB:.1f} MiB | {r['sent'] / MIB:.2f} MiB |")
    last = result["versions"]["rows"][-1]
    lines += ["", f"After {len(result['versions']['rows'])} versions Xet stores "
              f"{last['xorb_bytes'] / full:.1%} of what full copies take (plus {last['shard_bytes'] / 1024:.0f} KiB of "
              "shards)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, __doc__ or "")
