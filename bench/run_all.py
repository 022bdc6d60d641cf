"""Run every benchmark, each in its own process with a time limit, and rewrite docs/benchmarks.md.

    .venv/bin/python -m bench.run_all                 # all of them, then write the page
    .venv/bin/python -m bench.run_all --only head     # some of them (the page shows only those)
    .venv/bin/python -m bench.run_all --quick         # fewer repetitions, smaller sizes: a smoke run
    .venv/bin/python -m bench.run_all --render DIR    # re-render from saved JSON results
    .venv/bin/python -m bench.run_all --only memory --update
                                                      # re-measure some, keep the rest of the page

Each benchmark writes its JSON result; with ``--keep DIR`` those files are kept there.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import importlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.common import WORKSPACE_PREFIX, machine, versions

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

#: name -> (title, time limit in seconds)
BENCHES: dict[str, tuple[str, int]] = {
    "download": ("GET /resolve of a 1 GiB LFS file vs nginx", 2400),
    "upload": ("LFS upload of a 1 GiB file vs sha256 + copy", 2400),
    "head": ("HEAD /resolve, 32 connections", 1200),
    "head_under_load": ("HEAD /resolve during a 5 GiB multipart completion and a Xet shard read-back", 1800),
    "memory": ("Server memory with a 5 GiB upload and download", 2400),
    "xet_transfer": ("Xet download and upload of a 1 GiB file with the default client", 3000),
    "xet_storage": ("Xet xorb validation speed, and bytes stored for 10 versions of a model", 1200),
    "commit": ("A one-file commit to a repo of 10,000 files vs a repo of 1 file", 900),
    "catalog": ("Catalog search on a 100,000-repo catalog (SQLite and PostgreSQL)", 1800),
    "metadata": ("Metadata extraction of a 10-shard 5 GB safetensors model", 900),
    "discussions": ("Discussion listing (1,000 threads) and details (500 events), SQLite and PostgreSQL", 900),
    "webhooks": ("Webhook delivery: 1,000 events to 10 receivers, with and without a hanging one", 900),
    "pages": ("Web pages on the 100,000-repo catalog: search with two facets, a model page with a large card", 2400),
    "git": ("git clone: a 1 GiB LFS file vs snapshot_download; 10,000 commits vs git daemon", 2400),
    "cluster": ("HEAD /resolve on S3: three servers behind nginx vs one", 1200),
    "load": ("Locust: 100 users for 5 minutes against three servers on PostgreSQL and S3", 1200),
    "catalog_1m": ("Catalog search on a 1,000,000-repo catalog (PostgreSQL)", 10800),
    "scan": ("Scanning a 1 GiB PyTorch checkpoint (zip and legacy formats)", 900),
    "ratelimit": ("HEAD /resolve with rate limits off, counted in memory, counted in Redis", 900),
    "mirror": ("An edge hub: cold and warm fetch of a 1 GiB file, space for a second version", 2400),
}

TARGETS = {
    "download": "≥ 0.8x nginx throughput, 1 and 8 streams",
    "upload": "≤ 2x (sha256 + copy) time",
    "head": "≥ 2,000 req/s and p99 < 50 ms at 32 connections; with X-HF-Download-Counter ≥ 0.9x the "
            "req/s without it, counts exact",
    "head_under_load": "HEAD p99 < 50 ms during each",
    "memory": "peak RSS < 300 MB",
    "xet_transfer": "download ≥ 0.8x nginx + curl -o file; upload ≤ 1x the LFS time",
    "xet_storage": "validation ≥ 500 MB/s on one core; report 10 versions vs 10 copies",
    "commit": "≤ 1.5x the time of the same commit to a 1-file repo",
    "catalog": "search + 2 filters + sort, first page of 50: p50 < 20 ms, p99 < 100 ms",
    "metadata": "< 1 s and < 1 MB read per shard",
    "discussions": "list a page and details of a 500-event thread: p99 < 50 ms each",
    "webhooks": "10,000 posts delivered < 10 s, also with a hanging receiver among them",
    "pages": "search page (2 facets) and model page (large card): p50 < 20 ms, p99 < 60 ms; page < 100 KB",
    "git": "LFS clone ≤ 1.3x snapshot_download; history clone ≤ 1.5x git daemon, server RSS < 300 MB",
    "cluster": "3 single-worker servers ≥ 1.5x the HEAD req/s of 1; p99 < 50 ms at 32 connections",
    "load": "0 failures, 0 wrong bytes; each server < 300 MB RSS",
    "catalog_1m": "search + 2 filters + sort, first page of 50: p50 < 20 ms, p99 < 100 ms",
    "scan": "< 5 s per 1 GiB checkpoint, reading < 1% of it (no tensor data)",
    "ratelimit": "< 0.2 ms added to the p50 of a HEAD /resolve",
    "mirror": "cold fetch ≥ 0.8x the upstream's throughput, warm ≥ 0.9x; a 95%-shared version < 10% extra space",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.bench_{name}")


def run_one(name: str, out: Path, quick: bool) -> str | None:
    """Run one benchmark process; None on success, else why it failed."""
    _title, limit = BENCHES[name]
    argv = [sys.executable, "-m", f"bench.bench_{name}", "--out", str(out)] + (["--quick"] if quick else [])
    print(f"== {name} (limit {limit} s)", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        code = proc.wait(timeout=limit)
        reason = None if code == 0 else f"exited with status {code}"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the benchmark stops its servers and removes its files
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reason = f"did not finish within {limit} s"
    finally:
        for leftover in glob.glob(f"/tmp/{WORKSPACE_PREFIX}{proc.pid}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    print(f"== {name}: {'ok' if reason is None else reason} after {time.monotonic() - start:.0f} s", flush=True)
    return reason


def render(results: dict[str, dict[str, Any] | str], when: str) -> str:
    """The whole page, from each benchmark's result (or the reason it has none)."""
    facts = machine()
    tools = versions()
    lines = [
        "# Benchmarks",
        "",
        "Written by `.venv/bin/python -m bench.run_all` (do not edit by hand; the text lives in "
        "`bench/`). Every number was measured in the same run, server and baseline side by side on "
        "the same machine, all traffic on 127.0.0.1.",
        "",
        f"- Date: {when}",
        f"- Machine: {facts['cpus']} cores ({facts['cpu']}), {facts['memory']} RAM, Linux {facts['kernel']}, "
        f"/tmp on {facts['tmp_filesystem']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in tools.items()),
        "",
        "## Summary",
        "",
        "| benchmark | target | result | met |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        if isinstance(result, str):
            lines.append(f"| {name} | {TARGETS[name]} | failed: {result} | no |")
            continue
        mod = module(name)
        ok = "yes" if mod.met(result) else "**no**"
        lines.append(f"| {name} | {TARGETS[name]} | {mod.headline(result)} | {ok} |")
    lines += ["", MACHINE_NOTES, ""]
    for number, (name, result) in enumerate(results.items(), 1):
        mod = module(name)
        lines += [f"## {number}. {BENCHES[name][0]}", "", (mod.__doc__ or "").strip(), ""]
        if isinstance(result, str):
            lines += [f"**No result:** {result}.", ""]
        else:
            lines += [mod.markdown(result), ""]
        notes = getattr(mod, "NOTES", "").strip()
        if notes:
            lines += [notes, ""]
    return "\n".join(lines).rstrip() + "\n"


MACHINE_NOTES = """\
### Reading these numbers

- **Shared machine.** The benchmarks may run while other work (test suites) uses the same two
  cores. Before each timed run they wait (up to 20 s) for the CPUs to go quiet, measure how much
  CPU other processes used during the run ("others' CPU", in cores), and retry a run (once)
  when that exceeded 0.15 cores. Runs that still saw load are reported as measured, with
  that figure beside them.
- **Guest memory.** This is a virtual machine whose memory the host backs lazily: writing into
  memory that the guest has not used recently cost about 3 s per GiB, recycled memory about
  0.3 s per GiB (measured on 2026-11-27). Anything that fills the page cache with new data (copying a file, receiving an
  upload) is therefore slow the first time. The upload benchmark deletes its copy and its
  server's data after every run, so the baseline and the upload both write into recycled memory.
- **Two cores for everything.** Server, baseline server and load generator share the same two
  cores, so client cost counts: the same client is used for both sides of each comparison."""


def update(page: str, results: dict[str, dict[str, Any] | str], when: str) -> str:
    """``page`` with the summary rows and sections of ``results`` replaced by a fresh rendering,
    each marked with the date it was measured (the rest keeps the date at the top)."""
    fresh = render(results, when).splitlines()
    lines = page.splitlines()
    for name in results:
        row = next(i for i, line in enumerate(fresh) if line.startswith(f"| {name} |"))
        new_row = fresh[row].replace(f"| {name} |", f"| {name} (re-measured {when}) |", 1)
        old_row = next((i for i, line in enumerate(lines)
                        if line.startswith((f"| {name} |", f"| {name} (re-measured "))), None)
        if old_row is None:  # a benchmark new to the page: its row ends the summary table
            summary = lines.index("| benchmark | target | result | met |")
            old_row = next(i for i in range(summary, len(lines)) if not lines[i].startswith("|"))
            lines.insert(old_row, new_row)
        else:
            lines[old_row] = new_row
        title = BENCHES[name][0]
        start = next(i for i, line in enumerate(fresh) if line.startswith("## ") and line.endswith(title))
        end = next((i for i in range(start + 1, len(fresh)) if fresh[i].startswith("## ")), len(fresh))
        old_start = next((i for i, line in enumerate(lines) if line.startswith("## ") and line.endswith(title)), None)
        if old_start is None:  # and its section ends the page, numbered after the others
            number = sum(1 for line in lines if line.startswith("## ") and line[3:4].isdigit()) + 1
            lines += ["", f"## {number}. {title}"]
            old_start = len(lines) - 1
        old_end = next((i for i in range(old_start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        section = [lines[old_start], "", f"*Re-measured {when}, apart from the rest of this page.*",
                   *fresh[start + 1 : end]]
        if old_end < len(lines) and section[-1]:
            section.append("")  # a blank line before the next section's heading
        lines[old_start:old_end] = section
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="one repetition each")
    parser.add_argument("--keep", type=Path, help="keep the JSON results in this folder")
    parser.add_argument("--render", type=Path, help="only re-render docs/benchmarks.md from this folder")
    parser.add_argument("--update", action="store_true",
                        help="replace only these benchmarks' rows and sections in docs/benchmarks.md")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    import json

    results: dict[str, dict[str, Any] | str] = {}
    if args.render:
        for name in names:
            path = args.render / f"{name}.json"
            results[name] = json.loads(path.read_text()) if path.exists() else "not run"
        when = datetime.datetime.fromtimestamp(
            max((args.render / f"{n}.json").stat().st_mtime for n in names if (args.render / f"{n}.json").exists()),
            tz=datetime.UTC,
        )
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="modelyard-bench-results-"))
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for name in names:
                out = folder / f"{name}.json"
                reason = run_one(name, out, args.quick)
                results[name] = json.loads(out.read_text()) if reason is None else reason
        finally:
            if args.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
        when = datetime.datetime.now(datetime.UTC)
    quick = args.quick or any(isinstance(r, dict) and r.get("quick") for r in results.values())
    stamp = when.strftime("%Y-%m-%d %H:%M UTC") + (" (quick run: fewer repetitions, smaller sizes; a smoke run, "
                                                   "not a measurement)" if quick else "")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(update(DOC.read_text(), results, stamp) if args.update else render(results, stamp))
    print(f"wrote {DOC.relative_to(ROOT)}")
    if any(isinstance(r, str) for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
