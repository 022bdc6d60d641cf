"""git and git-lfs over smart HTTP, with the real ``git`` and ``git-lfs`` (Debian) against a live
server (SQLite and PostgreSQL): clone, fetch, shallow, tags, pull request refs, push with LFS,
and a mirror round trip that keeps every commit id. The rules a push must pass and the hostile
inputs are in ``tests/integration/test_git_push_rules.py``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.hf_api import RepoFile

from tests.support.clients.run import run_client
from tests.support.git import Git, files_of, pkt, remote
from tests.support.receiver import receiver
from tests.support.server import TOKENS, LiveServer

CARD = b"---\nlicense: apache-2.0\npipeline_tag: text-classification\n---\n# Pushed with git\n"


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "home")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.mark.slow
def test_clone_of_minilm_is_its_snapshot_and_loads(
    xet_env: dict[str, str], api: HfApi, server: LiveServer, git: Git, tmp_path: Path,
) -> None:
    repo_id = f"acme/{unique('minilm-git')}"
    run_client("minilm.py", ["push", repo_id], xet_env)  # the weights through Xet
    extra = os.urandom(300_000)
    api.upload_file(path_or_fileobj=extra, path_in_repo="extra/weights.bin", repo_id=repo_id)  # through LFS
    tree = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True) if isinstance(e, RepoFile)}
    assert tree["model.safetensors"].xet_hash is not None
    assert tree["extra/weights.bin"].lfs is not None and tree["extra/weights.bin"].xet_hash is None

    snap = Path(run_client("xet_client.py", ["snapshot", repo_id], {**xet_env, "HF_HOME": str(tmp_path / "s")})["path"])
    clone = tmp_path / "clone"
    git.run("clone", remote(server, repo_id, user=None), str(clone))
    cloned, snapped = files_of(clone), files_of(snap)
    assert sorted(cloned) == sorted(snapped)
    assert all(cloned[name] == snapped[name] for name in snapped)  # byte-identical, LFS and Xet files alike
    assert git.out("rev-parse", "HEAD", cwd=clone) == api.list_repo_commits(repo_id)[0].commit_id

    loaded = run_client("minilm.py", ["local", str(clone)], xet_env)
    for row, local_row in zip(loaded["remote"], loaded["local"], strict=True):
        assert max(abs(a - b) for a, b in zip(row, local_row, strict=True)) < 1e-6


def test_push_with_git_lfs_is_a_commit_like_any_other(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    repo_id = api.create_repo(unique("pushed")).repo_id
    server.settle()  # its create event handled before the webhook exists
    with receiver() as hook:
        api.create_webhook(url=hook.url, watched=[{"type": "model", "name": repo_id}], domains=["repo"])
        clone = tmp_path / "work"
        git.run("clone", remote(server, repo_id), str(clone))
        weights = os.urandom(1_500_000)
        (clone / "weights.bin").write_bytes(weights)  # *.bin is tracked by the hub's .gitattributes
        (clone / "README.md").write_bytes(CARD)
        git.run("add", "-A", cwd=clone)
        git.run("commit", "-qm", "Add weights and a card", cwd=clone)
        git.run("push", "origin", "main", cwd=clone)  # git-lfs uploads weights.bin first (pre-push)
        head = git.out("rev-parse", "HEAD", cwd=clone)

        # huggingface_hub sees the same commit, the file as an LFS file, its bytes
        commits = api.list_repo_commits(repo_id)
        assert commits[0].commit_id == head and commits[0].title == "Add weights and a card"
        info = {s.rfilename: s for s in api.model_info(repo_id, files_metadata=True).siblings or []}
        assert info["weights.bin"].lfs is not None and info["weights.bin"].size == len(weights)
        path = hf_hub_download(repo_id, "weights.bin", endpoint=server.url, token=TOKENS["alice"],
                               cache_dir=tmp_path / "dl")
        assert Path(path).read_bytes() == weights

        # the catalog followed (through the queue), and the webhook fired with the pushed ref
        server.settle()
        model = api.model_info(repo_id)
        assert model.card_data is not None and model.card_data["license"] == "apache-2.0"
        assert model.pipeline_tag == "text-classification" and model.sha == head
        posts = [p.json() for p in hook.wait_for(1)]
        updates = [p for p in posts if p["event"] == {"action": "update", "scope": "repo.content"}]
        assert [u["updatedRefs"][0]["newSha"] for u in updates] == [head]
        assert updates[0]["updatedRefs"][0]["ref"] == "refs/heads/main"

    # a pointer-only clone: GIT_LFS_SKIP_SMUDGE=1 leaves the LFS files as their pointers
    thin = tmp_path / "thin"
    git.run("clone", remote(server, repo_id), str(thin), GIT_LFS_SKIP_SMUDGE="1")
    pointer = (thin / "weights.bin").read_bytes()
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\n") and len(pointer) < 200
    assert (thin / "README.md").read_bytes() == CARD


def test_fetch_shallow_tags_and_pull_request_refs(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    repo_id = api.create_repo(unique("fetched")).repo_id
    for n in range(3):
        api.create_commit(repo_id, [CommitOperationAdd(f"f{n}.txt", f"{n}\n".encode())], commit_message=f"c{n}")
    clone = tmp_path / "clone"
    git.run("clone", remote(server, repo_id), str(clone))

    # commits made through the API arrive with a fetch
    made = api.create_commit(repo_id, [CommitOperationAdd("later.txt", b"later\n")], commit_message="later").oid
    git.run("pull", "-q", "--ff-only", cwd=clone)
    assert git.out("rev-parse", "HEAD", cwd=clone) == made
    assert (clone / "later.txt").read_bytes() == b"later\n"

    # a shallow clone holds one commit
    shallow = tmp_path / "shallow"
    git.run("clone", "--depth", "1", remote(server, repo_id), str(shallow))
    assert git.out("rev-list", "--count", "HEAD", cwd=shallow) == "1"
    assert git.out("rev-parse", "HEAD", cwd=shallow) == made
    git.run("fetch", "-q", "--depth", "3", cwd=shallow)  # deepening (not --deepen: dulwich lacks deepen-relative)
    assert git.out("rev-list", "--count", "HEAD", cwd=shallow) == "3"

    # a tag; and a partial clone, which the server does not offer: git makes a full one
    first = api.list_repo_commits(repo_id)[-2].commit_id  # c0
    api.create_tag(repo_id, tag="v1", revision=first)
    tagged = tmp_path / "tagged"
    git.run("clone", "-q", "--branch", "v1", remote(server, repo_id), str(tagged))
    assert git.out("rev-parse", "HEAD", cwd=tagged) == first
    assert not (tagged / "later.txt").exists()
    partial = tmp_path / "partial"
    cloned = git.run("clone", "-q", "--filter=blob:none", remote(server, repo_id), str(partial))
    assert "filtering not recognized by server" in cloned.stderr
    assert (partial / "later.txt").read_bytes() == b"later\n"
    assert git.run("fsck", "--full", cwd=partial).returncode == 0

    # a pull request's ref: bob opens one through the API, fetches it with git, pushes to it
    bob = HfApi(endpoint=server.url, token=TOKENS["bob"])
    pr = bob.create_commit(repo_id, [CommitOperationAdd("pr.txt", b"pr\n")], commit_message="pr", create_pr=True)
    assert pr.pr_num is not None
    ref = f"refs/pr/{pr.pr_num}"
    bobs = tmp_path / "bobs"
    git.run("clone", "-q", remote(server, repo_id, user="bob"), str(bobs))
    git.run("fetch", "-q", "origin", f"{ref}:pr", cwd=bobs)
    git.run("checkout", "-q", "pr", cwd=bobs)
    assert (bobs / "pr.txt").read_bytes() == b"pr\n"
    (bobs / "pr.txt").write_bytes(b"pr, improved\n")
    git.run("commit", "-qam", "improve the pr", cwd=bobs)
    git.run("push", "-q", "origin", f"HEAD:{ref}", cwd=bobs)
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert {r.ref: r.target_commit for r in refs.pull_requests or []}[ref] == git.out("rev-parse", "HEAD", cwd=bobs)
    events = api.get_discussion_details(repo_id, pr.pr_num).events
    assert any(getattr(e, "summary", None) == "improve the pr" for e in events)
    # ... but not to main, which bob may not write
    refused = git.run("push", "origin", "HEAD:main", cwd=bobs, check=False)
    assert refused.returncode != 0 and "write access needed" in refused.stderr
    assert api.list_repo_commits(repo_id)[0].commit_id == made


def test_clone_needs_what_a_download_needs(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    private = api.create_repo(unique("hidden"), private=True).repo_id
    api.upload_file(path_or_fileobj=b"secret\n", path_in_repo="s.txt", repo_id=private)
    # anonymous: git is asked for credentials (401 + Basic), and without them fails
    answer = httpx.get(f"{server.url}/{private}/info/refs", params={"service": "git-upload-pack"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    failed = git.run("clone", remote(server, private, user=None), str(tmp_path / "a"), check=False)
    assert failed.returncode != 0 and not (tmp_path / "a" / "s.txt").exists()
    # an outsider with a token: as if it did not exist
    outsider = git.run("clone", remote(server, private, user="carol"), str(tmp_path / "c"), check=False)
    assert outsider.returncode != 0 and "not found" in outsider.stderr
    # the owner, with the token as the password, and the URL ending in .git
    git.run("clone", remote(server, private) + ".git", str(tmp_path / "o"))
    assert (tmp_path / "o" / "s.txt").read_bytes() == b"secret\n"
    # a dataset is served under /datasets/
    dataset = api.create_repo(unique("data"), repo_type="dataset").repo_id
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="d.csv", repo_id=dataset, repo_type="dataset")
    git.run("clone", remote(server, dataset, user=None, prefix="datasets/"), str(tmp_path / "d"))
    assert (tmp_path / "d" / "d.csv").read_bytes() == b"a,b\n1,2\n"
    # pushing takes a token: anonymous pushes are asked for one
    answer = httpx.get(f"{server.url}/{dataset}/info/refs", params={"service": "git-receive-pack"})
    assert answer.status_code == 401 and "Basic" in answer.headers["www-authenticate"]


def test_a_moved_repo_clones_under_its_old_id(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    old = api.create_repo(unique("old")).repo_id
    api.upload_file(path_or_fileobj=b"moved\n", path_in_repo="m.txt", repo_id=old)
    new = f"{old}-renamed"
    api.move_repo(old, new)
    clone = tmp_path / "c"
    git.run("clone", "-q", remote(server, old, user=None) + ".git", str(clone))  # git follows the 307
    assert (clone / "m.txt").read_bytes() == b"moved\n"
    assert git.out("remote", "get-url", "origin", cwd=clone).endswith(old + ".git")
    (clone / "m.txt").write_bytes(b"pushed through the new id\n")
    git.run("commit", "-qam", "after the move", cwd=clone)
    git.run("push", "-q", remote(server, new), "HEAD:main", cwd=clone)
    assert api.list_repo_commits(new)[0].title == "after the move"


def _fresh_clone(server: LiveServer, repo_id: str, wants: set[str]) -> bytes:
    """The pack a fresh clone of ``wants`` gets (the data band of the answer, reassembled)."""
    caps = b" multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2"
    lines = [pkt(b"want " + w.encode() + (caps if i == 0 else b"") + b"\n") for i, w in enumerate(sorted(wants))]
    answer = httpx.post(f"{server.url}/{repo_id}/git-upload-pack", content=b"".join(lines) + pkt(None) + pkt(b"done\n"),
                        headers={"Content-Type": "application/x-git-upload-pack-request"}, timeout=60)
    assert answer.status_code == 200
    data, at, body = b"", 0, answer.content
    while at < len(body):
        size = int(body[at:at + 4], 16)
        if size > 4 and body[at + 4] == 1:
            data += body[at + 5:at + size]
        at += max(size, 4)
    assert data.startswith(b"PACK")
    return data


def test_fresh_clones_get_the_stored_pack_of_the_state(
    api: HfApi, server: LiveServer, git: Git, tmp_path: Path,
) -> None:
    repo_id = api.create_repo(unique("packed")).repo_id
    for n in range(5):
        api.create_commit(repo_id, [CommitOperationAdd(f"f{n}.txt", f"{n}\n".encode() * 200)], commit_message=f"c{n}")
    stored = server.data_dir / "blobs" / "git-packs"
    git.run("clone", "-q", remote(server, repo_id, user=None), str(tmp_path / "first"))  # asks for the pack
    server.settle()
    tips = {git.out("rev-parse", "HEAD", cwd=tmp_path / "first")}
    served = _fresh_clone(server, repo_id, tips)
    mine = [p for p in stored.rglob("*.pack") if p.read_bytes() == served]
    assert len(mine) == 1  # the answer is the stored pack, as it is stored
    folder = mine[0].parent
    second = tmp_path / "second"
    git.run("clone", "-q", remote(server, repo_id, user=None), str(second))
    git.run("fsck", "--full", "--strict", cwd=second)
    assert files_of(second) == files_of(tmp_path / "first")

    # a new state is never answered with an old pack; its own comes after the next clone
    head = api.create_commit(repo_id, [CommitOperationAdd("new.txt", b"new\n")], commit_message="new").oid
    assert _fresh_clone(server, repo_id, {head}) != served
    third = tmp_path / "third"
    git.run("clone", "-q", remote(server, repo_id, user=None), str(third))
    assert git.out("rev-parse", "HEAD", cwd=third) == head and (third / "new.txt").exists()
    server.settle()
    assert [p.name for p in folder.iterdir()] != [mine[0].name] and len(list(folder.iterdir())) == 1
    assert _fresh_clone(server, repo_id, {head}) == next(folder.iterdir()).read_bytes()


def test_force_push_is_allowed_by_default(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    repo_id = api.create_repo(unique("forced")).repo_id
    api.upload_file(path_or_fileobj=b"one\n", path_in_repo="a.txt", repo_id=repo_id)
    clone = tmp_path / "c"
    git.run("clone", "-q", remote(server, repo_id), str(clone))
    (clone / "a.txt").write_bytes(b"rewritten\n")
    git.run("commit", "-q", "--amend", "-am", "rewritten", cwd=clone)
    plain = git.run("push", "origin", "main", cwd=clone, check=False)
    assert plain.returncode != 0  # git itself refuses a non-fast-forward without --force
    git.run("push", "-q", "--force", "origin", "main", cwd=clone)
    assert api.list_repo_commits(repo_id)[0].commit_id == git.out("rev-parse", "HEAD", cwd=clone)


def test_mirror_round_trip_keeps_every_commit_id(api: HfApi, server: LiveServer, git: Git, tmp_path: Path) -> None:
    source = api.create_repo(unique("source")).repo_id
    api.upload_file(path_or_fileobj=os.urandom(200_000), path_in_repo="w.bin", repo_id=source)
    api.upload_file(path_or_fileobj=b"# card\n", path_in_repo="README.md", repo_id=source)
    api.create_branch(source, branch="dev")
    api.create_commit(source, [CommitOperationAdd("dev.txt", b"dev\n")], commit_message="on dev", revision="dev")
    api.create_tag(source, tag="v1")
    mirror = tmp_path / "mirror.git"
    git.run("clone", "-q", "--mirror", remote(server, source), str(mirror))
    git.run("lfs", "fetch", "--all", cwd=mirror)

    target = api.create_repo(unique("target")).repo_id
    # the new repo's initial commit is replaced by the mirrored history (a force push)
    git.run("lfs", "push", "--all", remote(server, target), cwd=mirror)
    git.run("push", "-q", "--mirror", remote(server, target), cwd=mirror)

    def refs_of(repo_id: str) -> tuple[dict[str, str], dict[str, str]]:
        refs = api.list_repo_refs(repo_id)
        return {b.name: b.target_commit for b in refs.branches}, {t.name: t.target_commit for t in refs.tags}

    assert refs_of(target) == refs_of(source)
    for revision in ("main", "dev"):
        assert [c.commit_id for c in api.list_repo_commits(target, revision=revision)] == \
            [c.commit_id for c in api.list_repo_commits(source, revision=revision)]
    path = hf_hub_download(target, "w.bin", endpoint=server.url, token=TOKENS["alice"], cache_dir=tmp_path / "dl")
    original = hf_hub_download(source, "w.bin", endpoint=server.url, token=TOKENS["alice"], cache_dir=tmp_path / "o")
    assert Path(path).read_bytes() == Path(original).read_bytes()
