"""Schemathesis against a live server: every operation of ``/openapi.json`` with generated input.

The server runs with its defaults (SQLite), seeded, with the repo, discussion and bucket the
document's examples name (``acme/bert-tiny``, discussion 1); Schemathesis (its examples,
coverage, fuzzing and stateful phases, a bounded number of cases per operation, a fixed seed)
checks that no answer is a 500 and that every answer
is one the document describes (status, content type, body schema), as alice (a write token).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.support.server import BIN, SEED, TOKENS, LiveServer

CASES_PER_OPERATION = 25
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("schemathesis"), None, "sqlite")
    live.cli("db", "upgrade")
    live.seed(SEED)
    with live.running():
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        api.create_repo("acme/bert-tiny")
        api.upload_file(path_or_fileobj=b'{"model_type": "bert"}', path_in_repo="config.json",
                        repo_id="acme/bert-tiny")
        api.create_discussion("acme/bert-tiny", title="the first one")  # the examples' discussion 1
        httpx.post(f"{live.url}/api/buckets/acme/bert-tiny", json={}, timeout=30,
                   headers={"Authorization": f"Bearer {TOKENS['alice']}"}).raise_for_status()
        yield live


def test_the_document_is_served(target: LiveServer) -> None:
    doc = httpx.get(f"{target.url}/openapi.json", timeout=10).json()
    assert doc["openapi"] == "3.1.0" and "/api/{types}/{namespace}/{repo}/tree/{revision}" in doc["paths"]
    for path in ("/{namespace}/{repo}.git/info/lfs/objects/batch", "/xet/v1/shards",
                 "/{namespace}/{repo}.git/info/refs",
                 "/api/{types}/{namespace}/{repo}/discussions", "/api/collections",
                 "/api/organizations/{org}/resource-groups", "/api/buckets/{namespace}/{repo}/tree"):
        assert path in doc["paths"], path


@pytest.mark.timeout(600)
def test_no_server_errors_and_answers_as_documented(target: LiveServer, tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(BIN))
    assert schemathesis is not None
    run = subprocess.run(
        [schemathesis, "run", f"{target.url}/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--max-examples", str(CASES_PER_OPERATION), "--seed", "1", "--request-timeout", "30",
         "--header", f"Authorization: Bearer {TOKENS['alice']}"],
        capture_output=True, text=True, timeout=540, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks"},
    )
    assert run.returncode == 0, run.stdout[-6000:]
    generated = [line for line in run.stdout.splitlines() if "generated" in line and "passed" in line]
    assert generated and int(generated[-1].split()[0]) > 200, run.stdout[-3000:]  # it really ran
    assert " 500 " not in target.log_path.read_text()
