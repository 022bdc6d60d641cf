"""A one-file commit to a repo of 10,000 files against the same commit to a repo of one file.

Target: the commit to the 10,000-file repo takes at most 1.5x the time of the commit to the
one-file repo. Both repos are built through the API: the large one with one NDJSON commit of
10,000 tiny files under ``data/`` (``data/f00000.txt`` ... ``data/f09999.txt``), the small one
with ``data/f00000.txt`` alone. The timed commit is one NDJSON request (``POST
/api/models/{repo}/commit/main``, one ``file`` line) that rewrites ``README.md`` with a new tag in
its card; what is timed is that request, from sending it to its answer, over a keep-alive
connection. The two repos take turns, two untimed rounds first; the medians are compared.

After each timed commit the catalog is watched: ``model_info`` (``GET /api/models/{repo}``) must
name the new commit as ``sha`` at once, and the listing filtered by the new tag (``GET
/api/models?filter=TAG``: the indexed tags) is polled until it lists the repo. The time until it
does is reported from the commit's answer on ("catalog caught up"): zero while the commit
request indexes before it answers, the job queue's delay once indexing runs in the background.

Also reported, as information: a commit that rewrites a file inside ``data/`` (in the large repo,
the folder of 10,000 entries; git stores a folder as one tree object, so that tree is written
anew), timed the same way.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from functools import partial
from typing import Any

import httpx

from bench.common import Hub, hf_api, main, median, modelyard, timed

TARGET_RATIO = 1.5
FILES = 10_000
NDJSON = {"Content-Type": "application/x-ndjson"}
CATALOG_TIMEOUT = 120.0

NOTES = """\
How to read it. The commit request writes the new blobs and trees, the commit and the branch's
compare-and-swap in one transaction; git keeps a folder as one tree object, so the commit into
``data/`` writes that folder's tree anew (10,000 entries in the large repo), while the README
commit leaves it as it is. Indexing the repo for the catalog walks the whole tree and reads the
entry of every file, so it grows with the number of files: done inside the commit request it is
part of the commit's time; done by a background job (``services/events.py``) it shows in the
"catalog caught up" row instead.
"""


def _lines(summary: str, files: dict[str, bytes]) -> bytes:
    lines = [{"key": "header", "value": {"summary": summary}}]
    lines += [{"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode()}}
              for path, data in files.items()]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


class Session:
    """One keep-alive client for the hub's API, as the admin."""

    def __init__(self, hub: Hub) -> None:
        self.client = httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {hub.token}"}, timeout=300)

    def commit(self, repo_id: str, summary: str, files: dict[str, bytes]) -> tuple[str, float]:
        """Commit ``files``; returns the commit id and the seconds the request took."""
        body = _lines(summary, files)
        start = time.perf_counter()
        r = self.client.post(f"/api/models/{repo_id}/commit/main", content=body, headers=NDJSON)
        seconds = time.perf_counter() - start
        if r.status_code != 200:
            raise RuntimeError(f"commit to {repo_id} failed: {r.status_code} {r.text[:500]}")
        return str(r.json()["commitOid"]), seconds

    def resolved(self, repo_id: str, path: str) -> str:
        """The commit ``HEAD /resolve/main/{path}`` names (X-Repo-Commit), as clients resolve ``main``."""
        r = self.client.head(f"/{repo_id}/resolve/main/{path}")
        r.raise_for_status()
        return str(r.headers["X-Repo-Commit"])

    def sha(self, repo_id: str) -> str:
        r = self.client.get(f"/api/models/{repo_id}")
        r.raise_for_status()
        return str(r.json()["sha"])

    def listed(self, repo_id: str, tag: str) -> bool:
        r = self.client.get("/api/models", params={"filter": tag, "limit": 5})
        r.raise_for_status()
        return any(item["id"] == repo_id for item in r.json())


def _readme(tag: str) -> bytes:
    return f"---\ntags:\n- {tag}\n---\n# Benchmark repo\n\nTagged {tag}.\n".encode()


def _card_commit(s: Session, repo_id: str, nonce: str, n: int, box: list[dict[str, Any]]) -> float:
    """Rewrite README.md with a new tag; time the request; watch the catalog catch up."""
    tag = f"bench-{nonce}-{n}"
    oid, seconds = s.commit(repo_id, f"card {n}", {"README.md": _readme(tag)})
    answered = time.perf_counter()
    resolved = s.resolved(repo_id, "README.md") == oid  # main names the new commit at once
    looks = 1
    while not s.listed(repo_id, tag):
        if time.perf_counter() - answered > CATALOG_TIMEOUT:
            raise RuntimeError(f"{repo_id}: the listing did not show tag {tag} within {CATALOG_TIMEOUT} s")
        time.sleep(0.005)
        looks += 1
    catalog = time.perf_counter() - answered
    # model_info lists every file (slow on the large repo): its ``sha`` is read after the catalog.
    box.append({"commit_s": seconds, "catalog_s": catalog, "looks": looks, "resolve_at_once": resolved,
                "sha_matches": s.sha(repo_id) == oid})
    return seconds


def _folder_commit(s: Session, repo_id: str, n: int, box: list[dict[str, Any]]) -> float:
    """Rewrite one file inside data/ (the 10,000-entry folder in the large repo)."""
    _oid, seconds = s.commit(repo_id, f"data {n}", {"data/extra.txt": f"round {n}\n".encode()})
    box.append({"commit_s": seconds})
    return seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    reps = 3 if args.quick else 9
    warmup = 2
    nonce = uuid.uuid4().hex[:8]
    runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": [], "small_folder": [], "large_folder": []}
    with modelyard() as hub:
        api = hf_api(hub.url, hub.token)
        s = Session(hub)
        small = api.create_repo("bench-commit-1-file").repo_id
        large = api.create_repo(f"bench-commit-{FILES}-files").repo_id
        s.commit(small, "one file", {"data/f00000.txt": b"0"})
        _oid, build_s = s.commit(large, f"{FILES} files", {f"data/f{i:05d}.txt": b"%d" % i for i in range(FILES)})
        files = [e for e in api.list_repo_tree(large, recursive=True)
                 if type(e).__name__ == "RepoFile" and e.path.startswith("data/")]
        if len(files) != FILES:
            raise RuntimeError(f"{large} holds {len(files)} files under data/, not {FILES}")
        print(f"built {large}: one commit of {FILES} files in {build_s:.2f} s", flush=True)
        n = 0
        for rep in range(warmup + reps):
            pairs = [("small", small), ("large", large)]
            if rep % 2:
                pairs.reverse()  # take turns, so drift hits both alike
            for name, repo_id in pairs:
                for kind in ("", "_folder"):
                    n += 1
                    box: list[dict[str, Any]] = []
                    work = (partial(_card_commit, s, repo_id, nonce, n, box) if not kind
                            else partial(_folder_commit, s, repo_id, n, box))
                    if rep < warmup:
                        work()
                        continue
                    _seconds, foreign = timed(work)
                    runs[name + kind].append({**box[-1], "foreign_cores": foreign})
            if rep >= warmup:
                print(f"round {rep - warmup + 1}: commit 1 file {runs['small'][-1]['commit_s'] * 1000:.1f} ms, "
                      f"{FILES} files {runs['large'][-1]['commit_s'] * 1000:.1f} ms; catalog after "
                      f"{runs['small'][-1]['catalog_s'] * 1000:.1f} / {runs['large'][-1]['catalog_s'] * 1000:.1f} ms",
                      flush=True)
        s.client.close()
    return {"bench": "commit", "files": FILES, "reps": reps, "build_s": build_s, "runs": runs}


def _med(result: dict[str, Any], name: str, key: str = "commit_s") -> float:
    return median([r[key] for r in result["runs"][name]])


def ratio(result: dict[str, Any]) -> float:
    return _med(result, "large") / _med(result, "small")


def met(result: dict[str, Any]) -> bool:
    return ratio(result) <= TARGET_RATIO


def headline(result: dict[str, Any]) -> str:
    return (f"{ratio(result):.2f}x ({_med(result, 'large') * 1000:.1f} ms vs {_med(result, 'small') * 1000:.1f} ms); "
            f"catalog caught up {_med(result, 'large', 'catalog_s') * 1000:.0f} ms after the answer")


def markdown(result: dict[str, Any]) -> str:
    files = result["files"]
    verdict = "met" if met(result) else "**not met**"
    cards = [r for name in ("small", "large") for r in result["runs"][name]]
    resolve_ok = all(r["resolve_at_once"] for r in cards)
    sha_ok = all(r["sha_matches"] for r in cards)
    first = sum(r["looks"] == 1 for r in cards)
    folder = _med(result, "large_folder") / _med(result, "small_folder")
    lines = [
        f"| commit of README.md | repo of 1 file | repo of {files:,} files | ratio | target ≤ {TARGET_RATIO}x |",
        "|---|---|---|---|---|",
        f"| commit request (median) | {_med(result, 'small') * 1000:.1f} ms | {_med(result, 'large') * 1000:.1f} ms | "
        f"{ratio(result):.2f}x | {verdict} |",
        f"| (info) catalog caught up, after the answer (median) | {_med(result, 'small', 'catalog_s') * 1000:.1f} ms | "
        f"{_med(result, 'large', 'catalog_s') * 1000:.1f} ms | — | — |",
        f"| (info) commit of data/extra.txt, into the folder of 1 / {files:,} files (median) | "
        f"{_med(result, 'small_folder') * 1000:.1f} ms | {_med(result, 'large_folder') * 1000:.1f} ms | "
        f"{folder:.2f}x | — |",
        "",
        f"Right after each commit's answer, ``HEAD /resolve/main/README.md`` named the new commit "
        f"(X-Repo-Commit): {'yes' if resolve_ok else '**no**'}; ``model_info`` named it as ``sha`` "
        f"(read after the catalog caught up): {'yes' if sha_ok else '**no**'}. The catalog time starts at "
        f"the answer and includes that HEAD; the listing showed the new tag at its first look after "
        f"{first} of {len(cards)} commits (there it is an upper bound). "
        f"Building the large repo (one commit of {files:,} files) took "
        f"{result['build_s']:.2f} s. {result['reps']} timed rounds after 2 untimed ones; raw milliseconds "
        "(commit / catalog caught up after the answer; others' CPU in cores, at most):",
        "",
    ]
    labels = {"small": "1 file, README.md", "large": f"{files:,} files, README.md",
              "small_folder": "1 file, data/extra.txt", "large_folder": f"{files:,} files, data/extra.txt"}
    for name, label in labels.items():
        rows = result["runs"][name]
        raw = ", ".join(f"{r['commit_s'] * 1000:.1f}" + (f" / {r['catalog_s'] * 1000:.1f}" if "catalog_s" in r else "")
                        for r in rows)
        lines.append(f"- {label}: {raw}; others' CPU {max(r['foreign_cores'] for r in rows):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, __doc__ or "")
