"""Server memory while a 5 GiB file is uploaded (``HfApi.upload_file``, LFS) and downloaded.

Target: the server's resident memory stays under 300 MB throughout. A thread samples the RSS of
the server's whole process tree (``/proc/<pid>/status`` VmRSS, summed) every 20 ms. A 5 GiB file
reaches the multipart threshold, so the upload goes out as 512 MiB parts that the server writes
in place into the object's file (renamed on completion). The download is ``curl -o /dev/null``
of ``/resolve``, once whole and once as two parallel halves (Range requests).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from typing import Any

from bench.common import (
    GIB,
    HOST,
    RssSampler,
    curl_parallel,
    hf_api,
    main,
    make_file,
    modelyard,
    require_tool,
    resolve_url,
    workspace,
)

TARGET_BYTES = 300 * 10**6
SIZE = 5 * GIB
MB = 10**6

NOTES = """\
Uploads stream through the server in batches of at most 16 MiB (two in flight), multipart parts
go straight into the object's file, and downloads hold at most a couple of 8 MiB mapped windows
per connection, which count towards RSS only while they are being sent. RSS is the sum over the
server's process tree (one worker: the ``modelyard serve`` process itself).
"""


def _ranged_halves(url: str) -> float:
    """Download the file as two concurrent Range requests; returns seconds."""
    curl = require_tool("curl", "curl")
    half = SIZE // 2
    ranges = [f"0-{half - 1}", f"{half}-{SIZE - 1}"]
    start = time.perf_counter()
    procs = [subprocess.Popen([curl, "-sS", "-o", "/dev/null", "--max-time", "600", "-r", r, "-w",
                               "%{http_code} %{size_download}", url], stdout=subprocess.PIPE, text=True)
             for r in ranges]
    outs = [p.communicate(timeout=620)[0] for p in procs]
    elapsed = time.perf_counter() - start
    if any(p.returncode != 0 for p in procs) or [o.split()[0] for o in outs] != ["206", "206"]:
        raise RuntimeError(f"ranged download failed: {outs}")
    if sum(int(o.split()[1]) for o in outs) != SIZE:
        raise RuntimeError(f"ranged download returned the wrong size: {outs}")
    return elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    assert HOST == "127.0.0.1"
    source = make_file(workspace() / "model.bin", SIZE, seed=4)
    timings: dict[str, float] = {}
    with modelyard(workspace() / "hub") as hub:
        api = hf_api(hub.url, hub.token)
        repo_id = api.create_repo("bench-memory").repo_id
        with RssSampler(hub.pid) as rss:
            time.sleep(1.0)
            rss.phase = "upload"
            start = time.perf_counter()
            api.upload_file(path_or_fileobj=str(source), path_in_repo="model.bin", repo_id=repo_id)
            timings["upload"] = time.perf_counter() - start
            source.unlink()  # frees the disk and page cache; the hub has its copy
            rss.phase = "download"
            timings["download"] = curl_parallel(resolve_url(hub, repo_id, "model.bin"), 1, SIZE, timeout=600)
            rss.phase = "ranged download"
            timings["ranged download"] = _ranged_halves(resolve_url(hub, repo_id, "model.bin"))
            rss.phase = "after"
            time.sleep(1.0)
        peaks = dict(rss.peaks)
        samples = rss.samples
    return {"bench": "memory", "size": SIZE, "peaks": peaks, "timings": timings, "samples": samples}


def peak(result: dict[str, Any]) -> int:
    return int(max(result["peaks"].values()))


def met(result: dict[str, Any]) -> bool:
    return peak(result) < TARGET_BYTES


def headline(result: dict[str, Any]) -> str:
    return f"peak {peak(result) / MB:.0f} MB"


def markdown(result: dict[str, Any]) -> str:
    verdict = "met" if met(result) else "**not met**"
    lines = [
        "| phase | peak RSS (MB) | duration |",
        "|---|---|---|",
    ]
    for phase, value in result["peaks"].items():
        took = result["timings"].get(phase)
        lines.append(f"| {phase} | {value / MB:.0f} | {f'{took:.1f} s' if took else ''} |")
    lines += [
        "",
        f"Peak over the whole run: **{peak(result) / MB:.0f} MB** (target < 300 MB: {verdict}); "
        f"{result['samples']} samples of the server's process tree, one worker.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, __doc__ or "")
