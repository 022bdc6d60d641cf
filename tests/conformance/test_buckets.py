"""Buckets through huggingface_hub 2.4: create, info, list, settings, move, delete; files added
through the Xet CAS with bucket tokens, listed, read, downloaded, copied (within the bucket and
from a model repo's Xet file, no bytes moved) and deleted; access and bad input; gc keeps what
buckets hold (SQLite and PostgreSQL; gc on a hub of its own).

The Xet flows run the default client (Xet on) in a subprocess (tests/support/clients/
buckets_client.py), as the in-process client has Xet off (tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, RepoFile
from huggingface_hub.errors import BucketNotFoundError, HfHubHTTPError

from tests.support.clients.run import run_client
from tests.support.server import BIN, TOKENS, LiveServer, seeded_hub


def tag() -> str:
    return uuid.uuid4().hex[:8]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def xet_hash_of(api: HfApi, repo_id: str, path: str) -> str:
    found = [e for e in api.list_repo_tree(repo_id, recursive=True) if isinstance(e, RepoFile) and e.path == path]
    assert found and found[0].xet_hash is not None
    return str(found[0].xet_hash)


def test_files_through_the_client(server: LiveServer, api: HfApi, xet_env: dict[str, str], tmp_path: Path) -> None:
    # A model repo with a file uploaded through Xet, to copy from.
    model = api.create_repo(f"alice/src-{tag()}").repo_id
    weights = tmp_path / "model.bin"
    weights.write_bytes(hashlib.sha256(b"model").digest() * 70_000)
    run_client("xet_client.py", ["upload", model, str(weights), "model.bin"], xet_env)
    model_hash = xet_hash_of(api, model, "model.bin")

    bucket = f"alice/files-{tag()}"
    work = tmp_path / "work"
    work.mkdir()
    out = run_client("buckets_client.py", ["roundtrip", bucket, str(work), "model", model, model_hash], xet_env)

    assert f"bucket_id='{bucket}'" in out["url"]
    files = {e["path"]: e for e in out["recursive"]}
    assert set(files) == {"a.txt", "empty", "models/w.bin"}  # recursive: files only
    assert files["a.txt"]["size"] == 12 and files["models/w.bin"]["size"] == 3_200_000 and files["empty"]["size"] == 0
    assert all(e["type"] == "BucketFile" and e["mtime"] != "None" for e in out["recursive"])
    assert [(e["type"], e["path"]) for e in out["root"]] == [
        ("BucketFile", "a.txt"), ("BucketFile", "empty"), ("BucketFolder", "models")]
    assert [e["path"] for e in out["models"]] == ["models/w.bin"]
    assert [e["path"] for e in out["exact"]] == ["models/w.bin"]  # a prefix naming a file gives it
    assert out["nothing"] == []
    assert out["paths_info"] == ["a.txt"]  # missing paths and folders left out
    assert out["info"] == {"id": bucket, "private": False, "size": 3_200_012, "total_files": 3}
    assert out["downloaded"] == {
        "a.txt": hashlib.sha256(b"hello bucket").hexdigest(), "empty": hashlib.sha256(b"").hexdigest(),
        "w.bin": out["weights_sha256"]}
    # Copies (within the bucket, and from the model repo) and deletes (a missing path is no error).
    after = {e["path"]: e for e in out["after"]}
    assert set(after) == {"empty", "models/w.bin", "copies/w.bin", "copies/from-elsewhere.bin"}
    assert after["copies/from-elsewhere.bin"]["xet_hash"] == model_hash
    assert out["copied"] == {"copies_w.bin": out["weights_sha256"],
                             "copies_from-elsewhere.bin": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert out["missing"] == "BucketNotFoundError"

    # Plain HTTP with Range, for curl and every other tool.
    r = httpx.get(f"{server.url}/buckets/{bucket}/resolve/models/w.bin",
                  headers={**auth("alice"), "Range": "bytes=32-63"})
    assert r.status_code == 206 and r.content == hashlib.sha256(b"seed").digest()  # the second copy of it
    assert r.headers["X-Xet-Hash"] == files["models/w.bin"]["xet_hash"]
    head = httpx.head(f"{server.url}/buckets/{bucket}/resolve/models%2Fw.bin", headers=auth("alice"))
    assert head.status_code == 200 and head.headers["X-Linked-Size"] == "3200000"
    assert 'rel="xet-auth"' in head.headers["Link"]
    missing = httpx.head(f"{server.url}/buckets/{bucket}/resolve/nope.bin", headers=auth("alice"))
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
    # NUL (never stored; PostgreSQL refuses it in a query) in a path, a prefix or an id: not found.
    for url in (f"/buckets/{bucket}/resolve/a%00b", f"/api/buckets/{bucket}/tree/a%00b",
                f"/api/buckets/{bucket}%00x/tree", f"/api/buckets/{bucket}/tree?recursive=true&cursor=%00"):
        r = httpx.get(server.url + url, headers=auth("alice"))
        assert r.status_code in (200, 404) and (r.status_code == 404 or r.json() == []), (url, r.status_code)
    r = httpx.post(f"{server.url}/api/buckets/{bucket}/paths-info", json={"paths": ["a\x00b"]}, headers=auth("alice"))
    assert r.status_code == 200 and r.json() == []


def client_env(live: LiveServer, tmp_path: Path) -> dict[str, str]:
    """A default client's environment (Xet on) for a hub of a test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": live.url, "HF_HOME": str(tmp_path / "home"), "HF_TOKEN": TOKENS["alice"],
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    return env


def batch(server: LiveServer, bucket: str, lines: list[dict[str, Any]], user: str = "alice") -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.post(f"{server.url}/api/buckets/{bucket}/batch", content=body,
                      headers={**auth(user), "Content-Type": "application/x-ndjson"}, timeout=30)


def test_lifecycle_access_and_bad_input(server: LiveServer, api: HfApi,
                                        api_as: Callable[[str | None], HfApi]) -> None:
    name = f"life-{tag()}"
    made = api.create_bucket(name)  # no namespace: the caller's
    assert made.bucket_id == f"alice/{name}"
    bucket = made.bucket_id
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_bucket(bucket)
    assert exists.value.response.status_code == 409
    assert api.create_bucket(bucket, exist_ok=True).bucket_id == bucket  # the 409 names the URL
    private = api.create_bucket(f"acme/private-{tag()}", private=True).bucket_id
    assert api.bucket_info(private).private is True
    assert {bucket} <= {b.id for b in api.list_buckets()}
    assert private in {b.id for b in api.list_buckets("acme")}

    # Outsiders: a private bucket does not exist for them; a public one is read-only.
    bob, anonymous = api_as("bob"), api_as(None)
    for who in (bob, anonymous):
        with pytest.raises(BucketNotFoundError):
            who.bucket_info(private)
        assert private not in {b.id for b in who.list_buckets("acme")}
    assert bob.bucket_info(bucket).id == bucket
    assert batch(server, private, [{"type": "deleteFile", "path": "x"}], "bob").status_code == 404
    refused = batch(server, bucket, [{"type": "deleteFile", "path": "x"}], "bob")
    assert refused.status_code == 403 and refused.headers["X-Error-Message"]
    assert httpx.get(f"{server.url}/api/buckets/{bucket}/xet-write-token", headers=auth("bob")).status_code == 403
    assert httpx.get(f"{server.url}/api/buckets/{bucket}/xet-read-token", headers=auth("bob")).status_code == 200
    # carol reads acme's private buckets (a member) but cannot write them (a reader).
    assert api_as("carol").bucket_info(private).id == private
    assert batch(server, private, [{"type": "deleteFile", "path": "x"}], "carol").status_code == 403

    # Bad lines fail one by one (reported in `failed`), nothing else changes.
    bobs_private = bob.create_repo(f"bob/private-{tag()}", private=True).repo_id
    bad = batch(server, bucket, [
        {"type": "addFile", "path": "../escape", "xetHash": "0" * 64},
        {"type": "addFile", "path": "ok/missing.bin", "xetHash": "ab" * 32},  # never uploaded here
        {"type": "copyFile", "path": "stolen.bin", "xetHash": "cd" * 32, "sourceRepoType": "bucket",
         "sourceRepoId": private},  # alice may read it, but it holds no such file
        {"type": "copyFile", "path": "x.bin", "xetHash": "cd" * 32, "sourceRepoType": "model",
         "sourceRepoId": bobs_private},  # alice may not read it
        {"type": "addFile", "path": "bad\x01name", "xetHash": "0" * 64},
        {"type": "addFile", "path": "far-future", "xetHash": "0" * 64, "mtime": 2**60},  # no ISO date to list
    ])
    assert bad.status_code == 422, bad.text
    assert [f["path"] for f in bad.json()["failed"]] == ["../escape", "ok/missing.bin", "stolen.bin", "x.bin",
                                                         "bad\x01name", "far-future"]
    mixed = batch(server, bucket, [{"type": "addFile", "path": "empty.txt", "xetHash": "0" * 64},
                                   {"type": "addFile", "path": "no.bin", "xetHash": "ef" * 32}])
    assert mixed.status_code == 200 and [f["path"] for f in mixed.json()["failed"]] == ["no.bin"]
    assert [f.path for f in api.list_bucket_tree(bucket, recursive=True)] == ["empty.txt"]
    for body, code in ((b"not json\n", 400), (b'{"type": "renameFile", "path": "a"}\n', 400),
                       (b'{"type": "deleteFile", "path": "a"}\n' * 1001, 400)):
        r = httpx.post(f"{server.url}/api/buckets/{bucket}/batch", content=body, headers=auth("alice"))
        assert r.status_code == code and r.headers["X-Error-Message"]
    assert [f.path for f in api.list_bucket_tree(bucket, recursive=True)] == ["empty.txt"]

    # Listings past a page (1,000 entries) follow the Link header, recursive or not.
    for start in (0, 600):
        lines = [{"type": "addFile", "path": f"many/f{i:04d}", "xetHash": "0" * 64} for i in range(start, start + 600)]
        assert batch(server, bucket, lines).json()["failed"] == []
    listed = [f.path for f in api.list_bucket_tree(bucket, "many", recursive=True)]
    assert listed == [f"many/f{i:04d}" for i in range(1200)]
    assert len(list(api.list_bucket_tree(bucket, "many", recursive=False))) == 1200
    assert [(type(e).__name__, e.path) for e in api.list_bucket_tree(bucket, recursive=False)] == [
        ("BucketFile", "empty.txt"), ("BucketFolder", "many")]
    api.batch_bucket_files(bucket, delete=[f"many/f{i:04d}" for i in range(1200)])  # two requests of 1,000 at most

    # Settings, move, delete.
    api.update_bucket_settings(bucket, private=True)
    with pytest.raises(BucketNotFoundError):
        bob.bucket_info(bucket)
    moved = f"acme/moved-{tag()}"
    api.move_bucket(bucket, moved)
    assert api.bucket_info(moved).total_files == 1
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(bucket)
    with pytest.raises(HfHubHTTPError):
        api_as("carol").delete_bucket(moved)  # a reader of acme
    api.delete_bucket(moved)
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(moved)
    api.delete_bucket(moved, missing_ok=True)


def test_gc_keeps_what_buckets_hold(tmp_path: Path) -> None:
    """gc with no grace period: a file a bucket holds stays; once deleted from it, it goes."""
    with seeded_hub("sqlite", tmp_path / "hub") as hub, hub.running() as live:
        env = client_env(live, tmp_path)
        work = tmp_path / "work"
        work.mkdir()
        bucket = "alice/kept"
        out = run_client("buckets_client.py", ["roundtrip", bucket, str(work)], env)
        report = json.loads(live.cli("gc", "--grace", "0").stdout.strip().splitlines()[-1])
        assert report["xet_files"] == 1  # a.txt, deleted from the bucket by the roundtrip
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        kept = api.list_bucket_tree(bucket, recursive=True)
        assert {f.path for f in kept} == {"empty", "models/w.bin", "copies/w.bin"}
        r = httpx.get(f"{live.url}/buckets/{bucket}/resolve/copies/w.bin", headers=auth("alice"))
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == out["weights_sha256"]
        api.batch_bucket_files(bucket, delete=["models/w.bin", "copies/w.bin"])
        report = json.loads(live.cli("gc", "--grace", "0").stdout.strip().splitlines()[-1])
        assert report["xet_files"] == 1 and report["xorbs"] >= 1


def test_sync_filesystem_datasets_and_cli(server: LiveServer, api: HfApi, xet_env: dict[str, str],
                                          tmp_path: Path) -> None:
    for scenario in ("sync", "fs", "datasets"):
        (tmp_path / scenario).mkdir()
    synced = run_client("buckets_client.py", ["sync", f"alice/sync-{tag()}", str(tmp_path / "sync")], xet_env)
    assert synced["first"] == 3 and synced["again"] == ["skip"] * 3  # mtimes and sizes round-trip
    assert synced["listed"] == ["run1/ckpt/a.bin", "run1/ckpt/c.bin", "run1/config.json"]  # b.bin deleted
    assert synced["down"] == synced["local"]

    bucket = f"alice/fs-{tag()}"
    fs = run_client("buckets_client.py", ["fs", bucket, str(tmp_path / "fs")], xet_env)
    assert fs["ls"] == [f"buckets/{bucket}/data"]
    assert fs["ls_data"] == [[f"buckets/{bucket}/data/one.txt", "file", 4000],
                             [f"buckets/{bucket}/data/two.txt", "file", 3]]
    assert fs["glob"] == [f"buckets/{bucket}/data/one.txt", f"buckets/{bucket}/data/two.txt"]
    assert fs["cat"] == "two" and fs["range"] == "one one " and fs["exists"] == [True, False] and fs["got"]
    assert fs["after_rm"] == [f"buckets/{bucket}/copy/one.txt"]

    bucket = f"alice/ds-{tag()}"  # push_to_hub creates it
    loaded = run_client("buckets_client.py", ["datasets", bucket, str(tmp_path / "datasets")], xet_env)
    assert loaded["rows"] == 100 and loaded["columns"] == ["label", "text"] and loaded["first"] == "row 0"
    assert loaded["files"] == ["toy/README.md", "toy/data/train-00000-of-00001.parquet"]

    # The hf CLI.
    def hf(*args: str) -> str:
        run = subprocess.run([str(BIN / "hf"), "buckets", *args], env=xet_env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, (args, run.stdout, run.stderr)
        return run.stdout

    bucket = f"alice/cli-{tag()}"
    hf("create", bucket, "--private")
    assert api.bucket_info(bucket).private is True
    (tmp_path / "cli.txt").write_text("from the cli")
    hf("cp", str(tmp_path / "cli.txt"), f"hf://buckets/{bucket}/docs/cli.txt")
    assert "docs/cli.txt" in hf("list", bucket, "-R")
    assert bucket in hf("info", bucket)
    hf("cp", f"hf://buckets/{bucket}/docs/cli.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from the cli"
    hf("rm", f"{bucket}/docs/cli.txt", "--yes")
    assert api.bucket_info(bucket).total_files == 0
    hf("settings", bucket, "--public")
    assert api.bucket_info(bucket).private is False
    hf("delete", bucket, "--yes")
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(bucket)


@pytest.mark.slow
def test_checkpoints_deduplicate_and_move_into_a_model_without_bytes(tmp_path: Path) -> None:
    """Ten consecutive 200 MB checkpoints, each changing 2% of the last, take under 1.3x the
    space of one; uploading the last one to a model repo afterwards sends no xorb."""
    with seeded_hub("sqlite", tmp_path / "hub") as hub, hub.running() as live:
        env = client_env(live, tmp_path)
        work = tmp_path / "work"
        work.mkdir()
        size = 200 * 1024 * 1024
        out = run_client("buckets_client.py", ["checkpoints", "alice/training", str(work), "10", "200"], env)
        assert len(set(out["sha256"])) == 10
        storage = json.loads(live.cli("storage").stdout)
        assert storage["xorb_bytes"] < 1.3 * size, storage["xorb_bytes"] / size
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        files = api.list_bucket_tree("alice/training", recursive=True)
        assert [(f.path, f.size) for f in files] == [("checkpoints/model.safetensors", size)]

        api.create_repo("alice/trained")
        xorbs_before = storage["xorbs"]
        log_before = len(live.log_path.read_text().splitlines())
        run_client("xet_client.py", ["upload", "alice/trained", out["last"], "model.safetensors"], env)
        sent = [line for line in live.log_path.read_text().splitlines()[log_before:] if "POST /xet/v1/xorbs/" in line]
        assert sent == []  # every chunk was found by deduplication: no bytes moved
        assert json.loads(live.cli("storage").stdout)["xorbs"] == xorbs_before
        model = [e for e in api.list_repo_tree("alice/trained") if e.path == "model.safetensors"]
        assert isinstance(model[0], RepoFile) and model[0].lfs is not None
        assert model[0].lfs.sha256 == out["sha256"][-1]
