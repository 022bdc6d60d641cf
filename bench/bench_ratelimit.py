"""What rate limiting costs a HEAD ``/resolve``: limits off vs counted in memory vs in Redis.

One server (``--workers 1``, SQLite, a public repo, requests with a token as huggingface_hub sends
them) started three times on the same data: ``MODELYARD_RATE_LIMIT_*=none`` (the baseline),
limits counted in process memory (``memory://``, the default), and counted in Redis on loopback
(``redis://127.0.0.1:6379/8``, how servers share them). The limits are set far above what the
load sends, so every request is counted and none refused. Each is measured with one connection
(the latency a request pays: p50 over every request of the run) and with 32 (throughput), the
three configurations in turn, twice; the medians of the runs are compared with the baseline's.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from bench.bench_head import loadgen
from bench.common import MIB, main, make_file, median, modelyard, resolve_url, timed, upload, workspace

TARGET_ADDED_MS = 0.2

NOTES = """\
**Where the time goes.** In memory a request costs the ``limits`` library's sliding-window
counter, a few microseconds. In Redis one ``EVALSHA`` round trip costs about 0.1 ms on loopback,
about 0.3 ms inside the server (the event loop waits for it): so a process counts a busy caller's
requests a batch at a time (a limit's amount / 100, at most 20: 10 for 1,000/minute, 1 under 200)
with the library's ``cost``, and lets the batch through within one second without asking again;
requests counted but not used in that second stay counted, so the shared limit is only ever
stricter (``unit/test_ratelimit_keys.py``: two limiters on one Redis let at most 1,000 of 1,300
requests through a 1,000/minute limit). The p50 then no longer pays a round trip; one request in
a batch does (see the p99 at 32 connections).
"""
CONFIGS: dict[str, dict[str, str]] = {
    "off": {"MODELYARD_RATE_LIMIT_API": "none", "MODELYARD_RATE_LIMIT_RESOLVE": "none",
            "MODELYARD_RATE_LIMIT_UPLOADS": "none"},
    "memory": {"MODELYARD_RATE_LIMIT_RESOLVE": "100000000/minute", "MODELYARD_RATE_LIMIT_STORAGE": "memory://"},
    "redis": {"MODELYARD_RATE_LIMIT_RESOLVE": "100000000/minute",
              "MODELYARD_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/8"},
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import bench.bench_head as head

    reps, duration = (1, 4.0) if args.quick else (4, 8.0)
    source = make_file(workspace() / "model.bin", 16 * MIB, seed=5)
    data_dir = workspace() / "hub"
    with modelyard(data_dir) as hub:
        repo_id, _ = upload(hub, "bench-ratelimit", source, "model.bin")
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"1": [], "32": []} for name in CONFIGS}
    for _ in range(reps):
        for name, env in CONFIGS.items():
            with modelyard(data_dir, env=env) as hub:
                url = resolve_url(hub, repo_id, "model.bin")
                auth = [f"Authorization: Bearer {hub.token}"]
                for connections in (1, 32):
                    head.CONNECTIONS = connections
                    box: list[dict[str, Any]] = []
                    _rps, foreign = timed(partial(loadgen, url, duration, auth, box))
                    samples[name][str(connections)].append({**box[-1], "foreign_cores": foreign})
                    print(name, connections, box[-1]["rps"], box[-1]["p50_ms"], flush=True)
    head.CONNECTIONS = 32
    return {"bench": "ratelimit", "duration": duration, "reps": reps, "samples": samples}


def _stat(result: dict[str, Any], name: str, connections: int, key: str) -> float:
    return median([s[key] for s in result["samples"][name][str(connections)]])


def added_ms(result: dict[str, Any], name: str) -> float:
    return _stat(result, name, 1, "p50_ms") - _stat(result, "off", 1, "p50_ms")


def met(result: dict[str, Any]) -> bool:
    return all(added_ms(result, name) < TARGET_ADDED_MS for name in ("memory", "redis"))


def headline(result: dict[str, Any]) -> str:
    return (f"p50 added at 1 connection: memory {added_ms(result, 'memory'):+.3f} ms, "
            f"Redis {added_ms(result, 'redis'):+.3f} ms (off: {_stat(result, 'off', 1, 'p50_ms'):.3f} ms)")


def markdown(result: dict[str, Any]) -> str:
    rows = [
        "| limits | p50, 1 connection | added vs off | req/s, 1 connection | p50, 32 connections | p99, 32 connections "
        "| req/s, 32 connections | ratio of req/s vs off (32) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    off_rps = _stat(result, "off", 32, "rps")
    for name in CONFIGS:
        p50 = _stat(result, name, 1, "p50_ms")
        rows.append(
            f"| {name} | {p50:.3f} ms | {added_ms(result, name):+.3f} ms | {_stat(result, name, 1, 'rps'):,.0f} "
            f"| {_stat(result, name, 32, 'p50_ms'):.2f} ms | {_stat(result, name, 32, 'p99_ms'):.2f} ms "
            f"| {_stat(result, name, 32, 'rps'):,.0f} | {_stat(result, name, 32, 'rps') / off_rps:.2f}x |"
        )
    verdict = "met" if met(result) else "**not met**"
    rows += ["", f"Target: under {TARGET_ADDED_MS} ms added to the p50 of a HEAD: {verdict}. "
             f"Medians of {result['reps']} runs of {result['duration']:g} s each. The p50 of each run at one "
             "connection (the spread between runs of one configuration is the noise the medians sit in): "
             + "; ".join(f"{name} " + ", ".join(f"{s['p50_ms']:.3f}" for s in result["samples"][name]["1"])
                         for name in CONFIGS) + " ms."]
    return "\n".join(rows)


if __name__ == "__main__":
    main(run, __doc__ or "")
