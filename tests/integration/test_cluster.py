"""Three stateless servers behind nginx (round robin) on one PostgreSQL database and one S3 bucket:
the real clients work through the balancer, and every multi-request flow is shown to have
crossed servers (the balancer's log names the server of each request)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.file_download import http_get

from tests.support.clients.run import run_client
from tests.support.cluster import Cluster, cluster
from tests.support.s3 import MotoServer
from tests.support.s3_gateway import s3_gateway
from tests.support.server import TOKENS, LiveServer, metric

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def lb(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with s3_gateway(moto.url) as gateway, cluster(tmp_path_factory.mktemp("cluster"), moto, gateway) as c:
        yield c


def client_env(lb: Cluster, home: Path, xet: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": lb.url, "HF_HOME": str(home), "HF_TOKEN": TOKENS["alice"],
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_UPDATE_DOWNLOAD_COUNTS": "0", "DISABLE_SAFETENSORS_CONVERSION": "1",
                "TOKENIZERS_PARALLELISM": "false"})
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def crossed(lb: Cluster, mark: int, *needles: str) -> list[tuple[str, int, str, str]]:
    """The flow's requests since ``mark``: each needle's requests were served, and the flow as a
    whole went to every server, consecutive requests on different servers."""
    served = lb.served_since(mark)
    for needle in needles:
        assert any(needle in uri for _s, _st, _m, uri in served), (needle, served)
    servers = [s for s, _st, _m, _u in served]
    assert set(servers) == {lb.upstream(s) for s in lb.servers}, servers
    assert any(a != b for a, b in zip(servers, servers[1:], strict=False))
    return served


@pytest.mark.parametrize("xet", [False, True], ids=["lfs", "xet"])
def test_minilm_round_trip_through_the_balancer(lb: Cluster, xet: bool, tmp_path: Path) -> None:
    repo_id = f"alice/minilm-{'xet' if xet else 'lfs'}"
    mark = lb.mark()
    run_client("minilm.py", ["push", repo_id], client_env(lb, tmp_path / "push", xet))
    upload = "/xet/v1/xorbs/" if xet else "/_lfs/staged/"  # LFS: the bytes to the store, verified here
    crossed(lb, mark, "/preupload/", upload, "/commit/main")
    mark = lb.mark()
    loaded = run_client("minilm.py", ["cold", repo_id], client_env(lb, tmp_path / "pull", xet))
    crossed(lb, mark, "/config.json", "/model.safetensors")
    assert loaded["auto_model_class"] == "BertModel"
    for got, want in zip(loaded["remote"], loaded["local"], strict=True):
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5


def test_search_commits_and_branches_across_servers(lb: Cluster) -> None:
    api = HfApi(endpoint=lb.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/across", exist_ok=True).repo_id
    mark = lb.mark()
    for i in range(4):  # each commit's parent was read from another server
        api.create_commit(repo_id, [CommitOperationAdd(f"f{i}.txt", b"%d" % i)], commit_message=f"c{i}")
    api.create_branch(repo_id, branch="dev")
    api.create_commit(repo_id, [CommitOperationAdd("dev.txt", b"dev")], commit_message="on dev", revision="dev")
    api.create_tag(repo_id, tag="v1", revision="dev")
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    assert len(api.list_repo_commits(repo_id)) == 5  # the initial commit and four
    assert "dev.txt" in api.list_repo_files(repo_id, revision="v1")
    crossed(lb, mark, "/commit/main", "/branch/dev", "/tag/dev", "/refs")
    for s in lb.servers:
        s.settle()
    # every server finds it in the shared catalog
    for _ in lb.servers:
        assert [m.id for m in api.list_models(search="alice/across")] == [repo_id]
    pages = list(api.list_models(author="alice", limit=1000))  # cursor pages from different servers
    assert repo_id in [m.id for m in pages]


def test_concurrent_commits_through_different_servers_one_wins_per_parent(lb: Cluster) -> None:
    api = HfApi(endpoint=lb.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/race", exist_ok=True).repo_id
    parent = api.repo_info(repo_id).sha
    assert parent is not None
    outcomes: list[str | int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(9)

    def commit(i: int) -> None:
        barrier.wait()
        try:
            info = api.create_commit(repo_id, [CommitOperationAdd(f"r{i}.txt", b"%d" % i)],
                                     commit_message=f"r{i}", parent_commit=parent)
            result: str | int = info.oid
        except HfHubHTTPError as exc:
            assert exc.response is not None
            result = exc.response.status_code
        with lock:
            outcomes.append(result)

    mark = lb.mark()
    threads = [threading.Thread(target=commit, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1 and sorted(o for o in outcomes if isinstance(o, int)) == [412] * 8
    commits = {s for s, _st, m, u in lb.served_since(mark) if m == "POST" and "/commit/main" in u}
    assert len(commits) >= 2  # the racing commits went to different servers
    head = api.repo_info(repo_id).sha
    assert head == winners[0]
    assert [c.commit_id for c in api.list_repo_commits(repo_id)][:2] == [head, parent]


def test_a_large_lfs_file_up_and_down_bytes_via_the_store(lb: Cluster, tmp_path: Path) -> None:
    """1 GiB through the balancer: the upload crosses servers; the download's bytes come from
    the store, not from any server."""
    api = HfApi(endpoint=lb.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/large", exist_ok=True).repo_id
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as f:
        for _ in range(1024):
            block = os.urandom(MIB)
            digest.update(block)
            f.write(block)
    mark = lb.mark()
    api.upload_file(path_or_fileobj=str(source), path_in_repo="big.bin", repo_id=repo_id)
    crossed(lb, mark, "/preupload/", "/info/lfs/objects/batch", "/_lfs/", "/commit/main")
    out_before = sum(metric(s.url, "modelyard_http_response_bytes_total") for s in lb.servers)
    path = hf_hub_download(repo_id, "big.bin", endpoint=lb.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
    got = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MIB):
            got.update(block)
    assert got.hexdigest() == digest.hexdigest()
    sent = sum(metric(s.url, "modelyard_http_response_bytes_total") for s in lb.servers) - out_before
    assert sent < MIB, sent  # metadata only; the gateway sent the file
    head = httpx.head(f"{lb.url}/{repo_id}/resolve/main/big.bin",
                      headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert head.status_code == 302 and head.headers["location"].startswith(lb.gateway.url)


def kill_mid_request(
    lb: Cluster, gauge: str, route: str, action: Callable[[], object], when: Callable[[], bool] = lambda: True,
) -> tuple[LiveServer, int, list[BaseException]]:
    """Run ``action`` in a thread, SIGKILL the server whose ``gauge`` shows it busy on ``route``
    (once ``when`` holds), and wait for the action to finish (with the client's own retries).
    Returns the server killed, the balancer's log mark at the kill, and what the action raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - the caller asserts there is none
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        if when():
            victim = next((s for s in lb.servers if metric(s.url, gauge, route=route) >= 1), None)
        time.sleep(0.02)
    assert victim is not None, f"no server was busy on {route}"
    mark = lb.mark()
    victim.kill9()
    worker.join(300)
    return victim, mark, errors


@pytest.fixture(scope="module")
def lb_through_hub(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The same cluster with direct transfers off: every byte passes through a server."""
    with s3_gateway(moto.url) as gateway, cluster(tmp_path_factory.mktemp("cluster-hub"), moto, gateway, extra_env={
        "MODELYARD_DIRECT_UPLOADS": "false", "MODELYARD_DIRECT_DOWNLOADS": "false"}) as c:
        yield c


@pytest.mark.parametrize("way", ["through the hub", "straight to the store"])
def test_kill_9_of_the_server_busy_with_an_upload(
    way: str, lb: Cluster, lb_through_hub: Cluster, tmp_path: Path
) -> None:
    """The server busy with an LFS upload dies (SIGKILL): receiving its bytes (through the hub),
    or reading them back from the store to check them before they count (straight to the store).
    nginx answers the client 502, huggingface_hub retries, another server takes it; the file is
    intact and fsck is clean."""
    c, route, step = (lb_through_hub, "lfs.upload", "/_lfs/upload/") if way == "through the hub" \
        else (lb, "lfs.staged", "/_lfs/staged/")
    api = HfApi(endpoint=c.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/killed", exist_ok=True).repo_id
    source = tmp_path / "w.bin"
    with source.open("wb") as f:
        for _ in range(192):
            f.write(os.urandom(MIB))
    want = hashlib.sha256(source.read_bytes()).hexdigest()
    victim, mark, errors = kill_mid_request(
        c, "modelyard_uploads_in_flight", route,
        lambda: api.upload_file(path_or_fileobj=str(source), path_in_repo="w.bin", repo_id=repo_id),
    )
    try:
        assert not errors, errors
        tries = [(server, status) for server, status, _m, uri in c.served_since(mark) if step in uri]
        assert tries[0] == (c.upstream(victim), 502) and tries[-1][1] == 200, tries  # cut off, then retried
        path = hf_hub_download(repo_id, "w.bin", endpoint=c.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == want
        checked = c.servers[0 if victim is not c.servers[0] else 1].cli("fsck", check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        victim.start()


class _SlowFile(io.BytesIO):
    """A download target that takes its time, so the download is still streaming when the test
    kills the server sending it."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        time.sleep(0.03 * len(data) / MIB)
        return super().write(data)


def test_kill_9_of_the_server_sending_a_download(lb: Cluster, tmp_path: Path) -> None:
    """A Xet file read by a plain HTTP client is rebuilt and sent by a server (not the store);
    that server dies mid-stream: huggingface_hub's download resumes with a Range through the
    balancer, on another server, and the bytes are intact."""
    repo_id = "alice/killed-download"
    HfApi(endpoint=lb.url, token=TOKENS["alice"]).create_repo(repo_id, exist_ok=True)
    data = os.urandom(96 * MIB)
    (tmp_path / "x.bin").write_bytes(data)
    run_client("xet_client.py", ["upload", repo_id, str(tmp_path / "x.bin"), "x.bin"],
               client_env(lb, tmp_path / "home", xet=True))
    target = _SlowFile()
    victim, mark, errors = kill_mid_request(
        lb, "modelyard_http_requests_in_flight", "files.resolve",
        lambda: http_get(f"{lb.url}/{repo_id}/resolve/main/x.bin", target, expected_size=len(data),
                         headers={"Authorization": f"Bearer {TOKENS['alice']}"}),
        when=lambda: target.tell() >= 8 * MIB,  # mid-stream: the client holds part of the file
    )
    try:
        assert not errors, errors
        assert target.tell() == len(data) and target.getvalue() == data
        gets = [(server, status) for server, status, m, uri in lb.served_since(mark) if uri.endswith("/x.bin")]
        assert gets[-1][1] == 206 and gets[-1][0] != lb.upstream(victim), gets  # resumed elsewhere
        checked = lb.servers[0 if victim is not lb.servers[0] else 1].cli("fsck", check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        victim.start()


def test_a_rolling_restart_under_load_fails_nothing_the_client_retries(lb: Cluster, tmp_path: Path) -> None:
    """Clients keep reading, committing and downloading while each server in turn gets SIGTERM,
    is started again and becomes ready: every operation succeeds (huggingface_hub's own retries,
    no more) and every downloaded byte is right."""
    api = HfApi(endpoint=lb.url, token=TOKENS["alice"])
    repo_id = api.create_repo("alice/rolling", exist_ok=True).repo_id
    blob = os.urandom(8 * MIB)
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id=repo_id)
    stop = threading.Event()
    failures: list[str] = []
    done = {"head": 0, "commit": 0, "download": 0}
    lock = threading.Lock()

    def loop(kind: str, n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if kind == "head":
                    meta = get_hf_file_metadata(hf_hub_url(repo_id, "w.bin", endpoint=lb.url), token=TOKENS["alice"])
                    assert meta.size == len(blob)
                elif kind == "commit":
                    api.create_commit(repo_id, [CommitOperationAdd(f"c/{n}-{i}.txt", b"%d" % i)],
                                      commit_message=f"{n}-{i}")
                else:
                    path = hf_hub_download(repo_id, "w.bin", endpoint=lb.url, token=TOKENS["alice"],
                                           cache_dir=tmp_path / f"cache-{n}-{i}", etag_timeout=30)
                    assert Path(path).read_bytes() == blob
            except Exception as exc:  # noqa: BLE001 - every failure is the test's finding
                with lock:
                    failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:500])
            else:
                with lock:
                    done[kind] += 1

    workers = [threading.Thread(target=loop, args=(kind, n)) for n, kind in
               enumerate(["head", "head", "commit", "commit", "download", "download"])]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        for server in lb.servers:
            server.stop()  # SIGTERM: in-flight requests finish, the port closes
            server.start()  # returns once it answers
            deadline = time.monotonic() + 30
            while httpx.get(f"{server.url}/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(1)
    finally:
        stop.set()
        for w in workers:
            w.join(120)
    assert not failures, failures
    assert min(done.values()) >= 3, done
    commits = api.list_repo_commits(repo_id)
    assert len(commits) == done["commit"] + 2  # the initial commit, the upload, and each one made
