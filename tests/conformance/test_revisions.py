"""Done-when 3: branches, tags, pinned downloads, revert, history and squash through HfApi."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError


def _read(api: HfApi, repo_id: str, path: str, revision: str, cache: Path) -> bytes:
    local = hf_hub_download(repo_id, path, revision=revision, endpoint=api.endpoint, token=api.token,
                            cache_dir=cache)
    return Path(local).read_bytes()


def test_branch_tag_pin_revert_history_squash(api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    v1 = api.upload_file(path_or_fileobj=b"weights v1" * 100, path_in_repo="model.bin", repo_id=repo_id,
                         commit_message="v1")
    api.upload_file(path_or_fileobj=b"config v1", path_in_repo="config.json", repo_id=repo_id)
    api.create_tag(repo_id, tag="v1.0", tag_message="first release")
    tagged = api.list_repo_refs(repo_id).tags
    assert [(t.name, t.ref) for t in tagged] == [("v1.0", "refs/tags/v1.0")]

    # a branch from v1.0 evolves separately
    api.create_branch(repo_id, branch="dev/x", revision="v1.0")
    api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=repo_id, revision="dev/x")
    assert api.file_exists(repo_id, "dev.txt", revision="dev/x")
    assert not api.file_exists(repo_id, "dev.txt")

    # main moves on: v2 replaces the weights and drops the config
    v2 = api.create_commit(repo_id, operations=[
        CommitOperationAdd("model.bin", b"weights v2" * 100), CommitOperationDelete("config.json"),
    ], commit_message="v2")
    assert _read(api, repo_id, "model.bin", "main", tmp_path) == b"weights v2" * 100
    assert _read(api, repo_id, "model.bin", "v1.0", tmp_path) == b"weights v1" * 100
    assert _read(api, repo_id, "model.bin", v1.oid, tmp_path) == b"weights v1" * 100
    assert _read(api, repo_id, "config.json", "v1.0", tmp_path) == b"config v1"
    assert api.model_info(repo_id, revision="v1.0").sha == api.list_repo_refs(repo_id).tags[0].target_commit
    assert api.model_info(repo_id, revision=v2.oid[:7]).sha == v2.oid

    # revert: commit the tree of v1.0 on top of main
    old_files = set(api.list_repo_files(repo_id, revision="v1.0"))
    current = set(api.list_repo_files(repo_id))
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(f, _read(api, repo_id, f, "v1.0", tmp_path)) for f in sorted(old_files)
    ]
    ops += [CommitOperationDelete(f) for f in sorted(current - old_files)]
    revert = api.create_commit(repo_id, operations=ops, commit_message="Revert to v1.0")
    assert set(api.list_repo_files(repo_id)) == old_files
    assert _read(api, repo_id, "model.bin", "main", tmp_path) == b"weights v1" * 100
    tree_v1 = {e.path: e.blob_id for e in api.list_repo_tree(repo_id, revision="v1.0") if hasattr(e, "blob_id")}
    tree_now = {e.path: e.blob_id for e in api.list_repo_tree(repo_id) if hasattr(e, "blob_id")}
    assert tree_now == tree_v1

    history = api.list_repo_commits(repo_id)
    assert [c.title for c in history][:3] == ["Revert to v1.0", "v2", "Upload config.json with huggingface_hub"]
    assert history[0].commit_id == revert.oid
    assert history[-1].title == "initial commit"
    formatted = api.list_repo_commits(repo_id, formatted=True)
    assert formatted[0].formatted_title == "Revert to v1.0"

    # squash main: one commit, same files; tags still resolve
    api.super_squash_history(repo_id, commit_message="squashed")
    squashed = api.list_repo_commits(repo_id)
    assert [c.title for c in squashed] == ["squashed"]
    assert set(api.list_repo_files(repo_id)) == old_files
    assert _read(api, repo_id, "model.bin", "v1.0", tmp_path) == b"weights v1" * 100
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision=v2.oid)  # only reachable from the squashed history

    api.delete_tag(repo_id, tag="v1.0")
    api.delete_branch(repo_id, branch="dev/x")
    refs = api.list_repo_refs(repo_id)
    assert refs.tags == [] and [b.name for b in refs.branches] == ["main"]
    assert not api.revision_exists(repo_id, "dev/x")


def test_branch_and_tag_conflicts(api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    api.create_branch(repo_id, branch="b1")
    with pytest.raises(HfHubHTTPError) as info:
        api.create_branch(repo_id, branch="b1")
    assert (info.value.response.status_code, info.value.response.headers["X-Error-Code"]) == (409, "Conflict")
    api.create_branch(repo_id, branch="b1", exist_ok=True)
    api.create_tag(repo_id, tag="t1")
    with pytest.raises(HfHubHTTPError) as info:
        api.create_tag(repo_id, tag="t1")
    assert (info.value.response.status_code, info.value.response.headers["X-Error-Code"]) == (409, "Conflict")
    api.create_tag(repo_id, tag="t1", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as info:
        api.delete_branch(repo_id, branch="main")
    assert (info.value.response.status_code, info.value.response.headers["X-Error-Code"]) == (403, "Forbidden")
    with pytest.raises(RevisionNotFoundError) as missing:
        api.create_branch(repo_id, branch="b2", revision="no-such-rev")
    assert missing.value.response.status_code == 404
    assert sorted(b.name for b in api.list_repo_refs(repo_id).branches) == ["b1", "main"]


def test_pull_request_refs(api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    info = api.upload_file(path_or_fileobj=b"proposal", path_in_repo="p.txt", repo_id=repo_id, create_pr=True)
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    assert not api.file_exists(repo_id, "p.txt")
    assert _read(api, repo_id, "p.txt", "refs/pr/1", tmp_path) == b"proposal"
    api.upload_file(path_or_fileobj=b"more", path_in_repo="q.txt", repo_id=repo_id, revision="refs/pr/1")
    assert set(api.list_repo_files(repo_id, revision="refs/pr/1")) >= {"p.txt", "q.txt"}
    prs = api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests
    assert prs is not None and [p.ref for p in prs] == ["refs/pr/1"]


def test_tree_paths_info_and_pagination(api: HfApi, repo_name: str, server_url_headers: None = None) -> None:
    repo_id = f"acme/{repo_name}"
    api.create_repo(repo_id)
    ops = [CommitOperationAdd(f"dir/sub/f{i:04d}.txt", f"{i}".encode()) for i in range(1205)]
    ops.append(CommitOperationAdd("dir/a b.txt", b"space"))
    api.create_commit(repo_id, operations=ops, commit_message="many files")
    files = api.list_repo_files(repo_id)
    assert len(files) == 1207 and "dir/a b.txt" in files  # 1205 + "a b.txt" + .gitattributes
    top = list(api.list_repo_tree(repo_id))
    assert {(e.path, type(e).__name__) for e in top} == {(".gitattributes", "RepoFile"), ("dir", "RepoFolder")}
    sub = list(api.list_repo_tree(repo_id, path_in_repo="dir"))
    assert {e.path for e in sub} == {"dir/sub", "dir/a b.txt"}
    expanded = list(api.list_repo_tree(repo_id, path_in_repo="dir", expand=True))
    assert all(e.last_commit is not None and e.last_commit.title == "many files" for e in expanded)
    single = list(api.list_repo_tree(repo_id, path_in_repo="dir/a b.txt"))
    assert [e.path for e in single] == ["dir/a b.txt"]
    infos = api.get_paths_info(repo_id, ["dir/a b.txt", "dir", "missing.txt"])
    assert {type(i).__name__ for i in infos} == {"RepoFile", "RepoFolder"} and len(infos) == 2
    # a raw page walk: absolute Link URLs pinned to the commit
    r = httpx.get(f"{api.endpoint}/api/models/{repo_id}/tree/main?recursive=true")
    assert r.status_code == 200 and len(r.json()) == 1000
    nxt = r.links["next"]["url"]
    assert nxt.startswith(api.endpoint) and "/tree/" in nxt and "/main" not in nxt
