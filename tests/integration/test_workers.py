"""``modelyard serve --workers 2`` on SQLite and PostgreSQL: what one worker did, the other sees.

Each test holds one keep-alive connection per worker (tests/support/workers.py traces every
connection to the process that accepted it), so "uploaded through one worker, downloaded through
the other" is checked, not hoped for. The real client runs against the same server too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.integration.conftest import BACKENDS
from tests.support.server import TOKENS, LiveServer, seeded_hub
from tests.support.workers import PinnedClient, one_client_per_worker
from tests.support.xet import payload

AUTH = {"Authorization": f"Bearer {TOKENS['alice']}"}
LFS_JSON = "application/vnd.git-lfs+json"


@pytest.fixture(scope="module", params=BACKENDS)
def two_workers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"workers-{request.param}")) as hub:
        hub.extra_env["MODELYARD_WORKERS"] = "2"
        with hub.running() as live:
            assert len(live.pids()) == 2, "modelyard serve --workers 2 runs two worker processes"
            yield live


@pytest.fixture
def pinned(two_workers: LiveServer) -> Iterator[list[PinnedClient]]:
    """One client per worker, each on its own keep-alive connection."""
    with one_client_per_worker(two_workers) as clients:
        yield clients
        for client in clients:
            client.check()  # every request of the test went to the worker it was pinned to


@pytest.fixture
def api(two_workers: LiveServer) -> HfApi:
    return HfApi(endpoint=two_workers.url, token=TOKENS["alice"])


def repo_of(api: HfApi, name: str, private: bool = False) -> str:
    return api.create_repo(f"acme/{name}-{uuid.uuid4().hex[:8]}", private=private).repo_id


def ndjson(summary: str, *lines: dict[str, object], parent: str | None = None) -> bytes:
    header: dict[str, object] = {"summary": summary, **({"parentCommit": parent} if parent else {})}
    return b"".join(json.dumps(x).encode() + b"\n" for x in [{"key": "header", "value": header}, *lines])


def add_file(path: str, content: bytes) -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(content).decode(),
                                     "encoding": "base64"}}


def commit(client: PinnedClient, repo_id: str, body: bytes) -> httpx.Response:
    return client.http.post(f"/api/models/{repo_id}/commit/main", content=body,
                            headers={**AUTH, "Content-Type": "application/x-ndjson"})


def lfs_upload(client: PinnedClient, repo_id: str, path: str, data: bytes) -> str:
    """The Git LFS upload a client makes (batch, PUT, verify, commit), all through ``client``."""
    oid = hashlib.sha256(data).hexdigest()
    batch = client.http.post(
        f"/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]},
        headers={**AUTH, "Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )
    assert batch.status_code == 200, batch.text
    [obj] = batch.json()["objects"]
    put = client.http.put(obj["actions"]["upload"]["href"], content=data)
    assert put.status_code == 200, put.text
    verify = obj["actions"]["verify"]
    checked = client.http.post(verify["href"], json={"oid": oid, "size": len(data)},
                               headers={**verify.get("header", {}), **AUTH, "Content-Type": LFS_JSON})
    assert checked.status_code == 200, checked.text
    line = {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": len(data)}}
    done = commit(client, repo_id, ndjson(f"add {path}", line))
    assert done.status_code == 200, done.text
    return str(done.json()["commitOid"])


def test_lfs_upload_through_one_worker_download_through_the_other(
    two_workers: LiveServer, pinned: list[PinnedClient], api: HfApi, tmp_path: Path
) -> None:
    repo_id = repo_of(api, "lfs")
    rng = random.Random(3)
    for up, down in [(pinned[0], pinned[1]), (pinned[1], pinned[0])]:
        assert up.worker != down.worker
        data = b"\x00" + rng.randbytes(3 * 1024 * 1024)
        path = f"w-{up.worker}.bin"
        oid = lfs_upload(up, repo_id, path, data)
        head = down.http.head(f"/{repo_id}/resolve/main/{path}")
        assert head.status_code == 200 and head.headers["X-Repo-Commit"] == oid
        assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        got = down.http.get(f"/{repo_id}/resolve/{oid}/{path}")
        assert got.status_code == 200 and got.content == data
        ranged = down.http.get(f"/{repo_id}/resolve/main/{path}", headers={"Range": "bytes=1000-1999"})
        assert ranged.status_code == 206 and ranged.content == data[1000:2000]
        # and the real client, wherever its connection went
        local = hf_hub_download(repo_id, path, endpoint=two_workers.url, token=TOKENS["alice"],
                                cache_dir=tmp_path / "cache")
        assert Path(local).read_bytes() == data
    # The real client's upload (LFS: Xet is off in this process) reads back the same from both workers.
    data = b"\x00" + rng.randbytes(2 * 1024 * 1024)
    api.upload_file(path_or_fileobj=data, path_in_repo="client.bin", repo_id=repo_id)
    for client in pinned:
        assert client.http.get(f"/{repo_id}/resolve/main/client.bin").content == data


def test_xet_token_from_one_worker_is_honoured_by_the_other(
    two_workers: LiveServer, pinned: list[PinnedClient], api: HfApi
) -> None:
    repo_id = repo_of(api, "xet")
    issuer, user = pinned
    p = payload(random.Random(5).randbytes(300_000))
    # A write token from one worker, the xorb and shard through the other.
    minted = issuer.http.get(f"/api/models/{repo_id}/xet-write-token/main", headers=AUTH)
    assert minted.status_code == 200, minted.text
    cas = {"Authorization": f"Bearer {minted.json()['accessToken']}"}
    assert minted.json()["casUrl"] == f"{two_workers.url}/xet"
    stored = user.http.post(f"/xet/v1/xorbs/default/{p.xorb_hash}", content=p.xorb, headers=cas)
    assert stored.status_code == 200 and stored.json() == {"was_inserted": True}, stored.text
    shard = user.http.post("/xet/v1/shards", content=p.shard(), headers=cas)
    assert shard.status_code == 200, shard.text
    line = {"key": "lfsFile", "value": {"path": "x.bin", "algo": "sha256", "oid": p.sha256, "size": len(p.data)}}
    committed = commit(issuer, repo_id, ndjson("add x.bin", line))
    assert committed.status_code == 200, committed.text
    # A read token from the other worker; the reconstruction and its signed fetch URL cross over too.
    read = user.http.get(f"/api/models/{repo_id}/xet-read-token/main", headers=AUTH)
    assert read.status_code == 200
    plan = issuer.http.get(f"/xet/v1/reconstructions/{p.file_hash}",
                           headers={"Authorization": f"Bearer {read.json()['accessToken']}"})
    assert plan.status_code == 200, plan.text
    [fetch] = plan.json()["fetch_info"][p.xorb_hash]
    lo, hi = fetch["url_range"]["start"], fetch["url_range"]["end"]
    got = user.http.get(fetch["url"], headers={"Range": f"bytes={lo}-{hi}"})
    assert got.status_code == 206 and got.content == p.xorb[lo : hi + 1]
    for client in pinned:
        assert client.http.get(f"/{repo_id}/resolve/main/x.bin").content == p.data
    # A forged token is refused by both.
    forged = {"Authorization": f"Bearer {minted.json()['accessToken'][:-2]}xx"}
    for client in pinned:
        assert client.http.get(f"/xet/v1/reconstructions/{p.file_hash}", headers=forged).status_code == 401


def race(clients: list[PinnedClient], send: Callable[[PinnedClient, int], httpx.Response]) -> list[httpx.Response]:
    """``send`` through every client at the same moment; their responses in client order."""
    barrier = threading.Barrier(len(clients))
    results: list[httpx.Response | None] = [None] * len(clients)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = send(clients[i], i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "a racer never answered"
    return [r for r in results if r is not None]


def test_concurrent_commits_across_workers(pinned: list[PinnedClient], api: HfApi) -> None:
    repo_id = repo_of(api, "race")
    for round_no in range(4):
        parent = api.model_info(repo_id).sha
        assert parent is not None

        def send(client: PinnedClient, i: int, parent: str = parent, round_no: int = round_no) -> httpx.Response:
            lines = [add_file(f"r{round_no}-{i}-{n}.txt", f"{round_no} {i} {n}".encode()) for n in range(20)]
            return commit(client, repo_id, ndjson(f"r{round_no} {i}", *lines, parent=parent))

        results = race(pinned, send)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 412], [(r.status_code, r.text[:200]) for r in results]
        [loser] = [r for r in results if r.status_code == 412]
        assert loser.headers["X-Error-Code"] == "PreconditionFailed"
        winner = next(i for i, r in enumerate(results) if r.status_code == 200)
        files = set(api.list_repo_files(repo_id))
        assert {f"r{round_no}-{winner}-{n}.txt" for n in range(20)} <= files
        assert not any(f.startswith(f"r{round_no}-{1 - winner}-") for f in files)
        assert api.model_info(repo_id).sha == results[winner].json()["commitOid"]

    # Without a parent both land, one after the other, through both workers.
    results = race(pinned, lambda client, i: commit(client, repo_id, ndjson(f"free {i}", add_file(f"free-{i}.txt",
                                                                                                  b"x"))))
    assert [r.status_code for r in results] == [200, 200]
    assert {"free-0.txt", "free-1.txt"} <= set(api.list_repo_files(repo_id))
    assert {c.title for c in api.list_repo_commits(repo_id)[:2]} == {"free 0", "free 1"}

    # The client's own exception for the loser (its connection goes to either worker).
    stale = api.list_repo_commits(repo_id)[1].commit_id
    with pytest.raises(HfHubHTTPError) as info:
        api.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id=repo_id, parent_commit=stale)
    assert info.value.response.status_code == 412
    assert info.value.response.headers["X-Error-Code"] == "PreconditionFailed"


def test_private_repos_and_pages_on_both_workers(
    two_workers: LiveServer, pinned: list[PinnedClient], api: HfApi, tmp_path: Path
) -> None:
    private = repo_of(api, "private", private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=private)
    for client in pinned:
        for token in (None, TOKENS["bob"]):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for url in (f"/api/models/{private}", f"/{private}/resolve/main/s.txt"):
                r = client.http.get(url, headers=headers)
                assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RepoNotFound"), (client.worker, url)
        carol = client.http.get(f"/{private}/resolve/main/s.txt",
                                headers={"Authorization": f"Bearer {TOKENS['carol']}"})
        assert carol.status_code == 200 and carol.content == b"secret"
    for user in (None, "bob"):
        outsider = HfApi(endpoint=two_workers.url, token=TOKENS[user] if user else False)
        with pytest.raises(RepositoryNotFoundError) as info:
            outsider.model_info(private)
        assert info.value.response.status_code == 404

    # A page walk whose pages alternate between the workers: the cursor is not a worker's own.
    stem = f"pages-{uuid.uuid4().hex[:8]}"
    ids = [api.create_repo(f"acme/{stem}-{i}").repo_id for i in range(7)]
    # The catalog entry of a new repo is written by a background job: wait (bounded) for all seven.
    deadline = time.monotonic() + 30
    while len(httpx.get(f"{two_workers.url}/api/models", params={"search": stem}).json()) < len(ids):
        assert time.monotonic() < deadline, "the new repos never reached the catalog"
        time.sleep(0.05)
    url: str | None = f"{two_workers.url}/api/models?search={stem}&sort=createdAt&limit=2"
    seen: list[str] = []
    pages = 0
    while url:
        assert url.startswith(two_workers.url + "/api/models?")
        r = pinned[pages % 2].http.get(url)
        assert r.status_code == 200, r.text
        seen += [m["id"] for m in r.json()]
        url = r.links.get("next", {}).get("url")
        pages += 1
    assert seen == list(reversed(ids)) and pages == 4
