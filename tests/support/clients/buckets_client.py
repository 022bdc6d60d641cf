"""The default client (Xet on) working with buckets, in its own process (run by the tests).

Usage: buckets_client.py roundtrip BUCKET_ID WORKDIR [COPY_FROM_TYPE COPY_FROM_ID COPY_HASH]

Uploads files with ``batch_bucket_files`` (through the Xet CAS with bucket tokens), lists them,
reads their facts, downloads them, copies one within the bucket (and one from another bucket or
repo if asked), deletes one; prints one JSON line of what it saw.
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


def main() -> None:
    command, bucket_id, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    assert command == "roundtrip"
    print(json.dumps(roundtrip(bucket_id, work, sys.argv[4:7])))


if __name__ == "__main__":
    main()
