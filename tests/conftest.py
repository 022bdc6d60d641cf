"""Fixtures: a live modelyard server per database backend, seeded with users and orgs."""

from __future__ import annotations

import os
import tempfile

# huggingface_hub reads these at import time. The in-process client uploads through LFS (the
# Xet tests run the default client in subprocesses); the tests never touch the user's cache or token.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modelyard-hf-home-")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_ENDPOINT", None)
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.support.s3 import AWS_ENV, AWS_UNSET, MotoServer, moto_server
from tests.support.server import TOKENS, LiveServer, seeded_hub

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One seeded server per backend for the whole session; tests use unique repo names."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"hub-{request.param}")) as hub, hub.running() as live:
        yield live


@pytest.fixture
def endpoint(server: LiveServer) -> str:
    return server.url


@pytest.fixture
def api(server: LiveServer) -> HfApi:
    """HfApi as alice (write token; admin of org acme, writer in org vault)."""
    return HfApi(endpoint=server.url, token=TOKENS["alice"])


@pytest.fixture
def api_as(server: LiveServer) -> Callable[[str | None], HfApi]:
    def make(user: str | None) -> HfApi:
        return HfApi(endpoint=server.url, token=TOKENS[user] if user else False)

    return make


@pytest.fixture
def tokens() -> dict[str, str]:
    return TOKENS


@pytest.fixture
def repo_name() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hf_env(tmp_path: Path, server: LiveServer) -> dict[str, str]:
    """Environment for a client subprocess: our endpoint, a private cache, no Xet uploads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_TOKEN": TOKENS["alice"],
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DISABLE_SAFETENSORS_CONVERSION": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_XET": "1",
        "TOKENIZERS_PARALLELISM": "false",
    })
    return env


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto server for the session, with the process's AWS credentials pointed at it.

    Tests stay apart by using a fresh bucket each.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in AWS_UNSET:
            mp.delenv(name, raising=False)
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        with moto_server() as server:
            yield server
