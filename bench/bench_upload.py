"""LFS upload of a 1 GiB file with ``HfApi.upload_file`` (Xet off) against hashing plus copying it.

Target: the upload takes at most 2x the baseline, which is ``hashlib`` sha256 over the file plus
``shutil.copyfile`` of it (to the same disk), measured in the same run. The upload's time is the
whole ``upload_file`` call: the client's own sha256 pass, the LFS batch, the PUT (the server
hashes, writes and fsyncs), verify and the commit. The baseline's copy is not fsynced.

Each run starts a fresh server and afterwards deletes the copy and the server's data, so baseline
and upload both write into recycled page-cache memory (see "Reading these numbers" above).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import GIB, Hub, main, make_file, median, modelyard, stamp, timed, upload, workspace

TARGET_RATIO = 2.0
SIZE = GIB

NOTES = """\
**Where the time goes** (the figures in this paragraph were measured on 2026-11-27, during
development). The client hashes the whole file (about 0.6 s per GiB) before it starts
the PUT; that pass is fixed cost. The PUT then takes about one server-side sha256 of the
stream plus a little: three things run side by side on the two cores besides the client's
sending. The event loop receives the body through ``http/protocol.py`` (uvicorn's httptools
protocol with the body pieces listed, not appended to a growing buffer and copied out: about
0.2 s of CPU per GiB instead of 0.9 s), a worker thread hashes 16 MiB of pieces at a time
(sha256 only), and the local store's writer thread writes them behind a bounded queue with
O_DIRECT (``storage/local.py``: on this VM, filling the page cache with never-used guest
memory cost about 2.5 s per GiB, O_DIRECT about 0.4 s). Durability is unchanged (tmp file,
fsync, rename, fsync of the folder). The baseline's copy is timed into recycled page-cache
memory (an untimed copy is made and deleted first), the fastest case for the baseline.

**This machine** (notes of 2026-12-02). The page above was measured on an Intel Xeon, where
sha256 runs at 0.74 s per GiB (0.57 s on the AMD EPYC of the 2026-11-27 run, where the ratio
was 1.82x). The code as it was before this session's changes, run with this benchmark on this
machine the same day, took 2.16 to 2.23 s against a 1.01 to 1.03 s baseline (2.1x to 2.2x),
the current code 2.15 to 2.21 s: the ratio moved with the machine, not with the code.
"""


def _recycle(source: Path, copy: Path) -> None:
    """Copy and delete once, untimed, so the timed copy writes into recycled page-cache memory.

    On this VM, memory the guest has not touched recently costs several times more to fill than
    recycled memory (see "Reading these numbers"); the recycled case is the faster baseline, so
    the ratio is the stricter one.
    """
    shutil.copyfile(source, copy)
    copy.unlink()


def _baseline(source: Path, copy: Path, parts: dict[str, float]) -> float:
    _recycle(source, copy)
    start = time.perf_counter()
    with open(source, "rb") as f:
        hashlib.file_digest(f, "sha256")
    hashed = time.perf_counter()
    shutil.copyfile(source, copy)
    done = time.perf_counter()
    parts["hash"], parts["copy"] = hashed - start, done - hashed
    return done - start


def run(args: argparse.Namespace) -> dict[str, Any]:
    reps = 1 if args.quick else 3
    ws = workspace()
    source = make_file(ws / "model.bin", SIZE, seed=2)
    copy = ws / "copy.bin"
    seeds = itertools.count(100)
    runs: list[dict[str, Any]] = []
    for rep in range(reps + 1):  # the first round warms caches and is not reported
        parts: dict[str, float] = {}
        baseline, foreign_b = timed(partial(_baseline, source, copy, parts))
        copy.unlink()
        data_dir = ws / f"hub-{rep}"
        with modelyard(data_dir) as hub:

            def once(hub: Hub = hub) -> float:
                stamp(source, next(seeds))  # a new sha256, so a retry uploads for real
                return upload(hub, "bench-upload", source, "model.bin")[1]

            seconds, foreign_u = timed(once)
            blobs = [p for p in (data_dir / "blobs" / "lfs").rglob("*") if p.is_file()]
            assert blobs and all(p.stat().st_size == SIZE for p in blobs), blobs
        shutil.rmtree(data_dir)
        if rep == 0:
            continue
        row = {"baseline_s": baseline, "hash_s": parts["hash"], "copy_s": parts["copy"],
               "upload_s": seconds, "foreign_cores": max(foreign_b, foreign_u)}
        runs.append(row)
        print(f"baseline {baseline:.2f}s (hash {parts['hash']:.2f} + copy {parts['copy']:.2f}), "
              f"upload {seconds:.2f}s: {seconds / baseline:.2f}x", flush=True)
    return {"bench": "upload", "size": SIZE, "reps": reps, "runs": runs}


def ratio(result: dict[str, Any]) -> float:
    return median([r["upload_s"] for r in result["runs"]]) / median([r["baseline_s"] for r in result["runs"]])


def met(result: dict[str, Any]) -> bool:
    return ratio(result) <= TARGET_RATIO


def headline(result: dict[str, Any]) -> str:
    up = median([r["upload_s"] for r in result["runs"]])
    base = median([r["baseline_s"] for r in result["runs"]])
    return f"{ratio(result):.2f}x ({up:.2f} s vs {base:.2f} s)"


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    base = median([r["baseline_s"] for r in runs])
    up = median([r["upload_s"] for r in runs])
    verdict = "met" if met(result) else "**not met**"
    lines = [
        "| baseline (sha256 + copy) | upload_file | ratio | target ≤ 2x |",
        "|---|---|---|---|",
        f"| {base:.2f} s | {up:.2f} s | {ratio(result):.2f}x | {verdict} |",
        "",
        f"Raw runs ({result['reps']}, after one unreported warm-up round; medians above):",
        "",
        "| run | sha256 s | copy s | baseline s | upload s | ratio | others' CPU (cores) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['hash_s']:.2f} | {r['copy_s']:.2f} | {r['baseline_s']:.2f} | {r['upload_s']:.2f} "
            f"| {r['upload_s'] / r['baseline_s']:.2f}x | {r['foreign_cores']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, __doc__ or "")
