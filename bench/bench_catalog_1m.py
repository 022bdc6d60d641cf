"""Catalog search on a generated 1,000,000-repo catalog on PostgreSQL: the scale of a large
team's hub, on the database many servers share.

The same generator and queries as ``bench_catalog`` (search + two filters + a sort, first page of
50, one request at a time over loopback, against one live server), ten times the repos.
Target: p50 under 20 ms and p99 under 100 ms.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import bench_catalog
from bench.common import main

REPOS = 1_000_000
NOTES = bench_catalog.NOTES


def run(args: argparse.Namespace) -> dict[str, Any]:
    repos = 100_000 if args.quick else REPOS
    result = bench_catalog.run_backend("postgresql", repos, 100 if args.quick else 300)
    print(f"postgresql, {repos:,} repos: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
          f"(generated in {result['generate_s']} s)", flush=True)
    return {"bench": "catalog_1m", "results": [result]}


def met(result: dict[str, Any]) -> bool:
    return bench_catalog.met(result) and all(r["repos"] >= REPOS for r in result["results"])


headline = bench_catalog.headline
markdown = bench_catalog.markdown


if __name__ == "__main__":
    main(run, __doc__ or "")
