"""An edge hub with an upstream (issue 14): two live servers on loopback, the upstream a plain
modelyard, the edge configured with ``MODELYARD_UPSTREAM_URL``. Repos exist only upstream; the
edge serves them with the upstream's commit ids, fetches each large file once, and keeps
serving what it holds when the upstream is gone."""

from __future__ import annotations

import concurrent.futures
import filecmp
import hashlib
import json
import os
import random
import re
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from tests.support.clients.run import run_client
from tests.support.git import Git, remote
from tests.support.server import TOKENS, LiveServer, seeded_hub
from tests.support.tamper_proxy import tamper_proxy

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


def landed(edge: LiveServer, repo: str, path: str) -> httpx.Response:
    """The edge's HEAD of a file once it has landed there (its Xet hash shown): landing follows
    the last byte a client is sent."""
    deadline = time.monotonic() + 60
    while "x-xet-hash" not in (head := httpx.head(f"{edge.url}/{repo}/resolve/main/{path}", timeout=30)).headers:
        assert time.monotonic() < deadline, f"{path} did not land"
        time.sleep(0.1)
    return head


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
    # marked as a mirror, in its info and on its page
    assert httpx.get(f"{edge.url}/api/models/{repo}", timeout=30).json()["mirror"] == {"upstream": upstream.url}
    assert "mirror" not in httpx.get(f"{upstream.url}/api/models/{repo}", timeout=30).json()
    assert f"mirror of {upstream.url}" in httpx.get(f"{edge.url}/{repo}", timeout=30).text
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


def client_env(endpoint: str, home: Path, token: str, xet: bool = True) -> dict[str, str]:
    """A client subprocess's environment: ``endpoint`` as HF_ENDPOINT, its own cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_TOKEN": token, "HF_HUB_DISABLE_TELEMETRY": "1",
                "DISABLE_SAFETENSORS_CONVERSION": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "TOKENIZERS_PARALLELISM": "false"})
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """An upstream and its edge of their own (a test that stops the upstream)."""
    with seeded_hub("sqlite", tmp_path / "up") as up, seeded_hub("sqlite", tmp_path / "edge") as edge:
        up.seed(UPSTREAM_ORG)
        edge.extra_env.update(edge_env(up))
        with up.running(), edge.running():
            yield up, edge


@pytest.mark.slow
def test_minilm_through_the_edge_then_offline(pair: tuple[LiveServer, LiveServer], tmp_path: Path) -> None:
    """Done-when 1 and 3: the real MiniLM, pushed upstream through Xet, loads through the edge with
    byte-identical files and the upstream's commit id; with the upstream stopped, the cached model
    still loads through the edge (a new client cache too), and an uncached repo fails fast."""
    upstream, edge = pair
    repo = "upstream-org/all-MiniLM-L6-v2"
    pushed = run_client("minilm.py", ["push", repo], client_env(upstream.url, tmp_path / "pusher", TOKENS["alice"]))
    local_dir = Path(pushed["local_dir"])
    other = up_api(upstream).create_repo("upstream-org/never-asked").repo_id

    snap = Path(run_client("minilm.py", ["snapshot", repo],
                           client_env(edge.url, tmp_path / "snap", TOKENS["bob"]))["path"])
    assert snap.name == pushed["commit"]  # the upstream's commit id
    local_files = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
    assert sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()) == local_files
    for rel in local_files:
        assert filecmp.cmp(local_dir / rel, snap / rel, shallow=False), rel

    # landed Xet-native: the edge advertises the upstream's Xet hash for the weights
    up_head = httpx.head(f"{upstream.url}/{repo}/resolve/main/model.safetensors", timeout=30)
    edge_head = landed(edge, repo, "model.safetensors")
    assert edge_head.headers["x-xet-hash"] == up_head.headers["x-xet-hash"]
    assert edge_head.headers["x-repo-commit"] == pushed["commit"]

    home = tmp_path / "loader"
    cold = run_client("minilm.py", ["cold", repo], client_env(edge.url, home, TOKENS["bob"]))
    for remote_row, local_row in zip(cold["remote"], cold["local"], strict=True):
        assert max(abs(a - b) for a, b in zip(remote_row, local_row, strict=True)) < 1e-6
    assert all(u.startswith(edge.url) for _m, u in cold["requests"])

    upstream.stop()
    warm = run_client("minilm.py", ["warm", repo], client_env(edge.url, home, TOKENS["bob"]))
    assert warm["remote"] == cold["remote"]
    fresh = run_client("minilm.py", ["cold", repo], client_env(edge.url, tmp_path / "fresh", TOKENS["bob"]))
    assert fresh["remote"] == cold["remote"]

    started = time.monotonic()
    response = httpx.get(f"{edge.url}/api/models/{other}", timeout=30)
    assert response.status_code == 503 and response.headers["x-error-code"] == "UpstreamUnavailable"
    assert time.monotonic() - started < 5
    with pytest.raises(Exception) as raised:
        hf_hub_download(other, "README.md", endpoint=edge.url, token=TOKENS["bob"], cache_dir=tmp_path / "c",
                        etag_timeout=5)
    assert not isinstance(raised.value, RepositoryNotFoundError)
    assert time.monotonic() - started < 30


def test_mirrors_are_read_only(upstream: LiveServer, edge: LiveServer) -> None:
    repo, _commits = make_upstream_repo(upstream, f"ro-{edge.backend}", b"x" * 2048)
    api = HfApi(endpoint=edge.url, token=TOKENS["alice"])
    assert api.model_info(repo).sha is not None
    for attempt in (
        lambda: api.create_commit(repo, [CommitOperationAdd("x.txt", b"x")], commit_message="x"),
        lambda: api.create_branch(repo, branch="mine"),
        lambda: api.create_tag(repo, tag="mine"),
        lambda: api.create_discussion(repo, title="hello"),
    ):
        with pytest.raises(Exception) as raised:
            attempt()
        assert getattr(raised.value, "response", None) is not None
        assert raised.value.response.status_code == 403, raised.value  # type: ignore[attr-defined]
        assert "read-only" in raised.value.response.headers["x-error-message"]  # type: ignore[attr-defined]
    assert [b.name for b in api.list_repo_refs(repo).branches] == [b.name for b in
                                                                   up_api(upstream).list_repo_refs(repo).branches]


def test_unknown_and_disallowed_repos_are_not_found(upstream: LiveServer, edge: LiveServer) -> None:
    response = httpx.get(f"{edge.url}/api/models/upstream-org/no-such-repo", timeout=30)
    assert response.status_code == 404 and response.headers["x-error-code"] == "RepoNotFound"
    private = up_api(upstream).create_repo(f"upstream-org/p-{edge.backend}", private=True).repo_id
    # the upstream token (alice's) reads it: mirrored, and private here (owned by the mirror's org)
    assert httpx.get(f"{edge.url}/api/models/{private}", timeout=30).status_code == 404
    assert HfApi(endpoint=edge.url, token=TOKENS["bob"]).repo_exists(private) is False


def edge_cli(edge: LiveServer, *args: str) -> str:
    done = edge.cli(*args, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_branches_follow_the_upstream_and_old_tips_stay_resolvable(upstream: LiveServer, edge: LiveServer) -> None:
    """After the freshness window a moved branch shows on the edge; a tip the upstream dropped
    (the branch recreated elsewhere) still resolves by id, even after gc."""
    repo, commits = make_upstream_repo(upstream, f"fresh-{edge.backend}", b"w" * 4096)
    up, api = up_api(upstream), HfApi(endpoint=edge.url, token=TOKENS["bob"])
    old_dev = {b.name: b.target_commit for b in api.list_repo_refs(repo).branches}["dev"]
    up.delete_branch(repo, branch="dev")
    up.create_branch(repo, branch="dev", revision=commits[-1])
    head = up.create_commit(repo, [CommitOperationAdd("later.txt", b"later")], commit_message="later").oid
    time.sleep(1.2)  # the edge's window (MODELYARD_UPSTREAM_TTL=1)
    assert api.model_info(repo).sha == head
    assert {b.name: b.target_commit for b in api.list_repo_refs(repo).branches} == {"main": head, "dev": commits[-1]}
    edge_cli(edge, "gc", "--grace", "0")
    assert api.model_info(repo, revision=old_dev).sha == old_dev  # pinned: not forgotten by gc
    assert api.list_repo_commits(repo, revision=old_dev)[0].commit_id == old_dev


def test_mirror_command_copies_revisions_and_syncs(upstream: LiveServer, tmp_path: Path) -> None:
    """Done-when 4: ``modelyard mirror`` of a repo with branches, tags and several commits copies the
    files of the revisions asked for (and only those); later upstream commits come by the
    scheduled sync, with the files of the tracked revisions, without any client asking."""
    name = f"cli-{uuid.uuid4().hex[:6]}"
    first, second, third = os.urandom(300_000), os.urandom(200_000), os.urandom(100_000)
    repo, _commits = make_upstream_repo(upstream, name, first)
    up = up_api(upstream)
    up.create_commit(repo, [CommitOperationAdd("second.bin", second)], commit_message="second")
    with seeded_hub("sqlite", tmp_path / "edge") as edge:
        edge.extra_env.update(edge_env(upstream, MODELYARD_UPSTREAM_TTL="3600",
                                       MODELYARD_UPSTREAM_SYNC_INTERVAL="1"))
        out = edge_cli(edge, "mirror", repo, "--revision", "v1")
        assert "1 file(s) fetched (300000 bytes)" in out
        assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/second.bin") == 0
        out = edge_cli(edge, "mirror", repo, "--revision", "main")  # resumable: weights.bin is held
        assert "1 file(s) fetched (200000 bytes)" in out
        assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/weights.bin") == 1
        with edge.running():
            api = HfApi(endpoint=edge.url, token=TOKENS["bob"])
            assert {t.name for t in api.list_repo_refs(repo).tags} == {"v1"}
            head = up.create_commit(repo, [CommitOperationAdd("third.bin", third)], commit_message="third").oid
            deadline = time.monotonic() + 30
            while api.model_info(repo).sha != head:  # the TTL is an hour: only the sync can bring it
                assert time.monotonic() < deadline, "the scheduled sync did not follow the upstream"
                time.sleep(0.2)
            while upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/third.bin") == 0:
                assert time.monotonic() < deadline, "the scheduled sync did not fetch the tracked revision's file"
                time.sleep(0.2)
            upstream_log = upstream.log_path.read_text()
            got = httpx.get(f"{edge.url}/{repo}/resolve/main/third.bin", timeout=30)
            assert got.content == third
            assert upstream.log_path.read_text().count("third.bin") == upstream_log.count("third.bin")


def test_mirror_command_errors(upstream: LiveServer, edge: LiveServer) -> None:
    done = edge.cli("mirror", "upstream-org/does-not-exist", check=False)
    assert done.returncode == 1 and "not on the upstream" in done.stderr
    repo, _commits = make_upstream_repo(upstream, f"bad-rev-{edge.backend}", b"b" * 1000)
    done = edge.cli("mirror", repo, "--revision", "no-such-branch", check=False)
    assert done.returncode == 1 and "no revision 'no-such-branch'" in done.stderr
    local = HfApi(endpoint=edge.url, token=TOKENS["alice"]).create_repo(f"mine-{edge.backend}").repo_id
    done = edge.cli("mirror", local, check=False)
    assert done.returncode == 1 and "own" in done.stderr


@pytest.mark.slow
def test_twenty_clients_one_upstream_transfer_of_a_gigabyte(upstream: LiveServer, tmp_path: Path) -> None:
    """Done-when 2: twenty clients at once ask the edge for the same uncached 1 GiB file (two of
    them for a range): the upstream sends it once, every client gets verified bytes."""
    size = 1024 * 1024 * 1024
    rng = random.Random(14)
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    window = (650 * 1024 * 1024, 650 * 1024 * 1024 + 5_000_000)  # [start, end) of the range readers (in one piece)
    window_bytes = b""
    with open(source, "wb") as f:
        for offset in range(0, size, 64 * 1024 * 1024):
            piece = rng.randbytes(64 * 1024 * 1024)
            digest.update(piece)
            if offset <= window[0] < offset + len(piece):
                window_bytes = piece[window[0] - offset : window[1] - offset]
            f.write(piece)
    up = up_api(upstream)
    repo = up.create_repo(f"upstream-org/big-{uuid.uuid4().hex[:6]}").repo_id
    up.upload_file(path_or_fileobj=str(source), path_in_repo="big.bin", repo_id=repo)
    source.unlink()
    with seeded_hub("sqlite", tmp_path / "edge") as edge:
        edge.extra_env.update(edge_env(upstream))
        with edge.running():
            url = f"{edge.url}/{repo}/resolve/main/big.bin"
            assert httpx.head(url, timeout=30).status_code == 200  # mirrored; no bytes fetched yet
            assert upstream_requests(upstream, rf"GET /{repo}/resolve/") == 0

            def fetch(i: int) -> tuple[int, str, int]:
                headers = {"Range": f"bytes={window[0]}-{window[1] - 1}"} if i in (3, 11) else {}
                h = hashlib.sha256()
                n = 0
                with httpx.stream("GET", url, headers=headers, timeout=120) as response:
                    for piece in response.iter_bytes(8 * 1024 * 1024):
                        h.update(piece)
                        n += len(piece)
                return response.status_code, h.hexdigest(), n

            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                results = list(pool.map(fetch, range(20)))
            ranged = hashlib.sha256(window_bytes).hexdigest()
            for i, (status, got, n) in enumerate(results):
                if i in (3, 11):
                    assert (status, got, n) == (206, ranged, window[1] - window[0])
                else:
                    assert (status, got, n) == (200, digest.hexdigest(), size)
            assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/big.bin") == 1
            # landed: later readers are served from the edge's storage
            again = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
            assert again.status_code == 206 and len(again.content) == 100
            assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/big.bin") == 1


def test_a_bad_upstream_is_refused_and_nothing_wrong_is_kept(upstream: LiveServer, tmp_path: Path) -> None:
    """An upstream that alters, cuts or stalls a file, or fails: the edge never completes a
    download with wrong bytes, keeps nothing of it, answers within its timeouts, and serves the
    right bytes once the upstream behaves; a client resuming a failed download is sent the whole
    file again (a 200), never the rest after a possibly wrong start."""
    data = os.urandom(400_000)
    repo, _commits = make_upstream_repo(upstream, f"bad-{uuid.uuid4().hex[:6]}", data)
    with tamper_proxy(upstream.url) as proxy, seeded_hub("sqlite", tmp_path / "edge") as edge:
        edge.extra_env.update(edge_env(upstream, MODELYARD_UPSTREAM_URL=proxy.url, MODELYARD_UPSTREAM_TIMEOUT="2"))
        with edge.running():
            url = f"{edge.url}/{repo}/resolve/main/weights.bin"
            assert httpx.head(url, timeout=30).status_code == 200  # mirrored through the proxy
            for mode in ("flip", "cut", "hang"):
                proxy.mode = mode
                started = time.monotonic()
                try:
                    response = httpx.get(url, timeout=30)
                except httpx.HTTPError:
                    pass  # the body was cut short: the client knows it did not get the file
                else:
                    assert response.status_code == 503, (mode, response.status_code)
                    assert response.headers["x-error-code"] == "UpstreamUnavailable"
                assert time.monotonic() - started < 15, mode
            proxy.mode = "flip"
            with httpx.stream("GET", url, headers={"Range": "bytes=1000-"}, timeout=30) as resumed:
                assert resumed.status_code == 200  # the whole file (cut again), never the rest of a suspect start
                with pytest.raises(httpx.RemoteProtocolError):
                    resumed.read()
            proxy.mode = "error"
            response = httpx.get(f"{edge.url}/api/models/upstream-org/not-mirrored-yet", timeout=30)
            assert response.status_code == 503
            proxy.mode = "pass"
            good = httpx.get(url, headers={"Range": "bytes=1000-"}, timeout=30)
            assert good.status_code == 200 and good.content == data  # the whole file, verified
            assert httpx.get(url, timeout=30).content == data


def test_git_clone_and_lfs_through_the_edge(upstream: LiveServer, edge: LiveServer, tmp_path: Path) -> None:
    """git and git-lfs through the edge: the clone has the upstream's history (every commit id),
    and git lfs fetches the large file, which the edge fetches from the upstream on the way."""
    data = os.urandom(250_000)
    repo, _commits = make_upstream_repo(upstream, f"git-{edge.backend}", data)
    git = Git(tmp_path / "home")
    up_clone, edge_clone = tmp_path / "up", tmp_path / "edge"
    git.run("clone", remote(upstream, repo), str(up_clone), GIT_LFS_SKIP_SMUDGE="1")
    git.run("clone", remote(edge, repo, "bob"), str(edge_clone))
    assert git.out("rev-list", "--all", cwd=edge_clone) == git.out("rev-list", "--all", cwd=up_clone)
    assert (edge_clone / "weights.bin").read_bytes() == data
    assert sorted(git.out("tag", cwd=edge_clone).split()) == ["v1"]


def test_a_lazy_mirror_is_indexed_and_consistent(upstream: LiveServer, edge: LiveServer) -> None:
    """The catalog entry of a mirror does not wait for its files (the safetensors header is read
    in ranges from the upstream), and fsck counts files not fetched yet as no damage."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [16, 16], "data_offsets": [0, 1024]}}).encode()
    weights = struct.pack("<Q", len(header)) + header + os.urandom(1024)
    up = up_api(upstream)
    repo = up.create_repo(f"upstream-org/idx-{edge.backend}").repo_id
    up.create_commit(repo, [CommitOperationAdd("model.safetensors", weights),
                            CommitOperationAdd("config.json", b'{"model_type": "bert"}')], commit_message="w")
    api = HfApi(endpoint=edge.url, token=TOKENS["bob"])
    assert api.model_info(repo).sha == up.model_info(repo).sha
    edge.settle()
    info = api.model_info(repo, expand=["safetensors"])
    assert info.safetensors is not None and info.safetensors.total == 256
    assert upstream_requests(upstream, rf"GET /{repo}/resolve/\S+/model.safetensors") >= 1  # ranges only
    assert httpx.head(f"{edge.url}/{repo}/resolve/main/model.safetensors", timeout=30).status_code == 200
    out = edge.cli("fsck", check=False)
    assert out.returncode == 0, out.stdout + out.stderr

    def scan_status() -> str:
        tree = httpx.get(f"{edge.url}/api/models/{repo}/tree/main?expand=true", timeout=30).json()
        return str({e["path"]: e for e in tree}["model.safetensors"]["securityFileStatus"]["status"])

    assert scan_status() == "unscanned"  # not an error: its bytes are not here yet, so it was not scanned
    assert httpx.get(f"{edge.url}/{repo}/resolve/main/model.safetensors", timeout=30).content == weights
    deadline = time.monotonic() + 60
    while scan_status() != "safe":  # scanned once it landed, as an upload is
        assert time.monotonic() < deadline, scan_status()
        time.sleep(0.2)


def test_a_mirror_carried_across_an_air_gap(upstream: LiveServer, tmp_path: Path) -> None:
    """Done-when 5, end to end: an edge mirrors a repo (every revision's files), exports it as a
    bundle, and a third hub that never saw any network imports it: the upstream's commit ids,
    refs and bytes; a tampered bundle is refused there with nothing imported."""
    data = os.urandom(300_000)
    repo, commits = make_upstream_repo(upstream, f"gap-{uuid.uuid4().hex[:6]}", data)
    bundle = tmp_path / "carried.bundle"
    with seeded_hub("sqlite", tmp_path / "edge") as edge:
        edge.extra_env.update(edge_env(upstream))
        edge_cli(edge, "mirror", repo, "--all-revisions")
        edge_cli(edge, "bundle", "export", repo, "-o", str(bundle))
    raw = bytearray(bundle.read_bytes())
    at = raw.find(data[1000:1064])  # inside the LFS object's member
    assert at > 0
    raw[at] ^= 0xFF
    tampered = tmp_path / "tampered.bundle"
    tampered.write_bytes(bytes(raw))
    with seeded_hub("postgresql", tmp_path / "island") as island, island.running():
        api, up = HfApi(endpoint=island.url, token=TOKENS["alice"]), up_api(upstream)
        refused = island.cli("bundle", "import", str(tampered), check=False)
        assert refused.returncode == 1 and "error:" in refused.stderr
        assert not api.repo_exists(repo)
        edge_cli(island, "bundle", "import", str(bundle))
        assert [c.commit_id for c in api.list_repo_commits(repo)] == commits
        assert {(r.name, r.target_commit) for r in api.list_repo_refs(repo).branches} == \
            {(r.name, r.target_commit) for r in up.list_repo_refs(repo).branches}
        assert {(r.name, r.target_commit) for r in api.list_repo_refs(repo).tags} == \
            {(r.name, r.target_commit) for r in up.list_repo_refs(repo).tags}
        assert httpx.get(f"{island.url}/{repo}/resolve/v1/weights.bin", timeout=30).content == data


def test_private_upstream_repos_never_land_in_a_local_users_namespace(upstream: LiveServer, edge: LiveServer) -> None:
    """``alice`` upstream and ``alice`` at the edge need not be one person: a private upstream repo
    of that namespace, which the edge's token (upstream alice's) may read, is not mirrored into
    the local user's namespace (404, and said in the log); a public one is (read-only)."""
    up_alice = up_api(upstream)
    secret = up_alice.create_repo(f"secret-{edge.backend}", private=True).repo_id
    public = up_alice.create_repo(f"open-{edge.backend}").repo_id
    edge_alice = HfApi(endpoint=edge.url, token=TOKENS["alice"])
    assert not edge_alice.repo_exists(secret)
    assert f"not mirroring private or gated model {secret} into the local user alice" in edge.log_path.read_text()
    assert edge_alice.model_info(public).sha == up_alice.model_info(public).sha


def test_gated_upstream_repos_need_a_token_with_access(upstream: LiveServer, edge: LiveServer) -> None:
    """A gated upstream repo whose files the edge's token may not read is not mirrored (404, nothing
    created); one it may read is mirrored private."""
    carol = HfApi(endpoint=upstream.url, token=TOKENS["carol"])
    closed = carol.create_repo(f"gated-{edge.backend}").repo_id
    carol.upload_file(path_or_fileobj=b"# gated\n", path_in_repo="README.md", repo_id=closed)
    carol.update_repo_settings(closed, gated="manual")
    bob = HfApi(endpoint=edge.url, token=TOKENS["bob"])
    assert not bob.repo_exists(closed)
    assert httpx.get(f"{edge.url}/api/models/{closed}", timeout=30).status_code == 404
    readable = up_api(upstream).create_repo(f"upstream-org/gated-{edge.backend}").repo_id
    up_api(upstream).update_repo_settings(readable, gated="auto")
    response = httpx.get(f"{edge.url}/api/models/{readable}", timeout=30)
    assert response.status_code == 404  # mirrored private: the mirror org's members only
    admin = HfApi(endpoint=edge.url, token=(edge.data_dir / "admin-token").read_text().strip())
    info = admin.model_info(readable)  # a site admin sees it
    assert info.private and info.sha == up_api(upstream).model_info(readable).sha
