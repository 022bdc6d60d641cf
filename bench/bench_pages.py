"""Web page latency on the 100,000-repo catalog of the search benchmark (SQLite and PostgreSQL).

The catalog is generated as in ``bench_catalog`` (every repo in the ``acme`` org, with tags,
tasks, licenses, languages and card text). One more model gets a large card (about 22 KB of
Markdown: headings, paragraphs, a 200-row table, code blocks, links and images). Then, over
loopback against a live server, one request at a time:

- the search page with a word, two facet filters and a sort (``/models?search=...&filter=...``),
  facet counts over every match included;
- the model page of the large card.

Each is timed from request to the last byte (server time plus loopback); the page's weight is
its HTML plus the stylesheet (the pages ship no JavaScript).

Usage: python -m bench.bench_pages [--repos 100000] [--requests 300] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import HfApi
from tests.support.server import SEED, TOKENS, LiveServer, postgres_database

from bench.bench_catalog import generate

SEARCHES = [
    "/models?search=model&filter=license:apache-2.0&filter=en&sort=downloads",
    "/models?search=llama&filter=transformers&filter=license:mit&sort=lastModified",
    "/models?search=embedding&filter=sentence-similarity&filter=en&sort=likes",
    "/models?search=w42&filter=license:apache-2.0&filter=fr&sort=createdAt",
    "/models?search=chat&filter=text-generation&filter=license:llama3&sort=trendingScore",
]


def large_card() -> str:
    parts = ["---\nlicense: apache-2.0\npipeline_tag: text-classification\nlanguage: [en, fr]\ntags: [bench]\n---\n",
             "# A model with a large card\n"]
    for section in range(20):
        parts.append(f"\n## Section {section}\n\n" + " ".join(
            f"This is sentence {i} of section {section}, with **bold**, *italic* and a [link](docs/{i}.md)."
            for i in range(8)) + "\n")
        parts.append(f"\n![figure {section}](images/fig{section}.png)\n")
        parts.append(f"\n```python\nfor step in range({section}):\n    train(step)  # section {section}\n```\n")
    parts.append("\n| epoch | loss | accuracy | f1 |\n|---|---|---|---|\n")
    parts += [f"| {e} | {1 / (e + 1):.4f} | {0.5 + e / 500:.4f} | {0.4 + e / 600:.4f} |\n" for e in range(200)]
    return "".join(parts)


def timings(client: httpx.Client, paths: list[str], requests: int) -> dict[str, Any]:
    for path in paths:  # warm-up
        client.get(path).raise_for_status()
    latencies = []
    for i in range(requests):
        t0 = time.perf_counter()
        r = client.get(paths[i % len(paths)])
        latencies.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    latencies.sort()
    return {"p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2),
            "max_ms": round(latencies[-1], 2)}


def run_backend(backend: str, n: int, requests: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-pages-"))
    ctx = postgres_database() if backend == "postgresql" else None
    url = ctx.__enter__() if ctx is not None else None
    try:
        live = LiveServer(data_dir, url, backend)
        live.cli("db", "upgrade")
        live.seed(SEED)
        generate(url or f"sqlite:///{data_dir / 'modelyard.db'}", n)
        live.start()
        try:
            api = HfApi(endpoint=live.url, token=TOKENS["alice"])
            repo_id = api.create_repo("acme/large-card").repo_id
            card = large_card().encode()
            api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_id)
            live.settle()
            with httpx.Client(base_url=live.url, timeout=60) as client:
                t0 = time.perf_counter()
                client.get(f"/{repo_id}").raise_for_status()  # the card's first rendering (then cached)
                cold = round((time.perf_counter() - t0) * 1000, 2)
                firsts = []
                for path in SEARCHES:  # facet counts not yet kept: what the first viewer of a query waits
                    t0 = time.perf_counter()
                    client.get(path).raise_for_status()
                    firsts.append((time.perf_counter() - t0) * 1000)
                search = timings(client, SEARCHES, requests)
                model = timings(client, [f"/{repo_id}"], requests)
                html = client.get(f"/{repo_id}").content
                css = client.get("/static/style.css").content
                facets = client.get(SEARCHES[0]).text.count('class="n"')
        finally:
            live.stop()
        return {"backend": backend, "repos": n, "requests": requests, "search": search, "model": model,
                "model_first_ms": cold, "search_first_ms": round(max(firsts), 2),
                "card_bytes": len(card), "html_bytes": len(html), "css_bytes": len(css),
                "weight_bytes": len(html) + len(css), "facet_values": facets}
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        shutil.rmtree(data_dir, ignore_errors=True)


def _ok(r: dict[str, Any]) -> bool:
    return all(r[k]["p50_ms"] < 20 and r[k]["p99_ms"] < 60 for k in ("search", "model")) and r["weight_bytes"] < 100_000


def met(result: dict[str, Any]) -> bool:
    return all(_ok(r) for r in result["results"])


def headline(result: dict[str, Any]) -> str:
    return "; ".join(
        f"{r['backend']}: search page p50 {r['search']['p50_ms']} / p99 {r['search']['p99_ms']} ms, "
        f"model page p50 {r['model']['p50_ms']} / p99 {r['model']['p99_ms']} ms, "
        f"{r['weight_bytes'] / 1000:.0f} KB" for r in result["results"])


def markdown(result: dict[str, Any]) -> str:
    lines = ["| backend | repos | page | p50 ms | p99 ms | max ms | target p50 < 20 ms, p99 < 60 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        for key, label in (("search", "search, 2 facet filters, sort"), ("model", "model page, large card")):
            t = r[key]
            ok = t["p50_ms"] < 20 and t["p99_ms"] < 60
            lines.append(f"| {r['backend']} | {r['repos']:,} | {label} | {t['p50_ms']} | {t['p99_ms']} | "
                         f"{t['max_ms']} | {'met' if ok else '**not met**'} |")
    lines += ["", "| backend | card (Markdown) | first view of the model page | slowest first view of a search "
              "| model page HTML | stylesheet | page weight | target < 100 KB |", "|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        lines.append(f"| {r['backend']} | {r['card_bytes']:,} B | {r['model_first_ms']} ms | "
                     f"{r.get('search_first_ms', '–')} ms | {r['html_bytes']:,} B | "
                     f"{r['css_bytes']:,} B | {r['weight_bytes']:,} B | "
                     f"{'met' if r['weight_bytes'] < 100_000 else '**not met**'} |")
    lines += ["", "Search pages (cycled): " + "; ".join(f"`{q}`" for q in SEARCHES)]
    return "\n".join(lines)


NOTES = """\
**How.** A page is the API's query (the same catalog indexes) plus the facet counts of every
match: three grouped scans of the matches (tags, libraries, parameter buckets), then a Jinja2
template compiled once per process. A card is rendered (markdown-it, then nh3) on its first view
and kept per process by README blob, repo and revision (256 cards): the timed views are of a
rendered card; the first view (template compiling included) is shown beside the page weight.
Facet counts are kept 30 s per query and viewer: the timed searches reuse them; the first view of
each query counts every match (its time is shown too)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="10,000 repos, 100 requests per page")
    args = parser.parse_args()
    repos, requests = (10_000, 100) if args.quick else (args.repos, args.requests)
    result = {"bench": "pages", "results": [run_backend(b, repos, requests) for b in ("sqlite", "postgresql")]}
    print(headline(result), file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
