"""Pull requests with the real client: open with create_commit(create_pr=True), push to refs/pr/N,
diff, comment, merge (fast-forward and three-way), conflicts; and the same with the ``hf discussions`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.community import DiscussionCommit, DiscussionStatusChange
from huggingface_hub.errors import HfHubHTTPError

from tests.support.server import LiveServer

HF = str(Path(sys.executable).parent / "hf")


def add(path: str, content: bytes) -> CommitOperationAdd:
    return CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)


@pytest.fixture
def repo(api: HfApi, repo_name: str) -> str:
    rid = api.create_repo(repo_name).repo_id
    api.create_commit(rid, [add("a.txt", b"one\n"), add("keep.txt", b"kept\n")], commit_message="base")
    return rid


def read(server: LiveServer, repo: str, path: str, revision: str, tmp_path: Path) -> bytes:
    return Path(hf_hub_download(repo, path, revision=revision, endpoint=server.url, cache_dir=tmp_path / "c",
                                token=False)).read_bytes()


def test_pr_round_trip(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str, server: LiveServer,
                       tmp_path: Path) -> None:
    bob = api_as("bob")  # reads alice's public repo, may not write it
    info = bob.create_commit(repo, [add("a.txt", b"two\n"), add("w.bin", b"\x00" * 2048)],
                             commit_message="Change a", commit_description="Please **merge**", create_pr=True)
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    with pytest.raises(HfHubHTTPError) as denied:  # main stays alice's
        bob.create_commit(repo, [add("a.txt", b"x")], commit_message="direct")
    assert denied.value.response.status_code == 403
    second = bob.create_commit(repo, [add("b.txt", b"new\n"), CommitOperationDelete("keep.txt")],
                               commit_message="Add b", revision="refs/pr/1")
    details = api.get_discussion_details(repo, 1)
    assert details.is_pull_request and details.status == "draft" and details.author == "bob"
    assert details.title == "Change a" and details.target_branch == "refs/heads/main"
    assert details.conflicting_files == [] and details.merge_commit_oid is None
    commits = [e for e in details.events if isinstance(e, DiscussionCommit)]
    assert [(c.summary, c.oid) for c in commits] == [("Change a", info.oid), ("Add b", second.oid)]
    assert details.events[0].content == "Please **merge**"  # type: ignore[attr-defined]
    diff = details.diff or ""
    assert "diff --git a/a.txt b/a.txt" in diff and "-one" in diff and "+two" in diff
    assert "+new" in diff and "-kept" in diff
    assert "version https://git-lfs.github.com/spec/v1" in diff  # LFS files as their pointer text
    api.comment_discussion(repo, 1, "LGTM")
    with pytest.raises(HfHubHTTPError) as denied:  # merging needs write access
        bob.merge_pull_request(repo, 1)
    assert denied.value.response.status_code == 403
    api.merge_pull_request(repo, 1, comment="Thanks!")
    merged = api.get_discussion_details(repo, 1)
    main = api.list_repo_refs(repo).branches[0].target_commit
    assert merged.status == "merged" and merged.merge_commit_oid == main == second.oid  # fast-forward
    assert isinstance(merged.events[-2], DiscussionStatusChange) and merged.events[-2].new_status == "merged"
    assert set(api.list_repo_files(repo)) == {".gitattributes", "a.txt", "b.txt", "w.bin"}
    assert read(server, repo, "a.txt", "main", tmp_path) == b"two\n"
    assert "+two" in (merged.diff or "")
    for attempt in (lambda: api.merge_pull_request(repo, 1), lambda: bob.comment_discussion(repo, 1, "more"),
                    lambda: bob.create_commit(repo, [add("c.txt", b"c")], commit_message="late",
                                              revision="refs/pr/1"),
                    lambda: api.change_discussion_status(repo, 1, "open")):
        with pytest.raises(HfHubHTTPError) as refused:
            attempt()
        assert refused.value.response.status_code == 409
    assert api.list_repo_refs(repo).branches[0].target_commit == main


def test_three_way_merge_and_conflicts(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str,
                                       server: LiveServer, tmp_path: Path) -> None:
    bob = api_as("bob")
    clean = bob.create_commit(repo, [add("b.txt", b"from pr\n")], commit_message="Add b", create_pr=True)
    clash = bob.create_commit(repo, [add("a.txt", b"pr version\n")], commit_message="Edit a", create_pr=True)
    api.create_commit(repo, [add("a.txt", b"main version\n"), add("m.txt", b"m\n")], commit_message="main moves")
    head = api.list_repo_refs(repo).branches[0].target_commit
    conflicted = api.get_discussion_details(repo, clash.pr_num)  # type: ignore[arg-type]
    assert conflicted.conflicting_files == ["a.txt"]
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, clash.pr_num)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 409
    assert refused.value.response.headers["X-Error-Code"] == "MergeConflict"
    assert api.list_repo_refs(repo).branches[0].target_commit == head  # nothing changed
    assert api.get_discussion_details(repo, clash.pr_num).status == "draft"  # type: ignore[arg-type]
    assert api.get_discussion_details(repo, clean.pr_num).conflicting_files == []  # type: ignore[arg-type]
    api.merge_pull_request(repo, clean.pr_num)  # type: ignore[arg-type]
    merged = api.get_discussion_details(repo, clean.pr_num)  # type: ignore[arg-type]
    new_head = api.list_repo_refs(repo).branches[0].target_commit
    assert merged.merge_commit_oid == new_head != clean.oid  # a merge commit on top of main
    parents = api.list_repo_commits(repo)[0]
    assert parents.commit_id == new_head
    assert read(server, repo, "a.txt", "main", tmp_path) == b"main version\n"
    assert read(server, repo, "b.txt", "main", tmp_path) == b"from pr\n"
    assert read(server, repo, "m.txt", "main", tmp_path) == b"m\n"


def test_empty_or_closed_prs_do_not_merge(api: HfApi, repo: str) -> None:
    empty = api.create_pull_request(repo, "Nothing yet")
    assert empty.status == "draft" and empty.git_reference == "refs/pr/1" and empty.diff == ""
    head = api.list_repo_refs(repo).branches[0].target_commit
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, empty.num)
    assert refused.value.response.status_code == 409
    api.create_commit(repo, [add("x.txt", b"x")], commit_message="x", revision="refs/pr/1")
    api.change_discussion_status(repo, empty.num, "closed")
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(repo, empty.num)
    assert refused.value.response.status_code == 409
    assert api.list_repo_refs(repo).branches[0].target_commit == head
    api.change_discussion_status(repo, empty.num, "open")
    api.merge_pull_request(repo, empty.num)
    assert api.get_discussion_details(repo, empty.num).status == "merged"


def hf(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([HF, "discussions", *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_the_hf_discussions_cli(api: HfApi, repo: str, hf_env: dict[str, str], tokens: dict[str, str]) -> None:
    bob_env = {**hf_env, "HF_TOKEN": tokens["bob"]}
    hf(bob_env, "create", repo, "--title", "Question from the CLI", "--body", "Hello")
    api.create_commit(repo, [add("a.txt", b"cli\n")], commit_message="CLI change", create_pr=True)
    listed = json.loads(hf(hf_env, "list", repo, "--status", "all", "--format", "json"))
    assert {(d["num"], d["title"]) for d in listed} == {(1, "Question from the CLI"), (2, "CLI change")}
    assert "+cli" in hf(hf_env, "diff", repo, "2")
    hf(bob_env, "comment", repo, "1", "--body", "A comment")
    info = json.loads(hf(hf_env, "info", repo, "1", "--format", "json"))
    comment_id = [e for e in info["events"] if e["type"] == "comment"][-1]["id"]
    hf(bob_env, "edit", repo, "1", comment_id, "--body", "Edited")
    hf(bob_env, "rename", repo, "1", "Renamed from the CLI")
    hf(bob_env, "close", repo, "1", "--yes")
    hf(hf_env, "reopen", repo, "1", "--yes")
    hf(hf_env, "merge", repo, "2", "--yes")
    one, two = api.get_discussion_details(repo, 1), api.get_discussion_details(repo, 2)
    assert one.title == "Renamed from the CLI" and one.status == "open"
    assert any(getattr(e, "content", None) == "Edited" for e in one.events)
    assert two.status == "merged"
    assert api.list_repo_refs(repo).branches[0].target_commit == two.merge_commit_oid


XET_PR = """
import json, sys
from huggingface_hub import CommitOperationAdd, HfApi
api = HfApi()
repo, path = sys.argv[1], sys.argv[2]
first = api.create_commit(repo, [CommitOperationAdd("w.bin", path)], commit_message="xet pr", create_pr=True)
again = api.create_commit(repo, [CommitOperationAdd("w2.bin", path + "2")], commit_message="again",
                          revision=first.pr_revision)
print(json.dumps({"num": first.pr_num, "oid": again.oid}))
"""


@pytest.mark.slow
def test_a_reader_opens_a_pr_through_xet(api: HfApi, repo: str, xet_env: dict[str, str], tokens: dict[str, str],
                                         tmp_path: Path) -> None:
    """The default client (Xet on) as a user without write access: the Xet write token is issued
    for ``create_pr=1`` and for the user's own ``refs/pr/N``, and nothing reaches main."""
    import random

    rng = random.Random(5)
    (tmp_path / "w.bin").write_bytes(rng.randbytes(300_000))
    (tmp_path / "w.bin2").write_bytes(rng.randbytes(300_000))
    env = {**xet_env, "HF_TOKEN": tokens["bob"]}
    done = subprocess.run([sys.executable, "-c", XET_PR, repo, str(tmp_path / "w.bin")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    files = {e.path: e for e in api.list_repo_tree(repo, revision=f"refs/pr/{result['num']}")}
    assert files["w.bin"].xet_hash and files["w2.bin"].xet_hash  # type: ignore[union-attr]
    assert "w.bin" not in api.list_repo_files(repo)
    assert api.get_discussion_details(repo, result["num"]).author == "bob"


def test_concurrent_comments_pushes_and_a_merge(api: HfApi, api_as: Callable[[str | None], HfApi],
                                                repo: str) -> None:
    """Comments, pushes to the PR and its merge at the same time: each either lands or is refused
    cleanly (409), never a server error or a lost event; numbers stay unique."""
    from concurrent.futures import ThreadPoolExecutor

    bob = api_as("bob")
    pr = bob.create_commit(repo, [add("p0.txt", b"0")], commit_message="p0", create_pr=True)
    num = pr.pr_num
    assert num is not None

    def push(i: int) -> str:
        return bob.create_commit(repo, [add(f"p{i}.txt", str(i).encode())], commit_message=f"p{i}",
                                 revision=pr.pr_revision).oid

    def talk(i: int) -> int:  # a comment after the merge is refused: the PR is merged
        return status_code(lambda: api.comment_discussion(repo, num, f"comment {i}"))

    def opened(i: int) -> int:
        return bob.create_discussion(repo, f"parallel {i}").num

    def merge() -> int:
        return status_code(lambda: api.merge_pull_request(repo, num))

    with ThreadPoolExecutor(8) as pool:
        pushes = [pool.submit(lambda i=i: status_code(lambda: push(i))) for i in range(1, 5)]
        comments = [pool.submit(talk, i) for i in range(6)]
        threads = [pool.submit(opened, i) for i in range(6)]
        merged = pool.submit(merge)
        results = [f.result() for f in pushes], [f.result() for f in comments], [f.result() for f in threads]
    assert merged.result() == 200
    assert set(results[0]) <= {200, 409} and set(results[1]) <= {200, 409}  # 409: after the merge
    assert len(set(results[2])) == 6
    details = api.get_discussion_details(repo, num)
    assert details.status == "merged"
    assert len([e for e in details.events if e.type == "commit"]) == 1 + results[0].count(200)
    assert len([e for e in details.events if e.type == "comment"]) == results[1].count(200)
    main = {f for f in api.list_repo_files(repo) if f.startswith("p")}
    assert "p0.txt" in main


def status_code(call: Callable[[], object]) -> int:
    try:
        call()
    except HfHubHTTPError as exc:
        return exc.response.status_code
    return 200
