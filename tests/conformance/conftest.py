"""Fixtures shared by the Xet conformance modules: a fresh repo of alice's and a CAS write client for it."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from tests.support.server import TOKENS, LiveServer
from tests.support.xet import Cas, cas_token


@pytest.fixture
def xet_env(hf_env: dict[str, str]) -> dict[str, str]:
    """A default install's environment: Xet is on (the in-process client uploads through LFS)."""
    env = dict(hf_env)
    del env["HF_HUB_DISABLE_XET"]
    return env


@pytest.fixture
def repo(api: HfApi, repo_name: str) -> str:
    return api.create_repo(repo_name).repo_id


@pytest.fixture
def cas(server: LiveServer, repo: str) -> Cas:
    return Cas(server, cas_token(server, repo, "write", TOKENS["alice"]))
