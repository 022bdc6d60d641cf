"""Done-when (discovery) 3: paging through a 10,000-repo catalog while commits land.

Between two pages the walk makes a commit and waits for it (so it provably landed between the
two page queries: the test records when each was sent and acknowledged, and when each page was
asked for and answered), then starts another that races the next page's query. The commits go
in turn to a repo the walk has already returned (it moves to the front under lastModified: it
must not come back) and to one it has not reached yet (it moves behind the cursor: it must not
be lost).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from huggingface_hub import HfApi

from tests.support.catalog import bulk_create_repos
from tests.support.server import TOKENS, LiveServer

N = 10_000
PAGE = 250


def _database_url(server: LiveServer) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}"


@dataclass(frozen=True)
class Landed:
    """One commit the writer made: its repo, whether the walk had returned that repo when the
    commit started, and when it was sent and acknowledged (``time.monotonic``)."""

    name: str
    already_seen: bool
    sent: float
    acknowledged: float


@dataclass
class Writer:
    """Commits to the walked repos, alternately to one the walk has returned and to one it has not."""

    api: HfApi
    names: list[str]
    seen: set[str] = field(default_factory=set)
    landed: list[Landed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self) -> None:
        with self.lock:
            n = len(self.landed)
            # commits between pages and racing ones alternate in turn: n = 0, 1, 2, 3 -> seen, not, not, seen
            want_seen = n % 4 in (0, 3) and bool(self.seen)
            if want_seen:
                pool = sorted(x.removeprefix("bob/") for x in self.seen)
            else:
                pool = [x for x in self.names if f"bob/{x}" not in self.seen]
        name = pool[(n * 7919) % len(pool)]
        sent = time.monotonic()
        self.api.upload_file(path_or_fileobj=f"touch {n}".encode(), path_in_repo="touch.txt", repo_id=f"bob/{name}")
        with self.lock:
            self.landed.append(Landed(name, want_seen, sent, time.monotonic()))


def test_walk_10000_repos_without_duplicates_or_gaps_while_commits_land(server: LiveServer) -> None:
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i:05d}" for i in range(N)]
    bulk_create_repos(_database_url(server), "bob", names)
    expected = {f"bob/{n}" for n in names}
    api = HfApi(endpoint=server.url, token=TOKENS["bob"])
    last: Landed | None = None

    for sort in ("lastModified", "createdAt"):
        writer = Writer(api, names)
        returned: list[str] = []
        pages: list[tuple[float, float]] = []  # (asked, answered) per page
        url: str | None = f"{server.url}/api/models?search={prefix}&sort={sort}&limit={PAGE}"
        with httpx.Client(timeout=60) as client:
            while url:
                racer = None
                if pages:
                    writer.commit()  # lands between the last answer and the next question
                    racer = threading.Thread(target=writer.commit)  # races the next page's query
                    racer.start()
                asked = time.monotonic()
                r = client.get(url)
                answered = time.monotonic()
                if racer is not None:
                    racer.join(60)
                    assert not racer.is_alive(), "a commit never returned"
                assert r.status_code == 200, r.text
                ids = [m["id"] for m in r.json()]
                returned += ids
                with writer.lock:
                    writer.seen.update(ids)
                pages.append((asked, answered))
                url = r.links.get("next", {}).get("url")

        assert len(pages) == N // PAGE
        # Every gap between two pages holds a commit that was sent after one answer and acknowledged
        # before the next question: it landed between the two page queries.
        assert len(writer.landed) == 2 * (len(pages) - 1)
        between = [
            [c for c in writer.landed if answered <= c.sent and c.acknowledged <= pages[i + 1][0]]
            for i, (_asked, answered) in enumerate(pages[:-1])
        ]
        assert all(between), f"gaps without a commit with sort={sort}: {[i for i, b in enumerate(between) if not b]}"
        landed_between = [c for gap in between for c in gap]
        assert any(c.already_seen for c in landed_between), "no commit moved a repo the walk had returned"
        assert any(not c.already_seen for c in landed_between), "no commit moved a repo the walk had not reached"
        assert len(returned) == len(set(returned)), f"{len(returned) - len(set(returned))} duplicates with sort={sort}"
        assert set(returned) == expected, f"{len(expected - set(returned))} missing with sort={sort}"
        last = max(writer.landed, key=lambda c: c.acknowledged)

    # after the walks, a fresh listing shows the last committed repo first (once the catalog,
    # which follows commits through the job queue, has caught up: a bounded wait)
    assert last is not None
    deadline = time.monotonic() + 30
    while True:
        first = httpx.get(f"{server.url}/api/models?search={prefix}&sort=lastModified&limit=5").json()
        if first[0]["id"] == f"bob/{last.name}" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert first[0]["id"] == f"bob/{last.name}"
