"""Rate limits: per token (or address), per group, shared by two servers through Redis.

Two servers on one PostgreSQL database, one data folder and one Redis database (the counts),
with tight limits: a burst past a group's limit gets 429 with ``Retry-After`` on either server,
huggingface_hub waits and retries to success, other tokens and other groups are unaffected, and
a spoofed ``X-Forwarded-For`` does not make an anonymous caller someone else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from huggingface_hub import HfApi, hf_hub_download

from tests.support.server import TOKENS, LiveServer, postgres_database

REDIS_DB = 7
WINDOW = 3  # seconds


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    store = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    store.flushdb()
    folder = tmp_path_factory.mktemp("limited")
    env = {
        "MODELYARD_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "MODELYARD_RATE_LIMIT_RESOLVE": f"6/{WINDOW}second",
        "MODELYARD_RATE_LIMIT_API": f"30/{WINDOW}second",
        "MODELYARD_RATE_LIMIT_UPLOADS": "none",
    }
    with postgres_database() as url:
        first = LiveServer(folder, url, "postgresql", extra_env=env).prepare()
        second = LiveServer(folder, url, "postgresql", extra_env=env)
        with first.running(), second.running():
            api = HfApi(endpoint=first.url, token=TOKENS["alice"])
            api.create_repo("alice/limited")
            api.upload_file(path_or_fileobj=b"x" * 1000, path_in_repo="config.json", repo_id="alice/limited")
            store.flushdb()  # the setup's requests do not count
            yield first, second
    store.flushdb()


def head(server: LiveServer, user: str | None, **headers: str) -> httpx.Response:
    if user:
        headers["Authorization"] = f"Bearer {TOKENS[user]}"
    return httpx.head(f"{server.url}/alice/limited/resolve/main/config.json", headers=headers, timeout=10)


def wait_for_a_fresh_window() -> None:
    """No counts left from other tests (a sliding window weighs the previous window's too), and
    the beginning of a window, so a burst of a few requests falls in one."""
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    time.sleep(WINDOW + 0.1 - time.time() % WINDOW)


def test_a_burst_is_refused_on_both_servers_and_others_are_not(pair: tuple[LiveServer, LiveServer]) -> None:
    first, second = pair
    wait_for_a_fresh_window()
    answers = [head(server, "alice").status_code for server in (first, second, first, second, first, second)]
    assert answers == [200] * 6
    refused = head(second, "alice")
    assert refused.status_code == 429
    assert refused.headers["X-Error-Code"] == "RateLimited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * WINDOW
    assert refused.headers["RateLimit"].startswith('"resolve";r=0;t=')
    assert "6 resolve requests per 3 second(s)" in refused.headers["X-Error-Message"]
    assert head(first, "alice").status_code == 429  # the count is shared
    # Another token, and anonymous callers, have limits of their own; other groups are apart.
    assert head(first, "bob").status_code == 200 and head(second, "bob").status_code == 200
    assert head(first, None).status_code == 200
    info = httpx.get(f"{first.url}/api/models/alice/limited", headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                     timeout=10)
    assert info.status_code == 200


def test_the_client_waits_and_retries(pair: tuple[LiveServer, LiveServer], tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    first, second = pair
    wait_for_a_fresh_window()
    while head(first, "alice").status_code == 200:  # use up alice's downloads
        pass
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        path = hf_hub_download("alice/limited", "config.json", endpoint=second.url, token=TOKENS["alice"],
                               cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"x" * 1000
    assert any("429" in r.getMessage() for r in caplog.records), caplog.records  # it was refused, then retried
    assert time.monotonic() - started >= 1


def test_a_spoofed_forwarded_for_is_not_another_caller(pair: tuple[LiveServer, LiveServer]) -> None:
    first, _second = pair
    wait_for_a_fresh_window()
    answers = [head(first, None, **{"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(8)]
    assert answers[:6] == [200] * 6 and answers[6:] == [429, 429]


def test_a_malformed_limit_stops_the_start(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "bad", None, "sqlite", extra_env={"MODELYARD_RATE_LIMIT_RESOLVE": "plenty"})
    server.cli("db", "upgrade")
    started = server.cli("serve", "--port", "1", check=False)
    assert started.returncode != 0
    assert "MODELYARD_RATE_LIMIT_RESOLVE: 'plenty' is not a rate limit" in started.stderr
