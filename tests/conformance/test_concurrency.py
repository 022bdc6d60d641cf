"""Done-when 4: concurrent commits on one branch; compare-and-swap keeps every winner's files."""

from __future__ import annotations

import threading
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.support.server import TOKENS, LiveServer


def _race(server: LiveServer, repo_id: str, parent: str | None, tag: str) -> list[Any]:
    """Two clients commit at the same moment; returns each one's CommitInfo or exception."""
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def commit(i: int) -> None:
        api = HfApi(endpoint=server.url, token=TOKENS["alice"])
        ops = [CommitOperationAdd(f"{tag}-{i}-{n}.txt", f"{tag} {i} {n}".encode()) for n in range(20)]
        barrier.wait()
        try:
            results[i] = api.create_commit(repo_id, operations=ops, commit_message=f"{tag} {i}",
                                           parent_commit=parent)
        except HfHubHTTPError as exc:
            results[i] = exc

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_same_parent_one_wins_other_conflicts(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    for round_no in range(4):
        parent = api.model_info(repo_id).sha
        results = _race(server, repo_id, parent, f"r{round_no}")
        wins = [r for r in results if not isinstance(r, Exception)]
        losses = [r for r in results if isinstance(r, HfHubHTTPError)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].response.status_code == 412
        assert "The branch was updated since you opened this page. Please refresh and try again." in str(losses[0])
        winner = results.index(wins[0])
        files = set(api.list_repo_files(repo_id))
        assert {f"r{round_no}-{winner}-{n}.txt" for n in range(20)} <= files
        assert not any(f.startswith(f"r{round_no}-{1 - winner}-") for f in files)
        assert api.model_info(repo_id).sha == wins[0].oid
        # the loser retries against the new head and succeeds, losing nothing of the winner
        retry = api.create_commit(
            repo_id, parent_commit=wins[0].oid, commit_message="retry",
            operations=[CommitOperationAdd(f"r{round_no}-retry.txt", b"again")],
        )
        assert retry.oid == api.model_info(repo_id).sha
        assert {f"r{round_no}-{winner}-{n}.txt" for n in range(20)} <= set(api.list_repo_files(repo_id))


def test_without_parent_both_land(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    results = _race(server, repo_id, None, "free")
    assert all(not isinstance(r, Exception) for r in results), results
    files = set(api.list_repo_files(repo_id))
    assert {f"free-{i}-{n}.txt" for i in range(2) for n in range(20)} <= files
    history = api.list_repo_commits(repo_id)
    assert {c.title for c in history[:2]} == {"free 0", "free 1"}


def test_creating_one_name_at_once_gives_one_repo_and_409s(server: LiveServer) -> None:
    """Eight clients create the same repo (and the same bucket) at once: one succeeds, the others
    are told it exists (409), none fails on the database's unique key (a 500 on PostgreSQL before
    creations in a namespace took turns)."""
    import uuid

    import httpx

    def create(url: str, body: dict[str, str], barrier: threading.Barrier, codes: list[int]) -> None:
        barrier.wait()
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKENS['alice']}"}, timeout=60)
        codes.append(r.status_code)

    for path in ("/api/repos/create", "/api/buckets/alice/{name}"):
        name = f"race-{uuid.uuid4().hex[:8]}"
        barrier = threading.Barrier(8)
        codes: list[int] = []
        args = (server.url + path.format(name=name), {"name": name, "organization": "alice"}, barrier, codes)
        threads = [threading.Thread(target=create, args=args) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200] + [409] * 7, (path, codes)
