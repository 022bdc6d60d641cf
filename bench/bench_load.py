"""A load test with Locust: 100 simulated users for 5 minutes against three single-worker servers
behind nginx, on PostgreSQL and S3 storage (moto's server behind the signature-checking gateway
of ``tests/support/s3_gateway.py``).

The users (``bench/locust_hub.py``) load a model (HEADs of config, tokenizer, card and an 8 MiB
safetensors file; the small bodies from the hub, the weights from the store by the HEAD's
redirect), HEAD files, search with a filter and a sort, make small commits and upload 256 KiB LFS
files (batch, PUT, verify, commit). Every body is hashed and compared with the sha256 recorded
when the repo was seeded. Each server's RSS is sampled through the run, and ``modelyard fsck``
runs at the end.

Targets: zero failures and zero wrong bytes; each server under 300 MB RSS throughout.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.server import BIN, TOKENS

from bench.bench_cluster import s3_cluster
from bench.common import MIB, RssSampler, hf_api, main, workspace

USERS, DURATION = 100, 300
RSS_LIMIT = 300 * MIB
USER_REPOS = 20


def _seed(url: str) -> dict[str, Any]:
    api = hf_api(url, TOKENS["alice"])
    model = api.create_repo("alice/load-model", exist_ok=True).repo_id
    files = {
        "config.json": json.dumps({"model_type": "bert", "hidden_size": 384}).encode(),
        "tokenizer.json": json.dumps({"vocab": {f"tok{i}": i for i in range(5000)}}).encode(),
        "README.md": b"---\nlibrary_name: transformers\ntags: [pytorch]\n---\n# load model\n",
        "model.safetensors": os.urandom(8 * MIB),
    }
    for path, data in files.items():
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=model)
    repos = [api.create_repo(f"alice/load-user-{i}", exist_ok=True).repo_id for i in range(USER_REPOS)]
    return {"token": TOKENS["alice"], "model": model, "user_repos": repos,
            "files": {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}}


def _stats(prefix: Path) -> list[dict[str, Any]]:
    rows = []
    with open(f"{prefix}_stats.csv") as f:
        for row in csv.DictReader(f):
            rows.append({
                "type": row["Type"], "name": row["Name"], "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"]),
                "max_ms": float(row["Max Response Time"]),
            })
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    users, duration = (20, 30) if args.quick else (USERS, DURATION)
    with s3_cluster(3) as c:
        spec = _seed(c.url)
        spec_file = workspace() / "load-spec.json"
        spec_file.write_text(json.dumps(spec))
        prefix = workspace() / "locust"
        samplers = [RssSampler(s.pids()[0], interval=0.5) for s in c.servers]
        for sampler in samplers:
            sampler.phase = "load"
            sampler.__enter__()
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [str(BIN / "locust"), "-f", str(Path(__file__).with_name("locust_hub.py")), "--headless",
                 "-u", str(users), "-r", str(max(1, users // 10)), "-t", f"{duration}s", "--host", c.url,
                 "--csv", str(prefix), "--only-summary", "--stop-timeout", "30"],
                env={**os.environ, "LOAD_SPEC": str(spec_file)}, capture_output=True, text=True,
                timeout=duration + 300,
            )
        finally:
            for sampler in samplers:
                sampler.__exit__()
        elapsed = time.monotonic() - started
        wrong = [json.loads(line)["wrong_bytes"] for line in proc.stdout.splitlines() if '"wrong_bytes"' in line]
        fsck = c.servers[0].cli("fsck", check=False)
        peaks = [s.peaks.get("load", 0) for s in samplers]
    if not wrong:
        raise RuntimeError(f"locust did not report (exit {proc.returncode}): {proc.stderr[-3000:]}")
    stats = _stats(prefix)
    result = {"bench": "load", "users": users, "duration": duration, "elapsed": elapsed,
              "locust_exit": proc.returncode, "wrong_bytes": wrong[0], "stats": stats, "rss_peaks": peaks,
              "fsck_ok": fsck.returncode == 0, "fsck": (fsck.stdout + fsck.stderr)[-500:]}
    print(headline(result), flush=True)
    return result


def _total(result: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in result["stats"] if r["name"] == "Aggregated")


def met(result: dict[str, Any]) -> bool:
    return (_total(result)["failures"] == 0 and result["wrong_bytes"] == 0 and result["fsck_ok"]
            and max(result["rss_peaks"]) < RSS_LIMIT and result["users"] >= USERS
            and result["duration"] >= DURATION)


def headline(result: dict[str, Any]) -> str:
    total = _total(result)
    peaks = "/".join(f"{p / MIB:.0f}" for p in result["rss_peaks"])
    parts = [f"{result['users']} users, {result['duration']} s: {total['requests']:,} requests",
             f"{total['rps']:.0f} req/s", f"{total['failures']} failures", f"{result['wrong_bytes']} wrong bytes",
             f"server RSS peaks {peaks} MB"]
    return ", ".join(parts)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['users']} users for {result['duration']} s (spawned at {max(1, result['users'] // 10)}/s); "
             f"Locust exit code {result['locust_exit']}; `modelyard fsck` after the run: "
             f"{'clean' if result['fsck_ok'] else 'PROBLEMS: ' + result['fsck']}.", "",
             "| request | count | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["stats"]:
        name = "**all**" if r["name"] == "Aggregated" else f"{r['type']} {r['name']}"
        lines.append(f"| {name} | {r['requests']:,} | {r['failures']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    lines += ["", f"Wrong bytes: **{result['wrong_bytes']}**. Peak RSS of each server during the run: "
              + ", ".join(f"{p / MIB:.0f} MB" for p in result["rss_peaks"]) + " (limit 300 MB)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, __doc__ or "")
