"""Shared pieces of the benchmarks: a workspace, live servers, big files, clients, RSS sampling.

Every benchmark runs as its own process (``python -m bench.bench_<name> --out result.json``). Its
large files live in one workspace under /tmp, removed on exit (also on SIGTERM, which is what
``bench.run_all`` sends when a benchmark overruns its time limit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from tests.support.server import LiveServer

if TYPE_CHECKING:
    from huggingface_hub import HfApi

GIB = 1024**3
MIB = 1024**2
HOST = "127.0.0.1"  # every byte of benchmark traffic stays on loopback
WORKSPACE_PREFIX = "modelyard-bench-"
_workspace: Path | None = None


def workspace() -> Path:
    """This process's scratch folder under /tmp (``modelyard-bench-<pid>-*``), removed at exit."""
    global _workspace
    if _workspace is None:
        _workspace = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-", dir="/tmp"))
    return _workspace


def _cleanup_workspace() -> None:
    global _workspace
    if _workspace is not None:
        shutil.rmtree(_workspace, ignore_errors=True)
        _workspace = None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"terminated by signal {signum}")  # unwinds: servers stop, files go


def hf_api(endpoint: str, token: str) -> HfApi:
    """An ``HfApi`` that uploads through Git LFS (Xet off) and never touches the user's cache."""
    if "huggingface_hub" not in sys.modules:
        # huggingface_hub reads these once, at import time.
        os.environ["HF_HUB_DISABLE_XET"] = "1"
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["HF_HOME"] = str(workspace() / "hf-home")
    elif os.environ.get("HF_HUB_DISABLE_XET") != "1":
        raise RuntimeError("huggingface_hub was imported before HF_HUB_DISABLE_XET=1 was set")
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass
class Hub:
    """A running ``modelyard serve`` and its admin token."""

    live: LiveServer
    token: str

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def pid(self) -> int:
        assert self.live.proc is not None
        return self.live.proc.pid

    @property
    def blob_root(self) -> Path:
        return self.live.data_dir / "blobs"


@contextmanager
def modelyard(data_dir: Path | None = None, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[Hub]:
    """``modelyard --data-dir DIR serve --port P --workers N`` on loopback; stopped afterwards.

    The server runs with its default settings (the test harness folds download counts every
    0.2 s; here the default interval applies), changed only by ``env`` (``MODELYARD_*`` values).
    """
    from modelyard.config import Settings

    data_dir = data_dir or workspace() / f"hub-{uuid.uuid4().hex[:8]}"
    defaults = {"MODELYARD_TALLY_INTERVAL": str(Settings.model_fields["tally_interval"].default)}
    live = LiveServer(data_dir, None, "sqlite",
                      extra_env={**defaults, "MODELYARD_WORKERS": str(workers), **(env or {})})
    live.start()
    try:
        saved = data_dir / "bench-admin-token"
        if not saved.exists():  # only the first start creates the admin token
            shown = data_dir / "admin-token"  # where the server puts it when its output is no terminal
            tokens = ([shown.read_text().strip()] if shown.exists()
                      else re.findall(r"export HF_TOKEN=(\S+)", live.log_path.read_text()))
            if not tokens:
                raise RuntimeError(f"no admin token in {shown} or {live.log_path}")
            saved.write_text(tokens[0])
        yield Hub(live, saved.read_text())
    finally:
        live.stop()


def reader_tokens(hub: Hub, count: int) -> list[str]:
    """Read tokens of ``count`` accounts (``modelyard seed``); the same values on every call."""
    values = [f"hf_bench{i:03d}_read_token_{'0' * 20}" for i in range(count)]
    users = [{"name": f"bench-reader-{i:03d}", "fullname": f"Bench reader {i}",
              "tokens": [{"value": v, "role": "read", "name": "bench"}]} for i, v in enumerate(values)]
    hub.live.seed({"users": users})  # idempotent
    return values


def upload(hub: Hub, repo_name: str, local: Path, path_in_repo: str) -> tuple[str, float]:
    """Create ``repo_name`` (public) and upload ``local`` with ``HfApi.upload_file``.

    Returns the repo id and the seconds ``upload_file`` took.
    """
    api = hf_api(hub.url, hub.token)
    repo_id = api.create_repo(repo_name, exist_ok=True).repo_id
    start = time.perf_counter()
    api.upload_file(path_or_fileobj=str(local), path_in_repo=path_in_repo, repo_id=repo_id)
    return repo_id, time.perf_counter() - start


def resolve_url(hub: Hub, repo_id: str, path: str) -> str:
    return f"{hub.url}/{repo_id}/resolve/main/{path}"


# ---------------------------------------------------------------------------------------------
# Files


def make_file(path: Path, size: int, seed: int) -> Path:
    """``size`` bytes of incompressible data: a 64 MiB random block, each copy stamped uniquely."""
    block = bytearray(random.Random(seed).randbytes(64 * MIB))
    written = 0
    with open(path, "wb") as f:
        while written < size:
            block[:16] = f"{seed:08x}{written // len(block):08x}".encode()
            n = min(len(block), size - written)
            f.write(memoryview(block)[:n])
            written += n
    return path


def stamp(path: Path, seed: int) -> None:
    """Change the file's first bytes, so its sha256 (and LFS object) is new."""
    with open(path, "r+b") as f:
        f.write(f"rewritten-{seed:016d}".encode())


# ---------------------------------------------------------------------------------------------
# Clients and measurements


def require_tool(binary: str, package: str) -> str:
    """The tool's path; installs the Debian package when missing, else fails with a clear message."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"{binary} is missing: apt-get install -y {package}", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", package]
        if subprocess.run(install, env=env, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, timeout=600, check=False)
            subprocess.run(install, env=env, timeout=600, check=False)
        found = shutil.which(binary)
        if found:
            return found
    raise SystemExit(
        f"{binary} is required: install it with `apt-get update && apt-get install -y {package}`"
    )


def curl_parallel(url: str, streams: int, expected_size: int, timeout: float) -> float:
    """Seconds until ``streams`` parallel ``curl -o /dev/null`` processes have each fetched ``url``."""
    curl = require_tool("curl", "curl")
    argv = [curl, "-sS", "-o", "/dev/null", "--max-time", str(int(timeout)),
            "-w", "%{http_code} %{size_download}", url]
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(streams)]
    outputs = [p.communicate(timeout=timeout + 10)[0] for p in procs]
    elapsed = time.perf_counter() - start
    for proc, out in zip(procs, outputs, strict=True):
        if proc.returncode != 0 or out.split() != ["200", str(expected_size)]:
            raise RuntimeError(f"curl {url} failed: rc={proc.returncode} output={out!r}")
    return elapsed


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(root: int) -> int:
    """Resident set size in bytes, summed over ``root`` and all its descendants."""
    tree = _children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def server_cpu(hub: Hub) -> float:
    """CPU seconds (user + system) the hub's server process tree has used so far (live processes)."""
    assert hub.live.proc is not None, "the server is not running"
    return _tree_cpu([hub.live.proc.pid], fields=(11, 13))


class RssSampler:
    """Samples a process tree's RSS in a background thread; ``phase`` labels what happens now."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self.root, self.interval = root, interval
        self.phase = "idle"
        self.peaks: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, phase = tree_rss(self.root), self.phase
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# Other load on the machine
#
# The benchmarks may share the machine with other work (test suites, builds). Each timed run
# first waits for the CPUs to go quiet, then records how much CPU processes outside this
# benchmark's own process tree used meanwhile ("foreign" CPU, in cores), and is retried when
# that was more than a small share of one core.

_TICK = os.sysconf("SC_CLK_TCK")
FOREIGN_LIMIT = 0.15  # cores used by others during a run before it is retried


def _busy_seconds() -> float:
    """CPU seconds spent busy (not idle or waiting on I/O) by all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _TICK


def _tree_cpu(roots: list[int], fields: tuple[int, int]) -> float:
    """Clock ticks (as seconds) in ``/proc/PID/stat`` fields ``[a, b)`` (after the name), summed
    over ``roots`` and all their live descendants."""
    tree = _children()
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in stat[fields[0] : fields[1]]) / _TICK
    return total


def _own_seconds() -> float:
    """CPU seconds of this process tree (reaped children included) and of kernel threads.

    Kernel threads count as ours: on loopback they mostly carry this benchmark's own packets.
    """
    # pid 2 is kthreadd, the parent of all kernel threads; fields: utime stime cutime cstime
    return _tree_cpu([os.getpid(), 2], fields=(11, 15))


def wait_quiet(max_wait: float = 20.0, window: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until others use under FOREIGN_LIMIT cores; returns their load."""
    deadline = time.monotonic() + max_wait
    while True:
        busy, own = _busy_seconds(), _own_seconds()
        time.sleep(window)
        foreign = max(0.0, (_busy_seconds() - busy) - (_own_seconds() - own)) / window
        if foreign < FOREIGN_LIMIT or time.monotonic() > deadline:
            return foreign
        print(f"  (waiting: other processes use {foreign:.2f} cores)", file=sys.stderr, flush=True)


def timed(run: Callable[[], float], retries: int = 1) -> tuple[float, float]:
    """``run()``'s own timing and the foreign load during it, retried while that was too high."""
    for attempt in range(retries + 1):
        wait_quiet()
        busy, own, start = _busy_seconds(), _own_seconds(), time.perf_counter()
        value = run()
        wall = time.perf_counter() - start
        foreign = max(0.0, (_busy_seconds() - busy) - (_own_seconds() - own)) / wall
        if foreign < FOREIGN_LIMIT or attempt == retries:
            return value, foreign
        print(f"  (retrying: other processes used {foreign:.2f} cores meanwhile)", file=sys.stderr)
    raise AssertionError("unreachable")


def median(values: list[float]) -> float:
    return statistics.median(values)


def versions() -> dict[str, str]:
    """Versions of the pieces a reader needs to reproduce the numbers."""
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for dist in ("uvicorn", "starlette", "uvloop", "httptools", "huggingface_hub"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "not installed"
    for tool, argv in {"nginx": ["nginx", "-v"], "curl": ["curl", "--version"], "wrk": ["wrk", "-v"]}.items():
        if shutil.which(argv[0]) is None:
            continue
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        line = (proc.stdout + proc.stderr).strip().splitlines()[0]
        match = re.search(r"\d+\.\d+(\.\d+)?", line)
        out[tool] = match.group(0) if match else line
    return out


def machine() -> dict[str, str]:
    """CPU, memory, kernel and the filesystem that holds /tmp."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    df = subprocess.run(["df", "-T", "/tmp"], capture_output=True, text=True, timeout=10, check=False)
    fs = df.stdout.splitlines()[-1].split()[1] if df.returncode == 0 else "unknown"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024**2:.1f} GiB",
        "kernel": platform.release(),
        "tmp_filesystem": fs,
    }


def main(run: Callable[[argparse.Namespace], dict[str, Any]], describe: str) -> None:
    """The command line of every benchmark: ``--out FILE`` for the JSON result, ``--quick``."""
    parser = argparse.ArgumentParser(description=describe)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    finally:
        _cleanup_workspace()
    result["quick"] = args.quick  # a smoke run's numbers are labelled so wherever they are rendered
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
