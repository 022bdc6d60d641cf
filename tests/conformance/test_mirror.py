"""An edge hub with an upstream (issue 14): two live servers on loopback, the upstream a plain
modelyard, the edge configured with ``MODELYARD_UPSTREAM_URL``. Repos exist only upstream; the
edge serves them with the upstream's commit ids, fetches each large file once, and keeps
serving what it holds when the upstream is gone."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download

from tests.support.server import TOKENS, LiveServer, seeded_hub

UPSTREAM_ORG = {"orgs": [{"name": "upstream-org", "fullname": "Only upstream", "members": {"alice": "admin"}}]}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub("sqlite", tmp_path_factory.mktemp("upstream")) as hub:
        hub.seed(UPSTREAM_ORG)
        with hub.running() as live:
            yield live


def edge_env(upstream: LiveServer, **more: str) -> dict[str, str]:
    return {
        "MODELYARD_UPSTREAM_URL": upstream.url,
        "MODELYARD_UPSTREAM_TOKEN": TOKENS["alice"],
        "MODELYARD_UPSTREAM_TTL": "1",
        "MODELYARD_UPSTREAM_CONNECT_TIMEOUT": "1",
        "MODELYARD_UPSTREAM_RETRY_AFTER": "0",
        **more,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def edge(request: pytest.FixtureRequest, upstream: LiveServer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"edge-{request.param}")) as hub:
        hub.extra_env.update(edge_env(upstream))
        with hub.running() as live:
            yield live


def up_api(upstream: LiveServer) -> HfApi:
    return HfApi(endpoint=upstream.url, token=TOKENS["alice"])


def make_upstream_repo(upstream: LiveServer, name: str, big: bytes) -> tuple[str, list[str]]:
    """A repo upstream with three commits on main, a branch and a tag; its LFS file ``big``."""
    api = up_api(upstream)
    repo = api.create_repo(f"upstream-org/{name}").repo_id
    api.create_commit(repo, [CommitOperationAdd("config.json", b'{"model_type": "bert"}'),
                             CommitOperationAdd("weights.bin", big)], commit_message="weights")
    api.create_branch(repo, branch="dev")
    api.create_commit(repo, [CommitOperationAdd("README.md", b"# hello\n")], commit_message="card", revision="dev")
    api.create_tag(repo, tag="v1")
    api.create_commit(repo, [CommitOperationAdd("notes.txt", b"more")], commit_message="notes")
    return repo, [c.commit_id for c in api.list_repo_commits(repo)]


def upstream_requests(upstream: LiveServer, pattern: str) -> int:
    """How many requests the upstream's access log shows whose line matches ``pattern``."""
    return sum(1 for line in upstream.log_path.read_text(errors="replace").splitlines() if re.search(pattern, line))


def test_edge_serves_an_upstream_repo_with_its_commit_ids(
    upstream: LiveServer, edge: LiveServer, tmp_path: Path
) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)
    repo, commits = make_upstream_repo(upstream, f"m-{edge.backend}", big)
    up, api = up_api(upstream), HfApi(endpoint=edge.url, token=TOKENS["bob"])
    info = api.model_info(repo)
    assert info.sha == up.model_info(repo).sha == commits[0]
    assert [c.commit_id for c in api.list_repo_commits(repo)] == commits
    refs, up_refs = api.list_repo_refs(repo), up.list_repo_refs(repo)
    assert {(b.name, b.target_commit) for b in refs.branches} == {(b.name, b.target_commit) for b in up_refs.branches}
    assert {(t.name, t.target_commit) for t in refs.tags} == {(t.name, t.target_commit) for t in up_refs.tags}
    tree = sorted((e.path, e.blob_id) for e in api.list_repo_tree(repo, recursive=True))
    assert tree == sorted((e.path, e.blob_id) for e in up.list_repo_tree(repo, recursive=True))
    path = hf_hub_download(repo, "weights.bin", endpoint=edge.url, token=TOKENS["bob"], cache_dir=tmp_path / "c1")
    assert Path(path).read_bytes() == big
    snap = snapshot_download(repo, revision="v1", endpoint=edge.url, token=TOKENS["bob"], cache_dir=tmp_path / "c2")
    assert sorted(p.name for p in Path(snap).iterdir()) == [".gitattributes", "config.json", "weights.bin"]
    assert Path(snap).name == up.list_repo_refs(repo).tags[0].target_commit
    # landed: the second download is served from the edge's own storage, not the upstream
    before = upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/weights.bin")
    again = httpx.get(f"{edge.url}/{repo}/resolve/main/weights.bin", timeout=60)
    assert again.status_code == 200 and again.content == big
    assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/weights.bin") == before
