"""Hub parity for ``.gitignore``: ``preupload`` answers ``shouldIgnore`` from the repo's
``.gitignore`` at the revision, or from the one the commit adds (the client sends its text as
``gitIgnore``), so ``upload_folder`` and ``create_commit`` skip exactly what git would ignore.

The expected sets come from real ``git check-ignore`` on the same files, and are also spelled
out, so a wrong matcher and a wrong reference both show.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.support.clients.run import run_client
from tests.support.gitcheck import git_ignored
from tests.support.server import TOKENS, LiveServer

ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}
BINARY = b"\x00weights\x00" * 200  # preupload answers "lfs" for it

REPO_GITIGNORE = """# kept in the repo
*.log
!keep.log
build/
/secret.txt
checkpoints/**/tmp*
[Tt]emp/
\\#notes.md
*.bin
!weights/*.bin
trailing.txt   
"""

FOLDER: dict[str, bytes] = {
    "main.py": b"print()\n",
    "a.log": b"log",
    "keep.log": b"kept",
    "logs/deep/x.log": b"log",
    "build/out.txt": b"out",
    "src/build/y.txt": b"y",
    "secret.txt": b"s",
    "src/secret.txt": b"not anchored here",
    "checkpoints/step1/tmp-1.txt": b"t",
    "checkpoints/tmpx.txt": b"t",  # "**/" matches no folder too
    "checkpoints/stepx.txt": b"s",
    "checkpoints/step1/model.txt": b"m",
    "Temp/a.txt": b"a",
    "temp/b.txt": b"b",
    "tEmp/c.txt": b"c",
    "#notes.md": b"n",
    "notes.md": b"n",
    "data/big.bin": BINARY + b"ignored",
    "weights/model.bin": BINARY + b"kept",
    "trailing.txt": b"t",
}
KEPT = {"main.py", "keep.log", "src/secret.txt", "checkpoints/step1/model.txt", "checkpoints/stepx.txt",
        "tEmp/c.txt", "notes.md", "weights/model.bin"}


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def repo_files(api: HfApi, repo_id: str, revision: str | None = None) -> set[str]:
    info = api.model_info(repo_id, revision=revision)
    return {s.rfilename for s in info.siblings or []}


def lfs_stored(server: LiveServer, data: bytes) -> bool:
    oid = hashlib.sha256(data).hexdigest()
    return (server.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid).exists()


def test_the_expected_sets_are_gits(tmp_path: Path) -> None:
    assert set(FOLDER) - git_ignored(tmp_path, REPO_GITIGNORE, list(FOLDER)) == KEPT


def test_upload_folder_skips_what_the_repos_gitignore_ignores(
    api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    api.upload_file(path_or_fileobj=REPO_GITIGNORE.encode(), path_in_repo=".gitignore", repo_id=repo_id)
    info = api.upload_folder(folder_path=write_folder(tmp_path / "up", FOLDER), repo_id=repo_id)
    assert repo_files(api, repo_id, info.oid) == {".gitattributes", ".gitignore"} | KEPT
    # an ignored LFS file is not even uploaded; the kept one is
    assert not lfs_stored(server, FOLDER["data/big.bin"])
    assert lfs_stored(server, FOLDER["weights/model.bin"])


def test_a_gitignore_in_the_commit_decides_over_the_repos(
    api: HfApi, repo_name: str, tmp_path: Path
) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    api.upload_file(path_or_fileobj=b"*.log\n", path_in_repo=".gitignore", repo_id=repo_id)
    folder = {".gitignore": b"*.tmp\n/out/\n", "a.log": b"a", "b.tmp": b"b", "c.txt": b"c",
              "out/x.txt": b"x", "sub/out/y.txt": b"y"}
    api.upload_folder(folder_path=write_folder(tmp_path / "up", folder), repo_id=repo_id)
    assert repo_files(api, repo_id) == {".gitattributes", ".gitignore", "a.log", "c.txt", "sub/out/y.txt"}
    committed = api.hf_hub_download(repo_id, ".gitignore", cache_dir=tmp_path / "c")
    assert Path(committed).read_bytes() == folder[".gitignore"]
    # the next upload follows the .gitignore now in the repo: *.log files go up, *.tmp do not
    api.create_commit(repo_id, operations=[CommitOperationAdd("d.log", b"d"), CommitOperationAdd("e.tmp", b"e")],
                      commit_message="more")
    assert {"d.log"} <= repo_files(api, repo_id) and "e.tmp" not in repo_files(api, repo_id)


def test_create_commit_with_a_new_gitignore_skips_in_the_same_commit(api: HfApi, repo_name: str) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    api.create_commit(repo_id, operations=[
        CommitOperationAdd(".gitignore", b"cache/\n*.tmp\n!keep.tmp\n"),
        CommitOperationAdd("cache/a.txt", b"a"), CommitOperationAdd("x.tmp", b"x"),
        CommitOperationAdd("keep.tmp", b"k"), CommitOperationAdd("y.txt", b"y"),
        CommitOperationAdd("cache/w.bin", BINARY),
    ], commit_message="with gitignore")
    assert repo_files(api, repo_id) == {".gitattributes", ".gitignore", "keep.tmp", "y.txt"}


def test_a_gitignore_that_ignores_itself_is_not_committed(api: HfApi, repo_name: str) -> None:
    """As git would not add it: ``.*`` matches ``.gitignore`` itself."""
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    api.create_commit(repo_id, operations=[
        CommitOperationAdd(".gitignore", b".*\n"), CommitOperationAdd(".env", b"secret"),
        CommitOperationAdd("a.txt", b"a"),
    ], commit_message="hidden files ignored")
    assert repo_files(api, repo_id) == {".gitattributes", "a.txt"}


def preupload(server: LiveServer, repo_id: str, rev: str, paths: list[str], **extra: object) -> httpx.Response:
    body = {"files": [{"path": p, "sample": "", "size": 1} for p in paths], **extra}
    return httpx.post(f"{server.url}/api/models/{repo_id}/preupload/{rev}", timeout=30,
                      headers={**ALICE, "Content-Type": "application/json"}, content=json.dumps(body).encode())


def test_preupload_reads_the_gitignore_at_the_revision(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    paths = ["a.log", "b.tmp", "c.txt"]
    r = preupload(server, repo_id, "main", paths)
    assert {f["path"]: f["shouldIgnore"] for f in r.json()["files"]} == dict.fromkeys(paths, False)
    api.upload_file(path_or_fileobj=b"*.log\n", path_in_repo=".gitignore", repo_id=repo_id)
    api.create_branch(repo_id, branch="dev")
    api.upload_file(path_or_fileobj=b"*.tmp\n", path_in_repo=".gitignore", repo_id=repo_id, revision="dev")
    for rev, ignored in [("main", {"a.log"}), ("dev", {"b.tmp"})]:
        r = preupload(server, repo_id, rev, paths)
        assert r.status_code == 200, r.text
        assert {f["path"] for f in r.json()["files"] if f["shouldIgnore"]} == ignored, rev
    # the request's gitIgnore wins over the repo's, and an empty one ignores nothing
    r = preupload(server, repo_id, "main", paths, gitIgnore="c.*\n")
    assert {f["path"] for f in r.json()["files"] if f["shouldIgnore"]} == {"c.txt"}
    r = preupload(server, repo_id, "main", paths, gitIgnore="")
    assert not any(f["shouldIgnore"] for f in r.json()["files"])
    # a pattern that is no UTF-8 (JSON allows a lone surrogate) matches nothing; the others work
    r = preupload(server, repo_id, "main", paths, gitIgnore="\ud800\n*.txt\n")
    assert r.status_code == 200, r.text
    assert {f["path"] for f in r.json()["files"] if f["shouldIgnore"]} == {"c.txt"}


def test_preupload_refuses_a_bad_gitignore(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    for bad in [5, ["*.log"], {"x": 1}, "x\n" * 2001, "x" * 1025, ("y" * 1000 + "\n") * 17]:
        r = preupload(server, repo_id, "main", ["a.txt"], gitIgnore=bad)
        assert r.status_code == 400 and r.headers["X-Error-Code"] == "BadRequest", (str(bad)[:20], r.text)


def test_a_stored_gitignore_past_the_limits_ignores_nothing(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """A .gitignore committed without the client (raw NDJSON here) may be past the limits the
    client's own request is held to: the repo stays writable and nothing is ignored."""
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    huge = "*.log\n" + "x\n" * 2001
    lines = [{"key": "header", "value": {"summary": "big .gitignore"}},
             {"key": "file", "value": {"path": ".gitignore", "content": base64.b64encode(huge.encode()).decode(),
                                       "encoding": "base64"}}]
    r = httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", timeout=30,
                   headers={**ALICE, "Content-Type": "application/x-ndjson"},
                   content="\n".join(json.dumps(line) for line in lines).encode())
    assert r.status_code == 200, r.text
    r = preupload(server, repo_id, "main", ["a.log"])
    assert r.status_code == 200 and r.json()["files"][0]["shouldIgnore"] is False, r.text
    api.upload_file(path_or_fileobj=b"x", path_in_repo="a.log", repo_id=repo_id)
    assert "a.log" in repo_files(api, repo_id)


@pytest.mark.slow
def test_upload_folder_through_xet_skips_ignored_files(
    xet_env: dict[str, str], api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    """The default client (Xet on) uploads through its pipeline, which reads ``shouldIgnore`` too."""
    repo_id = api.create_repo(f"acme/{repo_name}").repo_id
    folder = {**FOLDER, ".gitignore": REPO_GITIGNORE.encode()}
    run_client("xet_client.py", ["upload_folder", repo_id, str(write_folder(tmp_path / "up", folder))], xet_env)
    assert repo_files(api, repo_id) == {".gitattributes", ".gitignore"} | KEPT
