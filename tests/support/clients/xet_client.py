"""Client-side script for the Xet tests: a default install (hf_xet on, no HF_HUB_DISABLE_XET).

Usage:
  xet_client.py upload REPO_ID LOCAL PATH_IN_REPO   upload_file; reports hf_xet's own dedup metrics
  xet_client.py upload_folder REPO_ID LOCAL_DIR [REPO_TYPE]   upload_folder
  xet_client.py download REPO_ID PATH [REVISION]    hf_hub_download; reports the HTTP calls Python made
  xet_client.py fetch REPO_ID JSON                  hf_hub_download of each {"path", "revision", "token",
                                                    "cache_dir"} of the JSON list: a path or the client's
                                                    exception each; reports the HTTP calls
  xet_client.py snapshot REPO_ID                    snapshot_download
With --errors-as-json before the mode, a client HTTP error is printed as
{"error": class name, "status": ..., "code": X-Error-Code} instead of failing the process.
Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from minilm import record_requests  # the sibling script (this folder is on sys.path when run)

METRICS = ("total_bytes", "deduped_bytes", "new_bytes", "deduped_bytes_by_global_dedup", "xorb_bytes_uploaded",
           "shard_bytes_uploaded", "total_bytes_uploaded")


def metrics_dict(m: Any, scope: str) -> dict[str, Any]:
    return {"scope": scope, **{name: int(getattr(m, name)) for name in METRICS}}


def capture_xet_metrics() -> list[dict[str, Any]]:
    """Wrap hf_xet's upload commit to keep its report: the commit's and each file's dedup metrics."""
    from huggingface_hub.utils import _xet

    reports: list[dict[str, Any]] = []
    original = _xet.get_xet_session

    class Commit:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.handles: list[Any] = []

        def __enter__(self) -> Commit:
            return self

        def __exit__(self, exc_type: Any, *exc: Any) -> None:
            # What ``with`` does for hf_xet's commit, keeping the report it returns.
            if exc_type is not None:
                self.inner.abort()
                return
            report = self.inner.wait_to_finish()
            reports.append(metrics_dict(report.dedup_metrics, "commit"))
            for handle in self.handles:
                reports.append(metrics_dict(handle.result().dedup_metrics, "file"))

        def start_upload_file(self, *args: Any, **kwargs: Any) -> Any:
            handle = self.inner.start_upload_file(*args, **kwargs)
            self.handles.append(handle)
            return handle

        def start_upload_bytes(self, *args: Any, **kwargs: Any) -> Any:
            handle = self.inner.start_upload_bytes(*args, **kwargs)
            self.handles.append(handle)
            return handle

    class Session:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def new_upload_commit(self, *args: Any, **kwargs: Any) -> Commit:
            return Commit(self.inner.new_upload_commit(*args, **kwargs))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    _xet.get_xet_session = lambda: Session(original())  # type: ignore[assignment]
    return reports


def client_error(exc: Any) -> dict[str, Any]:
    """What a test asserts about one of huggingface_hub's HTTP errors."""
    response = exc.response
    return {"error": type(exc).__name__, "status": response.status_code,
            "code": response.headers.get("X-Error-Code")}


def main() -> None:
    from huggingface_hub.errors import HfHubHTTPError

    args = sys.argv[1:]
    if args[0] == "--errors-as-json":
        try:
            run(args[1:])
        except HfHubHTTPError as exc:
            print(json.dumps(client_error(exc)))
        return
    run(args)


def run(argv: list[str]) -> None:
    assert "HF_HUB_DISABLE_XET" not in os.environ, "these tests exercise the default (Xet) client"
    sys.argv = [sys.argv[0], *argv]
    mode, repo_id = sys.argv[1], sys.argv[2]
    out: dict[str, object] = {}
    if mode == "upload":
        reports = capture_xet_metrics()
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        start = time.perf_counter()
        info = api.upload_file(path_or_fileobj=sys.argv[3], path_in_repo=sys.argv[4], repo_id=repo_id)
        out["seconds"] = time.perf_counter() - start
        out["commit"] = info.oid
        out["metrics"] = reports
    elif mode == "upload_folder":
        from huggingface_hub import HfApi

        api = HfApi()
        repo_type = sys.argv[4] if len(sys.argv) > 4 else None
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True,
                        space_sdk="static" if repo_type == "space" else None)
        info = api.upload_folder(folder_path=sys.argv[3], repo_id=repo_id, repo_type=repo_type)
        out["commit"] = info.oid
    elif mode == "fetch":
        log = record_requests()
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError

        results: list[dict[str, Any]] = []
        for item in json.loads(sys.argv[3]):
            try:
                path = hf_hub_download(repo_id, item["path"], revision=item.get("revision"),
                                       token=item.get("token"), cache_dir=item.get("cache_dir"))
                results.append({"path": path})
            except HfHubHTTPError as exc:
                results.append(client_error(exc))
        out["results"] = results
        out["requests"] = log
    elif mode == "download":
        log = record_requests()
        from huggingface_hub import hf_hub_download

        revision = sys.argv[4] if len(sys.argv) > 4 else None
        start = time.perf_counter()
        out["path"] = hf_hub_download(repo_id, sys.argv[3], revision=revision)
        out["seconds"] = time.perf_counter() - start
        out["requests"] = log
    elif mode == "snapshot":
        log = record_requests()
        from huggingface_hub import snapshot_download

        out["path"] = snapshot_download(repo_id)
        out["requests"] = log
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
