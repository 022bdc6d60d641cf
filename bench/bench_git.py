"""git clone from modelyard: a repo holding a 1 GiB LFS file against ``snapshot_download`` of it,
and a repo of 10,000 commits and 5,000 small files against ``git daemon`` serving the same
repository from disk.

Targets: the LFS clone takes at most 1.3x the time of ``snapshot_download`` (Xet off: the file
is an LFS object, both read it through the same server); the history clone at most 1.5x the time
of the clone from ``git daemon`` in the same run, with the server's RSS under 300 MB meanwhile.

LFS: one repo, one commit of a 1 GiB incompressible ``model.bin`` uploaded with ``HfApi``.
Timed: ``git clone`` (git-lfs installed: the checkout downloads the file and writes it into the
work tree) and ``snapshot_download`` into a fresh cache, each into a new folder that is deleted
after the run; they take turns.

History: a bare repository built with ``git fast-import`` (5,000 files in 100 folders in the first
commit, then 9,999 commits each changing one file; ``git gc --aggressive`` after) is pushed to
modelyard with ``git push``; the server is restarted after the push, so its memory shows the
clones alone. ``git daemon`` serves the same bare repository. The first clone of the pushed state
is written from the database, object by object, and makes the server queue that state's pack
(``services/git.py``, the clone cache: git's ``pack-objects`` in a background job); it is timed
apart, and the job is waited for. Timed then: ``git clone --bare`` from each (the client's work
is the same: receive and index the pack), taking turns; the server's process tree RSS is sampled
every 20 ms during its clones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    GIB,
    Hub,
    RssSampler,
    hf_api,
    main,
    make_file,
    median,
    modelyard,
    require_tool,
    timed,
    tree_rss,
    upload,
    workspace,
)

LFS_TARGET = 1.3
HISTORY_TARGET = 1.5
RSS_TARGET = 300 * 1024**2
COMMITS, FILES = 10_000, 5_000

NOTES = """\
How to read it. The LFS clone's time is mostly git-lfs's own work on the client, measured in
steps above: it downloads the file into ``.git/lfs/objects``, hashing it (sha256, as it
verifies), then ``checkout`` writes it into the work tree through git's filter (git hashes it
again for the index); ``snapshot_download`` writes the file once. The server's part, sending the
bytes, is the same for both. On this machine (no SHA extensions: ``sha256sum`` runs at about
350 MB/s) those client steps alone exceed 1.3x ``snapshot_download``, whatever the server does.
The history clone: a clone of a state the server holds a pack for is that pack, as stored;
without one (the first clone after a change), modelyard walks the history from the database and
writes every object whole through dulwich (Python), which takes seconds for 10,000 commits.
"""


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "HF_"))}
    env.update({"HOME": str(home), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _git(env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr[-2000:]}")


def _build_history(path: Path, env: dict[str, str]) -> None:
    """The bare repository: FILES files in 100 folders, then one file changed per commit."""
    _git(env, "init", "-q", "--bare", "-b", "main", str(path))
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, env=env, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    w = proc.stdin

    def data(body: bytes) -> None:
        w.write(b"data %d\n%s\n" % (len(body), body))

    for c in range(COMMITS):
        w.write(b"commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\n" % (1_700_000_000 + c))
        data(b"commit %d" % c)
        changed = range(FILES) if c == 0 else [(c * 7919) % FILES]
        for i in changed:
            w.write(b"M 100644 inline d%02d/f%05d.txt\n" % (i % 100, i))
            data(b"file %d version %d\n" % (i, c))
    w.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    _git(env, "gc", "-q", "--aggressive", cwd=path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clone_time(env: dict[str, str], url: str, dest: Path, *extra: str) -> float:
    shutil.rmtree(dest, ignore_errors=True)  # a retried run starts afresh
    start = time.perf_counter()
    _git(env, "clone", "-q", *extra, url, str(dest))
    return time.perf_counter() - start


def _lfs(hub: Hub, env: dict[str, str], reps: int, size: int) -> dict[str, Any]:
    source = make_file(workspace() / "model.bin", size, seed=11)
    repo_id, _ = upload(hub, "bench-git-lfs", source, "model.bin")
    source.unlink()
    url = hub.url.replace("http://", f"http://admin:{hub.token}@") + f"/{repo_id}"
    runs: dict[str, list[dict[str, float]]] = {"git_clone": [], "snapshot_download": []}
    from huggingface_hub import snapshot_download

    for rep in range(reps):
        order = ["git_clone", "snapshot_download"][:: -1 if rep % 2 else 1]
        for name in order:
            dest = workspace() / f"lfs-{name}-{rep}"

            def once(name: str = name, dest: Path = dest) -> float:
                if name == "git_clone":
                    seconds = _clone_time(env, url, dest)
                    got = dest / "model.bin"
                else:
                    shutil.rmtree(dest, ignore_errors=True)
                    start = time.perf_counter()
                    got = Path(snapshot_download(repo_id, endpoint=hub.url, token=hub.token,
                                                 cache_dir=dest)) / "model.bin"
                    seconds = time.perf_counter() - start
                if got.stat().st_size != size:
                    raise RuntimeError(f"{name} got {got.stat().st_size} bytes, not {size}")
                return seconds

            seconds, foreign = timed(once)
            shutil.rmtree(dest, ignore_errors=True)
            runs[name].append({"seconds": seconds, "foreign_cores": foreign})
            print(f"lfs {name}: {seconds:.2f} s", flush=True)
    # Where a clone's time goes (once, as information): git alone, git-lfs's download (which
    # hashes what it receives), git-lfs's checkout (the file copied into the work tree).
    dest = workspace() / "lfs-phases"
    phases: dict[str, float] = {}
    steps = (("clone, pointers only", ["clone", "-q", url, str(dest)], None),
             ("git lfs fetch", ["lfs", "fetch"], dest), ("git lfs checkout", ["lfs", "checkout"], dest))
    for phase, argv, cwd in steps:
        start = time.perf_counter()
        _git({**env, "GIT_LFS_SKIP_SMUDGE": "1"}, *argv, cwd=cwd)
        phases[phase] = time.perf_counter() - start
    shutil.rmtree(dest, ignore_errors=True)
    return {"size": size, "runs": runs, "phases": phases}


def _history(hub: Hub, env: dict[str, str], reps: int) -> dict[str, Any]:
    bare = workspace() / "history.git"
    start = time.perf_counter()
    _build_history(bare, env)
    build_s = time.perf_counter() - start
    api = hf_api(hub.url, hub.token)
    repo_id = api.create_repo("bench-git-history").repo_id
    url = hub.url.replace("http://", f"http://admin:{hub.token}@") + f"/{repo_id}"
    with RssSampler(hub.pid) as sampler:
        sampler.phase = "push"
        start = time.perf_counter()
        _git(env, "push", "-q", "--force", url, "main:main", cwd=bare)
        push_s = time.perf_counter() - start
    push_rss = sampler.peaks.get("push", 0)
    hub.live.stop()  # the clones' memory, not what the push left behind
    hub.live.start()
    idle_rss = tree_rss(hub.pid)
    port = _free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={workspace()}",
                               f"--port={port}", "--listen=127.0.0.1"], env=env)
    runs: dict[str, list[dict[str, float]]] = {"modelyard": [], "git_daemon": []}
    peak = 0
    sources = {"modelyard": url, "git_daemon": f"git://127.0.0.1:{port}/history.git"}

    def clone(name: str, rep: int | str) -> tuple[float, float]:
        nonlocal peak
        dest = workspace() / f"history-{name}-{rep}"
        with RssSampler(hub.pid) as clone_rss:
            clone_rss.phase = "clone"
            seconds, foreign = timed(lambda: _clone_time(env, sources[name], dest, "--bare"))
        if name == "modelyard":
            peak = max(peak, clone_rss.peaks.get("clone", 0))
        count = subprocess.run(["git", "rev-list", "--count", "main"], cwd=dest, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        if count != str(COMMITS):
            raise RuntimeError(f"{name} clone holds {count} commits, not {COMMITS}")
        shutil.rmtree(dest, ignore_errors=True)
        print(f"history {name}: {seconds:.2f} s", flush=True)
        return seconds, foreign

    try:
        time.sleep(1.0)
        # The first clone of this state is written from the database and asks for the state's
        # pack; the job that makes it runs meanwhile and is waited for.
        first_s, _ = clone("modelyard", "first")
        start = time.perf_counter()
        hub.live.settle(timeout=1800)
        pack_s = time.perf_counter() - start
        for rep in range(reps):
            for name in ["modelyard", "git_daemon"][:: -1 if rep % 2 else 1]:
                seconds, foreign = clone(name, rep)
                runs[name].append({"seconds": seconds, "foreign_cores": foreign})
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    pack = sum(p.stat().st_size for p in (bare / "objects" / "pack").glob("*.pack"))
    stored = sum(p.stat().st_size for p in (hub.blob_root / "git-packs").rglob("*.pack"))
    return {"commits": COMMITS, "files": FILES, "build_s": build_s, "push_s": push_s, "push_rss": push_rss,
            "idle_rss": idle_rss, "clone_rss": peak, "disk_pack": pack, "stored_pack": stored, "first_s": first_s,
            "pack_s": pack_s, "runs": runs}


def run(args: argparse.Namespace) -> dict[str, Any]:
    require_tool("git-lfs", "git-lfs")
    home = workspace() / "git-home"
    home.mkdir()
    env = _git_env(home)
    _git(env, "lfs", "install")
    reps = 1 if args.quick else 3
    with modelyard() as hub:
        lfs = _lfs(hub, env, reps, (256 * 1024**2) if args.quick else GIB)
        history = _history(hub, env, reps)
    return {"bench": "git", "reps": reps, "lfs": lfs, "history": history}


def _med(result: dict[str, Any], part: str, name: str) -> float:
    return median([r["seconds"] for r in result[part]["runs"][name]])


def lfs_ratio(result: dict[str, Any]) -> float:
    return _med(result, "lfs", "git_clone") / _med(result, "lfs", "snapshot_download")


def history_ratio(result: dict[str, Any]) -> float:
    return _med(result, "history", "modelyard") / _med(result, "history", "git_daemon")


def met(result: dict[str, Any]) -> bool:
    return (lfs_ratio(result) <= LFS_TARGET and history_ratio(result) <= HISTORY_TARGET
            and result["history"]["clone_rss"] < RSS_TARGET)


def headline(result: dict[str, Any]) -> str:
    return (f"LFS clone {lfs_ratio(result):.2f}x snapshot_download; history clone {history_ratio(result):.1f}x "
            f"git daemon, server RSS {result['history']['clone_rss'] / 1024**2:.0f} MB")


def markdown(result: dict[str, Any]) -> str:
    lfs, hist = result["lfs"], result["history"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def raw(part: str, name: str) -> str:
        rows = result[part]["runs"][name]
        return (", ".join(f"{r['seconds']:.2f}" for r in rows)
                + f" s; others' CPU {max(r['foreign_cores'] for r in rows):.2f}")

    mib = 1024**2
    return "\n".join([
        "| clone | modelyard (median) | baseline (median) | ratio | target |",
        "|---|---|---|---|---|",
        f"| {lfs['size'] / GIB:g} GiB LFS file: `git clone` vs `snapshot_download` | "
        f"{_med(result, 'lfs', 'git_clone'):.2f} s | {_med(result, 'lfs', 'snapshot_download'):.2f} s | "
        f"{lfs_ratio(result):.2f}x | ≤ {LFS_TARGET}x: {verdict(lfs_ratio(result) <= LFS_TARGET)} |",
        f"| {hist['commits']:,} commits, {hist['files']:,} files: modelyard vs `git daemon` | "
        f"{_med(result, 'history', 'modelyard'):.2f} s | {_med(result, 'history', 'git_daemon'):.2f} s | "
        f"{history_ratio(result):.1f}x | ≤ {HISTORY_TARGET}x: {verdict(history_ratio(result) <= HISTORY_TARGET)} |",
        f"| server RSS during the history clones (peak) | {hist['clone_rss'] / mib:.0f} MB | — | — | "
        f"< {RSS_TARGET // mib} MB: {verdict(hist['clone_rss'] < RSS_TARGET)} |",
        "",
        "One more clone, in steps (information): " + ", ".join(f"{k} {v:.2f} s" for k, v in lfs["phases"].items())
        + ".",
        "",
        f"The first clone of the pushed state (written from the database, asking for the state's pack): "
        f"{hist['first_s']:.2f} s; the pack was made and stored {hist['pack_s']:.1f} s later "
        f"({hist['stored_pack'] / mib:.1f} MB).",
        "",
        f"The history repository: built in {hist['build_s']:.1f} s, {hist['disk_pack'] / mib:.1f} MB packed on "
        f"disk; pushed to modelyard with `git push` in {hist['push_s']:.1f} s (server RSS peak "
        f"{hist['push_rss'] / mib:.0f} MB during the push; {hist['idle_rss'] / mib:.0f} MB idle after the restart). "
        f"{result['reps']} timed rounds each (the history clones after the first one, timed apart above); "
        "raw seconds:",
        "",
        f"- LFS `git clone`: {raw('lfs', 'git_clone')}",
        f"- LFS `snapshot_download`: {raw('lfs', 'snapshot_download')}",
        f"- history, modelyard: {raw('history', 'modelyard')}",
        f"- history, `git daemon`: {raw('history', 'git_daemon')}",
    ])


if __name__ == "__main__":
    main(run, __doc__ or "")
