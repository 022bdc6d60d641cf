"""Webhook deliveries end to end: a receiver on loopback gets a session's events in order, each
body parsed by ``huggingface_hub.WebhookPayload``, with the secret; failures are retried, a
restart loses nothing, a hanging receiver holds up nobody else, and the delivery log shows every
attempt (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, WebhookPayload

from tests.integration.conftest import BACKENDS
from tests.support.receiver import Received, Receiver, receiver
from tests.support.server import TOKENS, LiveServer, seeded_hub

SECRET = "hook-secret"


@pytest.fixture(scope="module", params=BACKENDS)
def hook_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Fast retries and short timeouts (the defaults: 1 s doubling, 10 s per attempt)."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"hooks-{request.param}")) as hub:
        hub.extra_env.update({
            "MODELYARD_WEBHOOK_RETRY_DELAY": "0.2", "MODELYARD_WEBHOOK_POLL_INTERVAL": "0.2",
            "MODELYARD_WEBHOOK_TIMEOUT": "5", "MODELYARD_WEBHOOK_CONNECT_TIMEOUT": "2",
            "MODELYARD_JOB_LEASE": "2", "MODELYARD_JOB_SWEEP_INTERVAL": "0.5",
        })
        with hub.running() as live:
            yield live


@pytest.fixture
def alice(hook_server: LiveServer) -> HfApi:
    return HfApi(endpoint=hook_server.url, token=TOKENS["alice"])


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def unique(prefix: str = "w") -> str:
    return f"{prefix}-{time.time_ns() % 10**12:x}"


def parsed(posts: list[Received]) -> list[WebhookPayload]:
    """Every body through the client's own model (it raises on anything it cannot read)."""
    return [WebhookPayload.model_validate(p.json()) for p in posts]


def deliveries(server: LiveServer, webhook_id: str, user: str = "alice", **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/settings/webhooks/{webhook_id}/deliveries", params=params,
                         headers={"authorization": f"Bearer {TOKENS[user]}"})
    response.raise_for_status()
    out: list[dict[str, Any]] = response.json()
    return out


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def repo_session(api: HfApi, name: str, hook: Receiver) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The scripted repo session: create, push, make private, move, delete, each step once the
    previous one's delivery has reached ``hook`` (payloads show the repo as it is when its event
    is handled: without the waits a step could show a later state). Returns the (action, scope)
    deliveries it makes, in order, and what the checks need."""
    base = len(hook.received)
    repo_id = api.create_repo(name).repo_id
    hook.wait_for(base + 1)
    commit = api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a")], commit_message="push")
    hook.wait_for(base + 2)
    api.update_repo_settings(repo_id, private=True)
    hook.wait_for(base + 3)
    moved = f"alice/{name}-moved"
    api.move_repo(repo_id, moved)
    hook.wait_for(base + 4)
    api.delete_repo(moved)
    expected = [("create", "repo"), ("update", "repo.content"), ("update", "repo.config"), ("move", "repo"),
                ("delete", "repo")]
    return expected, {"repo_id": repo_id, "moved": moved, "commit": commit.oid}


def pull_request_session(api: HfApi, repo_id: str) -> list[tuple[str, str]]:
    """Discussion-domain deliveries of a pull request opened, commented and merged (the
    discussions engine records these events; extend here as it records more)."""
    pr = api.create_commit(repo_id, [CommitOperationAdd("p.txt", b"p")], commit_message="p", create_pr=True)
    assert pr.pr_num is not None
    api.comment_discussion(repo_id, pr.pr_num, "looks good")
    api.merge_pull_request(repo_id, pr.pr_num)
    return [("create", "discussion"), ("create", "discussion.comment"), ("update", "discussion")]


def test_a_session_arrives_in_order(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    made = alice.create_webhook(url=hook.url, watched=[{"type": "user", "name": "alice"}], domains=["repo"],
                                secret=SECRET)
    with receiver() as bobs:  # bob watches alice too: her private repo's events are not his to see
        bob = HfApi(endpoint=hook_server.url, token=TOKENS["bob"]).create_webhook(
            url=bobs.url, watched=[{"type": "user", "name": "alice"}], domains=["repo"])
        name = unique()
        expected, facts = repo_session(alice, name, hook)
        payloads = parsed(hook.wait_for(len(expected)))
        assert [(p.event.action, p.event.scope) for p in payloads] == expected
        assert all(p.headers["x-webhook-secret"] == SECRET for p in hook.received)
        assert all(p.webhook.id == made.id and p.webhook.version == 3 for p in payloads)
        create, push, config, move, delete = payloads
        assert create.repo.name == facts["repo_id"] and create.repo.type == "model" and not create.repo.private
        assert push.updatedRefs is not None and [(r.ref, r.newSha) for r in push.updatedRefs] == [
            ("refs/heads/main", facts["commit"])]
        old = push.updatedRefs[0].oldSha  # the initial commit (payloads show the repo as it is when sent)
        assert old is not None and len(old) == 40 and old != facts["commit"]
        assert config.repo.private is True
        assert move.repo.name == facts["repo_id"] and move.movedTo is not None
        assert move.movedTo.name == facts["moved"]
        assert delete.repo.name == facts["moved"] and delete.repo.private
        log = deliveries(hook_server, made.id)
        assert [(d["event"]["action"], d["event"]["scope"]) for d in log] == expected[::-1]  # newest first
        assert all(d["status"] == "succeeded" and [a["statusCode"] for a in d["log"]] == [200] for d in log)
        # bob's webhook got the public events only: nothing once the repo had turned private
        bobs_log = deliveries(hook_server, bob.id, user="bob")
        assert [(d["event"]["action"], d["event"]["scope"]) for d in bobs_log] == expected[:2][::-1]
        assert "x-webhook-secret" not in bobs.wait_for(2)[0].headers


def test_pull_request_events_reach_discussion_webhooks(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    repo_id = alice.create_repo(unique()).repo_id
    hook_server.settle()  # its create event handled before the webhook exists
    alice.create_webhook(url=hook.url, watched=[{"type": "model", "name": repo_id}], domains=["discussion"])
    expected = pull_request_session(alice, repo_id)
    payloads = parsed(hook.wait_for(len(expected)))
    assert [(p.event.action, p.event.scope) for p in payloads] == expected
    assert all(p.discussion is not None and p.discussion.isPullRequest for p in payloads)
    assert payloads[1].comment is not None and payloads[1].comment.content == "looks good"
    last = payloads[-1].discussion
    assert last is not None and last.status == "merged"
    assert last.changes is not None and last.changes.mergeCommitId


def test_a_failing_receiver_gets_the_event_again(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    hook.fail_next = 2
    repo_id = alice.create_repo(unique()).repo_id
    hook_server.settle()  # its create event handled before the webhook exists
    made = alice.create_webhook(url=hook.url, watched=[{"type": "model", "name": repo_id}], secret=SECRET)
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    posts = hook.wait_for(3)
    assert len({p.body for p in posts}) == 1  # the same event three times
    assert parsed(posts)[0].event.scope == "repo.content"
    wait_until(lambda: deliveries(hook_server, made.id)[0]["status"] == "succeeded")
    [delivery] = deliveries(hook_server, made.id)
    assert delivery["attempts"] == 3
    assert [(a["attempt"], a["statusCode"]) for a in delivery["log"]] == [(1, 500), (2, 500), (3, 200)]
    assert delivery["log"][0]["error"].startswith("HTTP 500") and delivery["log"][2]["error"] is None
    assert all(isinstance(a["latencyMs"], int) for a in delivery["log"])


def test_a_restart_loses_nothing(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    repo_id = alice.create_repo(unique()).repo_id
    hook_server.settle()  # its create event handled before the webhook exists
    made = alice.create_webhook(url=hook.url, watched=[{"type": "model", "name": repo_id}])
    # 1. the delivery exists and has failed once when the server dies
    hook.status = 503
    alice.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo_id)
    hook.wait_for(1)
    # the receiver answers before the sender logs the attempt: wait for the log, then kill
    wait_until(lambda: bool(deliveries(hook_server, made.id)[0]["log"]))
    hook_server.kill9()
    hook.status = 200
    # 2. an event whose job has not run when the server stops (no job threads)
    hook_server.extra_env["MODELYARD_JOB_THREADS"] = "0"
    hook_server.start()
    try:
        alice.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo_id)
        assert deliveries(hook_server, made.id)[0]["log"][0]["statusCode"] == 503
        assert len(deliveries(hook_server, made.id)) == 1  # the second event is not handled yet
    finally:
        hook_server.stop()
        del hook_server.extra_env["MODELYARD_JOB_THREADS"]
        hook_server.start()
    wait_until(lambda: [d["status"] for d in deliveries(hook_server, made.id)] == ["succeeded", "succeeded"])
    ok = [p for p in hook.received if p is not hook.received[0]]
    refs = [p.updatedRefs[0].newSha for p in parsed(ok) if p.updatedRefs]
    heads = [c.commit_id for c in alice.list_repo_commits(repo_id)][:2][::-1]
    assert refs[-2:] == heads  # both pushes, in order


def test_a_hanging_receiver_holds_up_nobody(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    with socket.socket() as hang:  # accepts connections (the backlog) and never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen(16)
        repo_id = alice.create_repo(unique()).repo_id
        hook_server.settle()
        stuck = alice.create_webhook(url=f"http://127.0.0.1:{hang.getsockname()[1]}/",
                                     watched=[{"type": "model", "name": repo_id}])
        alice.create_webhook(url=hook.url, watched=[{"type": "model", "name": repo_id}])
        for i in range(3):
            alice.upload_file(path_or_fileobj=b"%d" % i, path_in_repo=f"{i}.txt", repo_id=repo_id)
        hook.wait_for(3)
        # all three delivered elsewhere while the stuck webhook's first attempt still hangs
        first = deliveries(hook_server, stuck.id)
        assert len(first) == 3 and all(d["status"] == "pending" for d in first)
        wait_until(lambda: any(d["log"] for d in deliveries(hook_server, stuck.id)))
        logged = [a for d in deliveries(hook_server, stuck.id) for a in d["log"]]
        assert logged[0]["statusCode"] is None and "timeout" in logged[0]["error"].lower()


def test_the_issue_session_with_a_pull_request(alice: HfApi, hook_server: LiveServer, hook: Receiver) -> None:
    """One webhook on both domains gets, in order: create, push, PR opened, comment, merge,
    settings change, delete (each step once the previous one's deliveries arrived)."""
    made = alice.create_webhook(url=hook.url, watched=[{"type": "user", "name": "alice"}],
                                domains=["repo", "discussion"], secret=SECRET)
    steps: list[int] = []

    def step(action: Callable[[], object]) -> None:
        action()
        hook_server.settle()  # the events handled: their deliveries exist
        wait_until(lambda: all(d["status"] == "succeeded" for d in deliveries(hook_server, made.id, limit=100)))
        steps.append(len(deliveries(hook_server, made.id, limit=100)))
        hook.wait_for(steps[-1])

    repo_id = f"alice/{unique()}"
    step(lambda: alice.create_repo(repo_id))
    step(lambda: alice.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a")], commit_message="push"))
    step(lambda: alice.create_commit(repo_id, [CommitOperationAdd("p.txt", b"p")], commit_message="p",
                                     create_pr=True))
    step(lambda: alice.comment_discussion(repo_id, 1, "looks good"))
    step(lambda: alice.merge_pull_request(repo_id, 1))
    step(lambda: alice.update_repo_settings(repo_id, private=True))
    step(lambda: alice.delete_repo(repo_id))
    payloads = parsed(hook.wait_for(steps[-1]))
    assert all(p.headers["x-webhook-secret"] == SECRET for p in hook.received)
    got = [[(p.event.action, p.event.scope, (p.updatedRefs or [None])[0] and p.updatedRefs[0].ref)  # type: ignore[index]
            for p in payloads[start:end]] for start, end in zip([0, *steps], steps, strict=False)]
    assert got == [
        [("create", "repo", None)],
        [("update", "repo.content", "refs/heads/main")],
        [("create", "discussion", None), ("update", "repo.content", "refs/pr/1")],
        [("create", "discussion.comment", None)],
        [("update", "repo.content", "refs/heads/main"), ("update", "discussion", None)],
        [("update", "repo.config", None)],
        [("delete", "repo", None)],
    ]
    merged = payloads[steps[3] + 1].discussion
    assert merged is not None and merged.status == "merged" and merged.changes is not None
    assert merged.changes.mergeCommitId == payloads[steps[3]].updatedRefs[0].newSha  # type: ignore[index]
