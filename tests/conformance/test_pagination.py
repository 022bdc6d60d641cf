"""Done-when (discovery) 3: paging through a 10,000-repo catalog while commits land."""

from __future__ import annotations

import random
import threading
import uuid

import httpx
from huggingface_hub import HfApi

from tests.support.catalog import bulk_create_repos
from tests.support.server import TOKENS, LiveServer

N = 10_000


def _database_url(server: LiveServer) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}"


def test_walk_10000_repos_without_duplicates_or_gaps_while_commits_land(server: LiveServer) -> None:
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i:05d}" for i in range(N)]
    bulk_create_repos(_database_url(server), "bob", names)
    expected = {f"bob/{n}" for n in names}
    api = HfApi(endpoint=server.url, token=TOKENS["bob"])
    stop = threading.Event()
    committed: list[str] = []

    def commit_while_walking() -> None:
        rng = random.Random(7)
        while not stop.is_set() and len(committed) < 60:
            name = rng.choice(names)
            api.upload_file(path_or_fileobj=b"touch", path_in_repo="touch.txt", repo_id=f"bob/{name}")
            committed.append(name)

    for sort in ("lastModified", "createdAt"):
        committed.clear()
        stop.clear()
        writer = threading.Thread(target=commit_while_walking)
        writer.start()
        seen: list[str] = []
        url: str | None = f"{server.url}/api/models?search={prefix}&sort={sort}&limit=250"
        pages = 0
        try:
            with httpx.Client(timeout=60) as client:
                while url:
                    r = client.get(url)
                    assert r.status_code == 200, r.text
                    seen += [m["id"] for m in r.json()]
                    url = r.links.get("next", {}).get("url")
                    pages += 1
        finally:
            stop.set()
            writer.join()
        assert len(committed) > 0
        assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} duplicates with sort={sort}"
        assert set(seen) == expected, f"{len(expected - set(seen))} missing with sort={sort}"
        assert pages == N // 250
    # after the walk, a fresh listing shows the committed repos first
    first = httpx.get(f"{server.url}/api/models?search={prefix}&sort=lastModified&limit=5").json()
    assert first[0]["id"] == f"bob/{committed[-1]}"
