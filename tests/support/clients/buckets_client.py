"""The default client (Xet on) working with buckets, in its own process (run by the tests).

Usage: buckets_client.py roundtrip BUCKET_ID WORKDIR [COPY_FROM_TYPE COPY_FROM_ID COPY_HASH]
       buckets_client.py sync BUCKET_ID WORKDIR
       buckets_client.py fs BUCKET_ID WORKDIR
       buckets_client.py datasets BUCKET_ID WORKDIR
       buckets_client.py checkpoints BUCKET_ID WORKDIR COUNT SIZE_MB

roundtrip: uploads files with ``batch_bucket_files`` (through the Xet CAS with bucket tokens),
lists them, reads their facts, downloads them, copies one within the bucket (and one from another
bucket or repo if asked), deletes one. sync: ``sync_bucket`` up, again after changes (with
``delete``), then down. fs: ``HfFileSystem`` on ``hf://buckets/...``. datasets: ``push_to_hub``
into the bucket and ``load_dataset`` from it. checkpoints: COUNT consecutive "checkpoints" of
SIZE_MB each, every one changing 2% of the previous (four 0.5% runs at random places), written
to the same path. Each prints one JSON line of what it saw.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import BucketNotFoundError


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entries(api: HfApi, bucket_id: str, prefix: str | None, recursive: bool | None) -> list[dict[str, Any]]:
    return [{"type": type(e).__name__, "path": e.path, "size": getattr(e, "size", None),
             "xet_hash": getattr(e, "xet_hash", None), "mtime": str(getattr(e, "mtime", None))}
            for e in api.list_bucket_tree(bucket_id, prefix=prefix, recursive=recursive)]


def roundtrip(bucket_id: str, work: Path, copy_from: list[str]) -> dict[str, Any]:
    api = HfApi()
    out: dict[str, Any] = {"url": str(api.create_bucket(bucket_id, exist_ok=True))}
    weights = work / "weights.bin"
    weights.write_bytes(hashlib.sha256(b"seed").digest() * 100_000)  # 3.2 MB
    api.batch_bucket_files(bucket_id, add=[(b"hello bucket", "a.txt"), (weights, "models/w.bin"), (b"", "empty")])
    out["recursive"] = entries(api, bucket_id, None, True)
    out["root"] = entries(api, bucket_id, None, False)
    out["models"] = entries(api, bucket_id, "models", None)
    out["exact"] = entries(api, bucket_id, "models/w.bin", False)
    out["nothing"] = entries(api, bucket_id, "no/such/prefix", True)
    out["paths_info"] = [f.path for f in api.get_bucket_paths_info(bucket_id, ["a.txt", "nope", "models"])]
    info = api.bucket_info(bucket_id)
    out["info"] = {"id": info.id, "private": info.private, "size": info.size, "total_files": info.total_files}
    down = work / "down"
    api.download_bucket_files(bucket_id, [("a.txt", str(down / "a.txt")), ("models/w.bin", str(down / "w.bin")),
                                          ("empty", str(down / "empty"))])
    out["downloaded"] = {p.name: digest(p) for p in sorted(down.iterdir())}
    out["weights_sha256"] = digest(weights)
    w_hash = next(e["xet_hash"] for e in out["recursive"] if e["path"] == "models/w.bin")
    copies = [("bucket", bucket_id, w_hash, "copies/w.bin")]
    if copy_from:
        copies.append((copy_from[0], copy_from[1], copy_from[2], "copies/from-elsewhere.bin"))
    api.batch_bucket_files(bucket_id, copy=copies, delete=["a.txt", "never-there.txt"])
    out["after"] = entries(api, bucket_id, None, True)
    got = work / "copied"
    api.download_bucket_files(bucket_id, [(c[3], str(got / c[3].replace("/", "_"))) for c in copies])
    out["copied"] = {p.name: digest(p) for p in sorted(got.iterdir())}
    try:
        api.bucket_info(bucket_id + "-missing")
        out["missing"] = "found"
    except BucketNotFoundError:
        out["missing"] = "BucketNotFoundError"
    return out


def tree_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def sync(bucket_id: str, work: Path) -> dict[str, Any]:
    api = HfApi()
    api.create_bucket(bucket_id, exist_ok=True)
    local = work / "local"
    (local / "ckpt").mkdir(parents=True)
    (local / "config.json").write_text('{"step": 1}')
    (local / "ckpt" / "a.bin").write_bytes(b"a" * 100_000)
    (local / "ckpt" / "b.bin").write_bytes(b"b" * 50_000)
    remote = f"hf://buckets/{bucket_id}/run1"
    first = api.sync_bucket(str(local), remote, quiet=True)
    again = api.sync_bucket(str(local), remote, quiet=True)  # nothing changed: nothing to do
    (local / "config.json").write_text('{"step": 2, "more": true}')
    (local / "ckpt" / "b.bin").unlink()
    (local / "ckpt" / "c.bin").write_bytes(b"c" * 70_000)
    api.sync_bucket(str(local), remote, delete=True, quiet=True)
    down = work / "down"
    api.sync_bucket(remote, str(down), quiet=True)
    listed = sorted(f.path for f in api.list_bucket_tree(bucket_id, recursive=True))
    return {"first": len(first.operations), "again": [o.action for o in again.operations],
            "listed": listed, "local": tree_of(local), "down": tree_of(down)}


def filesystem(bucket_id: str, work: Path) -> dict[str, Any]:
    from huggingface_hub import HfFileSystem

    HfApi().create_bucket(bucket_id, exist_ok=True)
    fs = HfFileSystem()
    root = f"hf://buckets/{bucket_id}"
    with fs.open(f"{root}/data/one.txt", "wb") as f:
        f.write(b"one " * 1000)
    fs.pipe(f"{root}/data/two.txt", b"two")
    out: dict[str, Any] = {
        "ls": sorted(e["name"] for e in fs.ls(root, detail=True)),
        "ls_data": sorted((e["name"], e["type"], e.get("size")) for e in fs.ls(f"{root}/data", detail=True)),
        "glob": sorted(fs.glob(f"{root}/**/*.txt")),
        "cat": fs.cat(f"{root}/data/two.txt").decode(),
        "range": fs.cat_file(f"{root}/data/one.txt", start=4, end=12).decode(),
        "exists": [fs.exists(f"{root}/data/one.txt"), fs.exists(f"{root}/data/none.txt")],
    }
    fs.cp(f"{root}/data/one.txt", f"{root}/copy/one.txt")
    fs.get(f"{root}/copy/one.txt", str(work / "got.txt"))
    out["got"] = (work / "got.txt").read_bytes() == b"one " * 1000
    fs.rm(f"{root}/data", recursive=True)
    fs.invalidate_cache()
    out["after_rm"] = sorted(fs.find(root))
    return out


def push_and_load(bucket_id: str, work: Path) -> dict[str, Any]:
    import datasets

    ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(100)], "label": [i % 3 for i in range(100)]})
    ds.push_to_hub(f"buckets/{bucket_id}/toy")
    loaded = datasets.load_dataset(f"buckets/{bucket_id}/toy", split="train", cache_dir=str(work / "cache"))
    return {"rows": loaded.num_rows, "columns": sorted(loaded.column_names), "first": loaded[0]["text"],
            "files": sorted(f.path for f in HfApi().list_bucket_tree(bucket_id, recursive=True))}


def checkpoints(bucket_id: str, work: Path, count: int, size_mb: int) -> dict[str, Any]:
    import random

    api = HfApi()
    api.create_bucket(bucket_id, exist_ok=True)
    rng = random.Random(2)
    data = bytearray(rng.randbytes(size_mb * 1024 * 1024))
    path = work / "model.safetensors"
    digests = []
    for step in range(count):
        if step:
            for _ in range(4):
                run = len(data) // 200
                at = rng.randrange(0, len(data) - run)
                data[at : at + run] = rng.randbytes(run)
        path.write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
        api.batch_bucket_files(bucket_id, add=[(path, "checkpoints/model.safetensors")])
    return {"sha256": digests, "last": str(path)}


def main() -> None:
    command, bucket_id, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if command == "roundtrip":
        print(json.dumps(roundtrip(bucket_id, work, sys.argv[4:7])))
    elif command == "sync":
        print(json.dumps(sync(bucket_id, work)))
    elif command == "fs":
        print(json.dumps(filesystem(bucket_id, work)))
    elif command == "datasets":
        print(json.dumps(push_and_load(bucket_id, work)))
    elif command == "checkpoints":
        print(json.dumps(checkpoints(bucket_id, work, int(sys.argv[4]), int(sys.argv[5]))))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
