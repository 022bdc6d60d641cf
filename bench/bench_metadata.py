"""Metadata extraction for a 10-shard safetensors model of 5 GB: headers only.

Builds a sharded model whose shards are real safetensors files (sparse on disk: a header, then
zeros), imports it into a hub (SQLite + local blobs), then times the indexer on it while
counting every byte it reads from the blob store.

Usage: python -m bench.bench_metadata [--shards 10] [--total-gb 5] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.catalog.migrate import upgrade
from modelyard.config import Settings
from modelyard.services.accounts import create_user
from modelyard.services.hub import Hub
from modelyard.services.importer import import_folder
from modelyard.services.indexer import index_repo
from modelyard.storage.base import BlobStore


class CountingStore:
    """Wraps a blob store and counts the bytes read from each key."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.read_bytes: dict[str, int] = defaultdict(int)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        for chunk in self.inner.read(key, start, end):
            self.read_bytes[key] += len(chunk)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--total-gb", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="accepted for run_all; the run is already short")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelyard-bench-metadata-"))
    try:
        model = work / "model"
        model.mkdir()
        per_shard = int(args.total_gb * 1024**3 / args.shards)
        weight_map: dict[str, str] = {}
        params = 0
        for s in range(args.shards):
            name = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
            per = (per_shard // 40) // 4 * 4
            header: dict[str, Any] = {}
            offset = 0
            for i in range(40):
                tensor = f"layers.{s}.{i}.weight"
                header[tensor] = {"dtype": "F32", "shape": [per // 4], "data_offsets": [offset, offset + per]}
                weight_map[tensor] = name
                offset += per
            raw = json.dumps(header).encode()
            raw += b" " * (-len(raw) % 8)
            with open(model / name, "wb") as f:
                f.write(struct.pack("<Q", len(raw)) + raw)
                f.truncate(8 + len(raw) + offset)
            params += offset // 4
        (model / "model.safetensors.index.json").write_text(json.dumps({
            "metadata": {"total_size": params * 4}, "weight_map": weight_map}))
        settings = Settings(data_dir=work / "data")
        hub = Hub(settings)
        upgrade(hub.db)
        create_user(hub, "bench", admin=True)
        t0 = time.perf_counter()
        import_folder(hub, model, "bench/sharded", "model", False, "import", "bench")
        imported = time.perf_counter() - t0
        counting = CountingStore(hub.blobs)
        hub.blobs = counting  # type: ignore[assignment]
        from sqlalchemy import select

        from modelyard.catalog.tables import repos

        with hub.db.read() as conn:
            pk = conn.execute(select(repos.c.id).where(repos.c.key == "bench/sharded")).scalar_one()
            conn.execute(repos.update().where(repos.c.id == pk).values(indexed_commit=None))
        hub.objects = type(hub.objects)(hub.db)  # cold caches
        t0 = time.perf_counter()
        index_repo(hub, pk)
        elapsed = time.perf_counter() - t0
        with hub.db.read() as conn:
            total = conn.execute(select(repos.c.num_parameters).where(repos.c.id == pk)).scalar_one()
        per_key = sorted(counting.read_bytes.values())
        result = {
            "shards": args.shards, "total_bytes": sum(p.stat().st_size for p in model.glob("*.safetensors")),
            "import_s": round(imported, 2), "index_s": round(elapsed, 3),
            "max_bytes_read_per_shard": max(per_key) if per_key else 0, "shards_read": len(per_key),
            "parameters_found": total, "parameters_expected": params,
        }
        hub.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = result["index_s"] < 1 and result["max_bytes_read_per_shard"] < 1024**2 and total == params
    print(json.dumps(result), file=sys.stderr)
    print(f"index {result['index_s']} s, max {result['max_bytes_read_per_shard']} B/shard: "
          f"{'meets' if ok else 'MISSES'} < 1 s and < 1 MB per shard", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def met(result: dict[str, Any]) -> bool:
    return bool(result["index_s"] < 1 and result["max_bytes_read_per_shard"] < 1024**2
                and result["parameters_found"] == result["parameters_expected"])


def headline(result: dict[str, Any]) -> str:
    return (f"{result['index_s']} s, at most {result['max_bytes_read_per_shard']:,} bytes read per shard "
            f"({result['shards_read']} shards, {result['total_bytes'] / 1024**3:.1f} GiB)")


def markdown(result: dict[str, Any]) -> str:
    return "\n".join([
        "| shards | total | indexing time | max bytes read per shard | parameters found | target |",
        "|---|---|---|---|---|---|",
        f"| {result['shards']} | {result['total_bytes'] / 1024**3:.2f} GiB | {result['index_s']} s | "
        f"{result['max_bytes_read_per_shard']:,} | {result['parameters_found']:,} (expected "
        f"{result['parameters_expected']:,}) | < 1 s and < 1 MB per shard: {'met' if met(result) else '**not met**'} |",
    ])


if __name__ == "__main__":
    main()
