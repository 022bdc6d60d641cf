"""What a git push must pass, and the hostile pushes a real client never sends (SQLite and
PostgreSQL). Each refused push leaves every ref where it was, stores nothing, and the hub stays
``fsck`` clean (git's own fsck on a fresh clone, and ``modelyard fsck``).

The operator here forbids force pushes (the Hub's default, allowing them, is tested in
``tests/conformance/test_git.py``) and sets small limits, so that the bounds are reached cheaply.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, Tree
from huggingface_hub import CommitOperationAdd, HfApi

from tests.integration.conftest import BACKENDS
from tests.support.git import (
    ZERO,
    Git,
    deflate,
    finish_pack,
    make_pack,
    object_header,
    pack_header,
    raw_push,
    remote,
)
from tests.support.server import TOKENS, LiveServer, seeded_hub

REGULAR_LIMIT = 1_000_000  # bytes: larger files need LFS
OBJECT_LIMIT = 4_000_000  # the largest git object a push may hold
INFLATED_LIMIT = 10_000_000  # what a pack may inflate to in all


@pytest.fixture(scope="module", params=BACKENDS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"git-rules-{request.param}")) as made:
        made.extra_env.update({
            "MODELYARD_GIT_ALLOW_FORCE_PUSH": "false",
            "MODELYARD_MAX_REGULAR_FILE_SIZE": str(REGULAR_LIMIT),
            "MODELYARD_GIT_MAX_OBJECT_SIZE": str(OBJECT_LIMIT),
            "MODELYARD_GIT_MAX_PUSH_INFLATED": str(INFLATED_LIMIT),
        })
        with made.running() as live:
            yield live


@pytest.fixture
def api(hub: LiveServer) -> HfApi:
    return HfApi(endpoint=hub.url, token=TOKENS["alice"])


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "home")


@pytest.fixture
def repo(api: HfApi) -> str:
    repo_id = api.create_repo(f"rules-{uuid.uuid4().hex[:10]}").repo_id
    api.upload_file(path_or_fileobj=b"# rules\n", path_in_repo="README.md", repo_id=repo_id)
    return repo_id


def refs_of(api: HfApi, repo_id: str) -> dict[str, str]:
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    out = {f"refs/heads/{b.name}": b.target_commit for b in refs.branches}
    out.update({f"refs/tags/{t.name}": t.target_commit for t in refs.tags})
    out.update({p.ref: p.target_commit for p in refs.pull_requests or []})
    return out


def assert_clean(hub: LiveServer, git: Git, repo_id: str, tmp_path: Path, refs: dict[str, str], api: HfApi) -> None:
    """Nothing moved, and both fscks pass."""
    assert refs_of(api, repo_id) == refs
    clone = tmp_path / f"check-{uuid.uuid4().hex[:6]}"
    git.run("clone", "-q", "--mirror", remote(hub, repo_id), str(clone))
    git.run("fsck", "--full", "--strict", cwd=clone)
    checked = hub.cli("fsck", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def clone_of(hub: LiveServer, git: Git, repo_id: str, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    git.run("clone", "-q", remote(hub, repo_id), str(work))
    return work


def commit_of(files: dict[str, bytes], parents: list[str], message: str = "raw") -> tuple[Commit, list[object]]:
    """A commit whose (flat) tree holds ``files``, and every object it needs."""
    tree = Tree()
    objects: list[object] = []
    for name, data in files.items():
        blob = Blob.from_string(data)
        objects.append(blob)
        tree.add(name.encode(), 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = [p.encode() for p in parents]
    commit.author = commit.committer = b"Raw <raw@example.com>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode()
    return commit, [*objects, tree, commit]


# -- the rules, with the real git ------------------------------------------------------------------


def test_a_large_file_outside_lfs_is_refused(hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path) -> None:
    before = refs_of(api, repo)
    work = clone_of(hub, git, repo, tmp_path)
    (work / "big.dat").write_bytes(os.urandom(REGULAR_LIMIT + 1))  # *.dat is not tracked by LFS
    git.run("add", "big.dat", cwd=work)
    git.run("commit", "-qm", "big", cwd=work)
    pushed = git.run("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "big.dat" in pushed.stderr and "git-lfs" in pushed.stderr
    assert_clean(hub, git, repo, tmp_path, before, api)
    # tracked with git-lfs, the same file goes through
    git.run("reset", "-q", "--soft", "HEAD~1", cwd=work)
    git.run("rm", "-q", "--cached", "big.dat", cwd=work)
    git.run("lfs", "track", "*.dat", cwd=work)
    git.run("add", ".gitattributes", "big.dat", cwd=work)
    git.run("commit", "-qm", "big, through LFS", cwd=work)
    git.run("push", "-q", "origin", "main", cwd=work)
    assert refs_of(api, repo)["refs/heads/main"] == git.out("rev-parse", "HEAD", cwd=work)


def test_a_pointer_to_an_lfs_object_not_on_the_hub_is_refused(
    hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path,
) -> None:
    before = refs_of(api, repo)
    work = clone_of(hub, git, repo, tmp_path)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'ab' * 32}\nsize 12345\n"
    (work / "ghost.txt").write_text(pointer)  # committed as it is: nothing uploads an object for it
    git.run("add", "ghost.txt", cwd=work)
    git.run("commit", "-qm", "ghost", cwd=work)
    pushed = git.run("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "ghost.txt" in pushed.stderr and "not on the hub" in pushed.stderr
    assert_clean(hub, git, repo, tmp_path, before, api)


def test_refs_a_push_may_move(hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path) -> None:
    work = clone_of(hub, git, repo, tmp_path)
    (work / "a.txt").write_text("a\n")
    git.run("add", "a.txt", cwd=work)
    git.run("commit", "-qm", "a", cwd=work)
    before = refs_of(api, repo)
    for target in ("HEAD:refs/foo/bar", "HEAD:refs/pr/77", "HEAD:refs/convert/parquet", ":main"):
        pushed = git.run("push", "origin", target, cwd=work, check=False)
        assert pushed.returncode != 0, target
        assert "[remote rejected]" in pushed.stderr, pushed.stderr
    assert "deleting the default branch" in git.run("push", "origin", ":main", cwd=work, check=False).stderr
    # one good ref and one bad in the same push: neither moves
    both = git.run("push", "origin", "HEAD:main", "HEAD:refs/foo/bar", cwd=work, check=False)
    assert both.returncode != 0 and "all or nothing" in both.stderr
    assert_clean(hub, git, repo, tmp_path, before, api)
    # branches and tags are made and removed; a reader may push none of them
    git.run("push", "-q", "origin", "HEAD:refs/heads/dev", "HEAD:refs/tags/v1", cwd=work)
    after = refs_of(api, repo)
    assert after["refs/heads/dev"] == after["refs/tags/v1"] == git.out("rev-parse", "HEAD", cwd=work)
    git.run("push", "-q", "origin", ":dev", ":refs/tags/v1", cwd=work)
    assert refs_of(api, repo) == before
    bobs = tmp_path / "bobs"
    git.run("clone", "-q", remote(hub, repo, user="bob"), str(bobs))
    (bobs / "b.txt").write_text("b\n")
    git.run("add", "b.txt", cwd=bobs)
    git.run("commit", "-qm", "b", cwd=bobs)
    refused = git.run("push", "origin", "HEAD:refs/heads/bobs", cwd=bobs, check=False)
    assert refused.returncode != 0 and "write access needed" in refused.stderr
    assert_clean(hub, git, repo, tmp_path, before, api)


def test_force_push_follows_the_operator(hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path) -> None:
    work = clone_of(hub, git, repo, tmp_path)
    before = refs_of(api, repo)
    git.run("commit", "-q", "--amend", "-m", "rewritten", cwd=work)
    pushed = git.run("push", "--force", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "non-fast-forward" in pushed.stderr
    assert_clean(hub, git, repo, tmp_path, before, api)


def test_racing_pushes_and_commits_one_wins(hub: LiveServer, api: HfApi, repo: str, tmp_path: Path) -> None:
    head = refs_of(api, repo)["refs/heads/main"]
    built = [commit_of({"README.md": b"# rules\n", f"n{i}.txt": f"{i}\n".encode()}, [head], f"push {i}")
             for i in range(4)]
    reports: list[object] = [None] * 4
    api_result: list[object] = []

    def push(i: int) -> None:
        commit, objects = built[i]
        reports[i] = raw_push(hub, repo, [(head, commit.id.decode(), "refs/heads/main")], make_pack(objects))

    def commit_via_api() -> None:
        try:
            api_result.append(api.create_commit(repo, [CommitOperationAdd("api.txt", b"api\n")],
                                                commit_message="api", parent_commit=head).oid)
        except Exception as exc:  # noqa: BLE001 - a lost race is the expected answer for all but one
            api_result.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=commit_via_api))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won_by_push = [r for r in reports if r.refs["refs/heads/main"] == "ok"]  # type: ignore[attr-defined]
    won_by_api = [r for r in api_result if isinstance(r, str)]
    assert len(won_by_push) + len(won_by_api) == 1
    for report in reports:
        assert report.unpack == "ok"  # type: ignore[attr-defined]
        if report not in won_by_push:
            assert "fetch first" in report.refs["refs/heads/main"]  # type: ignore[attr-defined]
    final = refs_of(api, repo)["refs/heads/main"]
    winners = {c.id.decode() for c, _o in built} | set(won_by_api)
    assert final in winners
    assert {c.commit_id for c in api.list_repo_commits(repo)[:2]} == {final, head}  # newest first


# -- hostile pushes --------------------------------------------------------------------------------


def test_malformed_requests_are_refused(hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path) -> None:
    before = refs_of(api, repo)
    head = before["refs/heads/main"]
    commit, objects = commit_of({"x.txt": b"x\n"}, [head])
    good = make_pack(objects)
    new = commit.id.decode()
    main = [(head, new, "refs/heads/main")]
    # pkt-lines that are not pkt-lines; a command line that is not one
    assert raw_push(hub, repo, [], body=b"zzzz not a pkt-line").status == 400
    assert raw_push(hub, repo, [], body=b"0010short").status == 400
    assert raw_push(hub, repo, [], body=b"0018not a command line\n0000").status == 400
    # packs that are truncated, corrupt, or not packs; object ids that name nothing sent
    for pack in (good[:-30], good[:40], good[:12] + bytes(len(good) - 12), b"JUNK" + good[4:], good + b"extra"):
        report = raw_push(hub, repo, main, pack)
        assert report.status == 200 and report.unpack not in (None, "ok"), report.text
        assert report.refs == {"refs/heads/main": "unpacker error"}
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    assert raw_push(hub, repo, main, bytes(flipped)).unpack != "ok"
    lying = raw_push(hub, repo, [(head, "1" * 40, "refs/heads/main")], good)
    assert "did not send" in lying.refs["refs/heads/main"]
    # an object that inflates to more than its header says, or to less
    data = b"twenty bytes of data"
    for declared in (10, 30):
        pack = finish_pack(pack_header(1) + object_header(3, declared) + deflate(data))
        assert "declared size" in str(raw_push(hub, repo, main, pack).unpack)
    # ref names git itself refuses
    for bad in ("refs/heads/a..b", "refs/heads/a\x01b", "refs/heads/x.lock", "refs/heads/-x", "HEAD"):
        report = raw_push(hub, repo, [(ZERO, head, bad)])
        assert report.refs.get(bad, "") != "ok", (bad, report.text)
    assert_clean(hub, git, repo, tmp_path, before, api)


def test_zip_bombs_are_refused_before_they_inflate(
    hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path,
) -> None:
    before = refs_of(api, repo)
    head = before["refs/heads/main"]
    main = [(head, "2" * 40, "refs/heads/main")]
    # one blob declared (and compressed) far past the object limit: 100 MB of zeros in ~100 KB
    bomb = finish_pack(pack_header(1) + object_header(3, 100_000_000) + zlib.compress(bytes(100_000_000), 9))
    report = raw_push(hub, repo, main, bomb)
    assert "over the 4000000-byte limit" in str(report.unpack) and "git-lfs" in str(report.unpack)
    # many objects each under the limit, too many bytes together
    each = OBJECT_LIMIT - 1000
    many = pack_header(4) + b"".join(object_header(3, each) + deflate(bytes(each - i) + b"x" * i) for i in range(4))
    assert "inflates to more than" in str(raw_push(hub, repo, main, finish_pack(many)).unpack)
    # a delta whose result is declared past the limit (on a base the repo holds)
    readme = api.list_repo_tree(repo)
    base = next(e for e in readme if e.path == "README.md").blob_id
    delta = bytes([8]) + bytes([0x80 | 0, 0x80 | 0, 0x80 | 0, 0x04])  # base size 8, result 4 << 21 = 8 MiB
    pack = finish_pack(pack_header(1) + object_header(7, len(delta)) + bytes.fromhex(base) + deflate(delta))
    assert "limit" in str(raw_push(hub, repo, main, pack).unpack)
    assert_clean(hub, git, repo, tmp_path, before, api)


def test_no_push_reaches_another_repos_objects(
    hub: LiveServer, api: HfApi, git: Git, repo: str, tmp_path: Path,
) -> None:
    """Objects live once in the database, shared by content: a push naming (or building on) an
    object only a private repo of somebody else holds is refused as if the object did not exist."""
    bob = HfApi(endpoint=hub.url, token=TOKENS["bob"])
    secret_repo = bob.create_repo(f"secret-{uuid.uuid4().hex[:8]}", private=True).repo_id
    secret = bob.upload_file(path_or_fileobj=b"bob's secret\n", path_in_repo="secret.txt", repo_id=secret_repo).oid
    secret_blob = next(e for e in bob.list_repo_tree(secret_repo) if e.path == "secret.txt").blob_id
    before = refs_of(api, repo)
    head = before["refs/heads/main"]
    # a tree naming bob's blob, not sending it
    tree = Tree()
    tree.add(b"stolen.txt", 0o100644, secret_blob.encode())
    commit, _objects = commit_of({}, [head])
    commit.tree = tree.id
    report = raw_push(hub, repo, [(head, commit.id.decode(), "refs/heads/main")], make_pack([tree, commit]))
    assert "does not hold" in report.refs["refs/heads/main"]
    # a commit with bob's commit as its parent
    child, objects = commit_of({"a.txt": b"a\n"}, [secret])
    report = raw_push(hub, repo, [(head, child.id.decode(), "refs/heads/main")], make_pack(objects))
    assert "does not hold" in report.refs["refs/heads/main"]
    # a ref pointed straight at bob's commit
    report = raw_push(hub, repo, [(ZERO, secret, "refs/heads/stolen")])
    assert report.refs["refs/heads/stolen"] != "ok"
    # a thin pack whose delta base is bob's blob
    delta = bytes([13, 13]) + bytes([0x90, 13])  # sizes 13 -> 13, then copy 13 bytes from offset 0
    thin = finish_pack(pack_header(1) + object_header(7, len(delta)) + bytes.fromhex(secret_blob) + deflate(delta))
    report = raw_push(hub, repo, [(head, "3" * 40, "refs/heads/main")], thin)
    assert "base" in str(report.unpack)
    assert_clean(hub, git, repo, tmp_path, before, api)
    # ... and the clone of bob's repo stays his
    failed = git.run("clone", remote(hub, secret_repo), str(tmp_path / "steal"), check=False)
    assert failed.returncode != 0


def test_gc_removes_the_clone_packs_of_deleted_repos(hub: LiveServer, api: HfApi, git: Git, repo: str,
                                                     tmp_path: Path) -> None:
    """The clone cache keeps a pack per repo state in the blob store; a deleted repo's goes with gc."""
    packs = hub.data_dir / "blobs" / "git-packs"
    hub.settle()  # earlier tests' pack jobs done (a job may replace its repo's older pack)
    before = set(packs.rglob("*.pack")) if packs.exists() else set()
    git.run("clone", "-q", remote(hub, repo), str(tmp_path / "c"))  # a fresh clone asks for the pack
    hub.settle()
    made = set(packs.rglob("*.pack")) - before
    assert len(made) == 1
    api.delete_repo(repo)
    report = json.loads(hub.cli("gc").stdout.strip().splitlines()[-1])
    assert report["clone_packs"] >= 1
    assert not any(p.exists() for p in made)
    assert all(p.exists() for p in before)  # the packs of live repos stay
