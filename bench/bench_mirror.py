"""An edge hub in front of an upstream (issue 14): cold and warm fetches of a 1 GiB file, and the
space a second version of a cached model takes at the edge.

Two modelyard servers on loopback: the upstream, to which the default client (hf_xet) uploads a
random 1 GiB file, and an edge with ``MODELYARD_UPSTREAM_URL`` set to it.

- **Cold:** ``curl -o /dev/null`` of ``/resolve/main/model.bin`` through a fresh edge that has
  mirrored the repo's history but holds none of its files (the edge fetches the file from the
  upstream Xet-native and streams it as it arrives), against the same ``curl`` straight from the
  upstream (which rebuilds the file from its xorbs), in the same run. Target: at least 0.8x the
  direct throughput.
- **Warm:** the same ``curl`` through the edge once the file has landed, against the direct one:
  as fast as any local file (the edge serves it from its own chunk store, as the upstream does).
- **Space:** a 256 MiB model ``v1``, and ``v2`` = ``v1`` with 5% of its bytes rewritten in 16
  places, both uploaded to the upstream by one client (which deduplicates ``v2`` against ``v1``);
  the edge fetches ``v1``, then ``v2``; the bytes its xorb store grows by for ``v2``, against
  ``v1``'s. Target: under 10% extra. The upstream's own growth for ``v2`` is shown beside it.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

from bench.bench_xet_transfer import random_file, xet_client
from bench.common import GIB, MIB, Hub, curl_parallel, main, median, modelyard, server_cpu, timed, workspace
from bench.nginx import nginx

COLD_RATIO = 0.8
WARM_RATIO = 0.9
SPACE_LIMIT = 0.10
SIZE = GIB
MODEL = 256 * MIB
REPO = "admin/mirrored"


def edge_env(upstream: Hub) -> dict[str, str]:
    return {"MODELYARD_UPSTREAM_URL": upstream.url, "MODELYARD_UPSTREAM_TOKEN": upstream.token}


def xorb_bytes(hub: Hub) -> int:
    root = hub.blob_root / "xet" / "xorbs"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def mirrored(edge: Hub, path: str) -> str:
    """The edge's URL of ``path`` after a HEAD (which mirrors the repo: its history, no file)."""
    url = f"{edge.url}/{REPO}/resolve/main/{path}"
    import httpx

    response = httpx.head(url, timeout=120)
    if response.status_code != 200 or "x-xet-hash" in response.headers:
        raise RuntimeError(f"the edge should hold no bytes of {path} yet: {response.status_code} {response.headers}")
    return url


def transfer(args: argparse.Namespace, ws: Path, upstream: Hub) -> dict[str, list[float]]:
    reps = 1 if args.quick else 3
    source = random_file(ws / "model.bin", SIZE)
    pushed = xet_client(upstream, ws / "push-home", "upload", REPO, str(source), "model.bin")
    assert pushed["commit"]
    source.unlink()
    direct_url = f"{upstream.url}/{REPO}/resolve/main/model.bin"
    curl_parallel(direct_url, 1, SIZE, timeout=600)  # warm-up: the upstream's page cache
    out: dict[str, list[float]] = {"direct_s": [], "cold_s": [], "warm_s": [], "direct_cpu": [], "cold_cpu": [],
                                   "cold_edge_cpu": [], "proxy_s": []}
    # The floor of any edge on this machine: nginx passing the bytes through (no verification, no
    # storage, no buffering), measured beside each direct fetch.
    proxy_conf = (f"location / {{ proxy_pass {upstream.url}; proxy_buffering off; proxy_http_version 1.1; }}")
    with nginx(ws, locations=proxy_conf) as proxy_base:
        proxy_url = f"{proxy_base}/{REPO}/resolve/main/model.bin"
        for _ in range(reps):
            proxied, _f = timed(lambda: curl_parallel(proxy_url, 1, SIZE, timeout=600))
            out["proxy_s"].append(proxied)
    for _ in range(reps):
        with modelyard(env=edge_env(upstream)) as edge:
            url = mirrored(edge, "model.bin")
            up_before = server_cpu(upstream)
            direct, _f = timed(lambda: curl_parallel(direct_url, 1, SIZE, timeout=600))
            out["direct_cpu"].append(server_cpu(upstream) - up_before)
            up_before, edge_before = server_cpu(upstream), server_cpu(edge)
            cold, _f = timed(lambda u=url: curl_parallel(u, 1, SIZE, timeout=600), retries=0)  # cold only once
            edge_cpu = server_cpu(edge) - edge_before  # what landing did after the last byte is not in it
            out["cold_edge_cpu"].append(edge_cpu)
            out["cold_cpu"].append(server_cpu(upstream) - up_before + edge_cpu)
            wait_landed(edge, "model.bin")
            curl_parallel(url, 1, SIZE, timeout=600)  # the edge's page cache, as the upstream's is warm
            warm, _f = timed(lambda u=url: curl_parallel(u, 1, SIZE, timeout=600))
        out["direct_s"].append(direct)
        out["cold_s"].append(cold)
        out["warm_s"].append(warm)
        print(f"direct {direct:.2f} s, edge cold {cold:.2f} s, edge warm {warm:.2f} s", flush=True)
    return out


def space(ws: Path, upstream: Hub) -> dict[str, int]:
    rng = random.Random(14)
    v1 = bytearray(b"".join(rng.randbytes(16 * MIB) for _ in range(MODEL // (16 * MIB))))
    v2 = bytearray(v1)
    region = MODEL // 20 // 16  # 5% of the bytes, in 16 places
    for i in range(16):
        start = i * (MODEL // 16) + MODEL // 40
        v2[start : start + region] = rng.randbytes(region)
    home = ws / "space-home"  # one client: it deduplicates v2 against v1, as a team's uploads would
    before = xorb_bytes(upstream)
    (ws / "v1.bin").write_bytes(v1)
    xet_client(upstream, home, "upload", REPO, str(ws / "v1.bin"), "v1.bin")
    mid = xorb_bytes(upstream)
    (ws / "v2.bin").write_bytes(v2)
    xet_client(upstream, home, "upload", REPO, str(ws / "v2.bin"), "v2.bin")
    after = xorb_bytes(upstream)
    with modelyard(env=edge_env(upstream)) as edge:
        start = xorb_bytes(edge)
        curl_parallel(mirrored(edge, "v1.bin"), 1, MODEL, timeout=600)
        wait_landed(edge, "v1.bin")
        first = xorb_bytes(edge)
        curl_parallel(mirrored(edge, "v2.bin"), 1, MODEL, timeout=600)
        wait_landed(edge, "v2.bin")
        second = xorb_bytes(edge)
    print(f"edge: v1 {first - start} bytes, v2 {second - first} more; upstream: v1 {mid - before}, "
          f"v2 {after - mid} more", flush=True)
    return {"edge_v1": first - start, "edge_v2_extra": second - first, "upstream_v1": mid - before,
            "upstream_v2_extra": after - mid, "model": MODEL, "changed": region * 16}


def wait_landed(edge: Hub, path: str) -> None:
    """Until the edge holds the file (its HEAD names a Xet hash): landing follows the last byte."""
    import httpx

    deadline = time.monotonic() + 600
    while "x-xet-hash" not in httpx.head(f"{edge.url}/{REPO}/resolve/main/{path}", timeout=60).headers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not land at the edge")
        time.sleep(0.2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ws = workspace()
    with modelyard() as upstream:
        speeds = transfer(args, ws, upstream)
        stored = space(ws, upstream)
    return {"bench": "mirror", "size": SIZE, "transfer": speeds, "space": stored}


def ratios(result: dict[str, Any]) -> tuple[float, float, float]:
    """(cold throughput / direct, warm throughput / direct, edge's extra bytes for v2 / v1's bytes)."""
    t, s = result["transfer"], result["space"]
    direct = median(t["direct_s"])
    return direct / median(t["cold_s"]), direct / median(t["warm_s"]), s["edge_v2_extra"] / s["edge_v1"]


def met(result: dict[str, Any]) -> bool:
    cold, warm, extra = ratios(result)
    return cold >= COLD_RATIO and warm >= WARM_RATIO and extra < SPACE_LIMIT


def headline(result: dict[str, Any]) -> str:
    cold, warm, extra = ratios(result)
    return f"cold {cold:.2f}x direct, warm {warm:.2f}x; second version +{extra:.1%} at the edge"


def _gap(result: dict[str, Any]) -> list[str]:
    """Where a cold fetch's time goes, from this run's CPU counters (servers only; curl apart)."""
    t = result["transfer"]
    if not t.get("cold_cpu"):
        return []
    direct_cpu, cold_cpu, edge_cpu = median(t["direct_cpu"]), median(t["cold_cpu"]), median(t["cold_edge_cpu"])
    cold = median(t["cold_s"])
    return [
        f"CPU seconds of the servers during a fetch: straight from the upstream {direct_cpu:.2f} (the upstream "
        f"rebuilding the file), through a cold edge {cold_cpu:.2f} (the edge alone {edge_cpu:.2f}: receiving the "
        f"xorb ranges, decoding and hashing every chunk with blake3 and the whole file with sha256, writing the "
        f"spool, reading it back to send, and the start of the landing that follows the last byte; its "
        f"cores were {edge_cpu / cold:.2f} busy on average over the "
        f"{cold:.2f} s). On two cores shared with curl and the upstream, the cold path needs "
        f"{cold_cpu / direct_cpu:.1f}x the CPU of the direct one before any wait: the 0.8x target is not met "
        "on this machine; what would help most is serving live readers from memory instead of the spool, "
        "and a copy-free receive path."
        + (f" For scale: nginx only passing the bytes through, verifying and storing nothing, reaches "
           f"{median(t['direct_s']) / median(t['proxy_s']):.2f}x here (the table's last row): on two cores an "
           "extra hop alone costs more than the target allows." if t.get("proxy_s") else ""),
        "",
    ]


def mibs(seconds: float) -> float:
    return SIZE / MIB / seconds


def markdown(result: dict[str, Any]) -> str:
    t, s = result["transfer"], result["space"]
    cold, warm, extra = ratios(result)
    direct = median(t["direct_s"])
    fmt = ", ".join
    up_extra = s["upstream_v2_extra"] / s["upstream_v1"]
    return "\n".join([
        "| 1 GiB random file (uploaded with hf_xet) | through the edge | straight from the upstream | ratio | target |",
        "|---|---|---|---|---|",
        f"| cold (the edge fetches it meanwhile) | {mibs(median(t['cold_s'])):.0f} MiB/s | {mibs(direct):.0f} MiB/s "
        f"| {cold:.2f}x | ≥ {COLD_RATIO}x: {'met' if cold >= COLD_RATIO else '**not met**'} |",
        f"| warm (landed at the edge) | {mibs(median(t['warm_s'])):.0f} MiB/s | {mibs(direct):.0f} MiB/s "
        f"| {warm:.2f}x | ≥ {WARM_RATIO}x: {'met' if warm >= WARM_RATIO else '**not met**'} |",
        *([f"| (info) nginx passing the bytes through (proxy_pass, no buffering; nothing verified or stored) | "
           f"{mibs(median(t['proxy_s'])):.0f} MiB/s | {mibs(direct):.0f} MiB/s | "
           f"{direct / median(t['proxy_s']):.2f}x | — |"] if t.get("proxy_s") else []),
        "",
        "| 256 MiB model, v2 = v1 with 5% rewritten in 16 places | edge | upstream (side by side) | target |",
        "|---|---|---|---|",
        f"| bytes stored for v1 | {s['edge_v1'] / MIB:.1f} MiB | {s['upstream_v1'] / MIB:.1f} MiB | — |",
        f"| extra bytes stored for v2 | {s['edge_v2_extra'] / MIB:.1f} MiB (+{extra:.1%}) | "
        f"{s['upstream_v2_extra'] / MIB:.1f} MiB (+{up_extra:.1%}) | < {SPACE_LIMIT:.0%}: "
        f"{'met' if extra < SPACE_LIMIT else '**not met**'} |",
        "",
        *_gap(result),
        f"Raw seconds ({len(t['cold_s'])} runs, median used; a fresh edge each run): direct "
        f"[{fmt(f'{x:.2f}' for x in t['direct_s'])}], cold [{fmt(f'{x:.2f}' for x in t['cold_s'])}], "
        f"warm [{fmt(f'{x:.2f}' for x in t['warm_s'])}]. Changed bytes in v2: {s['changed']}.",
    ])


if __name__ == "__main__":
    main(run, __doc__ or "")
