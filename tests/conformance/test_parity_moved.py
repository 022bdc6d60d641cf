"""Moved repositories (Hub parity, item 7): after ``move_repo`` the old id keeps working for reads
through 307 redirects to the new one, until a repo takes the old name; private repos stay hidden;
writes to an old id are answered like a missing repo. Everything through the real client, plus
raw HTTP where the wire itself is the point (status, ``Location``)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, HfFileSystem, RepoFile, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
)
from sqlalchemy import create_engine, text

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer

WEIGHTS = bytes(range(256)) * 64  # stored through LFS (``*.bin`` in the default .gitattributes)


def seed(api: HfApi, repo_id: str, repo_type: str = "model") -> str:
    """A repo with a regular file, a nested one, an LFS file, a tag and a branch; its head."""
    api.create_repo(repo_id, repo_type=repo_type)
    api.upload_file(path_or_fileobj=b"alpha", path_in_repo="a.txt", repo_id=repo_id, repo_type=repo_type)
    api.create_tag(repo_id, tag="v1", repo_type=repo_type)
    api.upload_file(path_or_fileobj=b"beta", path_in_repo="sub/b.txt", repo_id=repo_id, repo_type=repo_type)
    api.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="weights.bin", repo_id=repo_id, repo_type=repo_type)
    api.create_branch(repo_id, branch="dev", repo_type=repo_type)
    return api.repo_info(repo_id, repo_type=repo_type).sha  # type: ignore[return-value]


def redirect_rows(server: LiveServer, needle: str) -> list[tuple[str, str]]:
    """The redirect rows whose old name contains ``needle``: (old name, current id of the repo)."""
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT d.namespace || '/' || d.name, r.namespace || '/' || r.name FROM repo_redirects d "
                "JOIN repos r ON r.id = d.repo_id WHERE d.key LIKE :needle ORDER BY d.key"
            ), {"needle": f"%{needle.lower()}%"}).all()
    finally:
        engine.dispose()
    return [(row[0], row[1]) for row in rows]


def raw(
    server: LiveServer, method: str, path: str, token: str | None = TOKENS["alice"],
    headers: dict[str, str] | None = None, **kw: object,
) -> httpx.Response:
    """One request, redirects not followed: what the server itself answered."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.request(method, server.url + path, headers=sent, follow_redirects=False, **kw)  # type: ignore[arg-type]


def test_rename_then_every_read_through_the_old_id(
    api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    old, new = f"alice/{repo_name}", f"alice/{repo_name}-renamed"
    head = seed(api, old)
    v1 = api.list_repo_refs(old).tags[0].target_commit
    api.move_repo(old, new)

    # info, at the default branch and at a revision, with and without file metadata
    info = api.repo_info(old)
    assert (info.id, info.sha) == (new, head)
    assert api.model_info(old, revision="v1").sha == v1
    assert api.model_info(old, revision="dev").sha == head
    sizes = {s.rfilename: s.size for s in api.model_info(old, files_metadata=True).siblings or []}
    assert sizes == {".gitattributes": sizes[".gitattributes"], "a.txt": 5, "sub/b.txt": 4, "weights.bin": len(WEIGHTS)}
    assert api.repo_exists(old) and api.file_exists(old, "sub/b.txt") and not api.file_exists(old, "nope.txt")
    api.auth_check(old)

    # tree, paths-info, refs, commits
    assert sorted(api.list_repo_files(old)) == sorted(api.list_repo_files(new)) == [
        ".gitattributes", "a.txt", "sub/b.txt", "weights.bin"
    ]
    assert [e.path for e in api.list_repo_tree(old, path_in_repo="sub")] == ["sub/b.txt"]
    assert {e.path for e in api.list_repo_tree(old, recursive=True, expand=True)} == {
        ".gitattributes", "a.txt", "sub", "sub/b.txt", "weights.bin"
    }
    infos = {p.path: p for p in api.get_paths_info(old, ["a.txt", "weights.bin"])}
    weights = infos["weights.bin"]
    assert isinstance(weights, RepoFile) and weights.lfs is not None and weights.lfs.size == len(WEIGHTS)
    refs = api.list_repo_refs(old)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    assert [c.commit_id for c in api.list_repo_commits(old)] == [c.commit_id for c in api.list_repo_commits(new)]

    # downloads: a regular file, an LFS file, a pinned revision, a whole snapshot
    got = hf_hub_download(old, "a.txt", endpoint=server.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == b"alpha"
    got = hf_hub_download(old, "weights.bin", endpoint=server.url, token=TOKENS["alice"], cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == WEIGHTS
    got = hf_hub_download(old, "a.txt", revision="v1", endpoint=server.url, cache_dir=tmp_path / "anon")
    assert Path(got).read_bytes() == b"alpha" and v1 in got
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(old, "sub/b.txt", revision="v1", endpoint=server.url, cache_dir=tmp_path / "anon")
    folder = Path(snapshot_download(old, endpoint=server.url, token=TOKENS["alice"], cache_dir=tmp_path / "s"))
    assert (folder / "sub" / "b.txt").read_bytes() == b"beta" and (folder / "weights.bin").read_bytes() == WEIGHTS
    assert head in str(folder)
    fs = HfFileSystem(endpoint=server.url, token=TOKENS["alice"])
    assert fs.read_bytes(f"{old}/sub/b.txt") == b"beta"
    assert sorted(fs.ls(f"{old}/sub", detail=False)) == [f"{old}/sub/b.txt"]

    # on the wire: one 307 to the same URL with the new id, query kept, path-only as the Hub sends it
    for path, target in (
        (f"/api/models/{old}", f"/api/models/{new}"),
        (f"/api/models/{old}/revision/v1?blobs=true", f"/api/models/{new}/revision/v1?blobs=true"),
        (f"/api/models/{old}/tree/main/sub?recursive=true", f"/api/models/{new}/tree/main/sub?recursive=true"),
        (f"/api/models/{old}/refs", f"/api/models/{new}/refs"),
        (f"/api/models/{old}/commits/main", f"/api/models/{new}/commits/main"),
        (f"/{old}/resolve/refs%2Fheads%2Fdev/sub/b.txt", f"/{new}/resolve/refs%2Fheads%2Fdev/sub/b.txt"),
        (f"/api/models/{old}/likers", f"/api/models/{new}/likers"),
        (f"/api/models/{old}/auth-check", f"/api/models/{new}/auth-check"),
        (f"/api/models/{old}/xet-read-token/main", f"/api/models/{new}/xet-read-token/main"),
    ):
        for method in ("GET", "HEAD"):
            r = raw(server, method, path)
            assert (r.status_code, r.headers["location"]) == (307, target), (method, path)
    r = raw(server, "POST", f"/api/models/{old}/paths-info/main", data={"paths": ["a.txt"]})
    assert (r.status_code, r.headers["location"]) == (307, f"/api/models/{new}/paths-info/main")

    # the LFS batch API: a download is redirected (307 keeps the body), and then answered
    batch = {"operation": "download", "transfers": ["basic"],
             "objects": [{"oid": weights.lfs.sha256, "size": len(WEIGHTS)}]}
    lfs_headers = {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
    r = raw(server, "POST", f"/{old}.git/info/lfs/objects/batch", json=batch, headers=lfs_headers)
    assert (r.status_code, r.headers["location"]) == (307, f"/{new}.git/info/lfs/objects/batch")
    followed = httpx.post(f"{server.url}/{old}.git/info/lfs/objects/batch", json=batch, follow_redirects=True,
                          headers={**lfs_headers, "Authorization": f"Bearer {TOKENS['alice']}"})
    href = followed.json()["objects"][0]["actions"]["download"]["href"]
    assert httpx.get(href).content == WEIGHTS


def test_writes_to_the_old_id_are_answered_like_a_missing_repo(
    api: HfApi, server: LiveServer, repo_name: str
) -> None:
    old, new = f"alice/{repo_name}", f"alice/{repo_name}-renamed"
    head = seed(api, old)
    api.move_repo(old, new)
    not_found = rf"Repository Not Found for url: {re.escape(server.url)}/api/models/{old}\b"

    with pytest.raises(RepositoryNotFoundError, match=not_found):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=old)
    with pytest.raises(RepositoryNotFoundError, match=not_found):
        api.create_branch(old, branch="other")
    with pytest.raises(RepositoryNotFoundError, match=not_found):
        api.create_tag(old, tag="v2")
    with pytest.raises(RepositoryNotFoundError, match=not_found):
        api.update_repo_settings(old, private=True)
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found"):
        api.delete_repo(old)
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found"):
        api.move_repo(old, f"alice/{repo_name}-elsewhere")
    with pytest.raises(RepositoryNotFoundError, match=not_found):
        api.auth_check(old, write=True)
    for method, path, body in (
        ("POST", f"/{old}.git/info/lfs/objects/batch",
         {"operation": "upload", "objects": [{"oid": "0" * 64, "size": 1}]}),
        ("GET", f"/api/models/{old}/xet-write-token/main", None),
        ("POST", f"/api/models/{old}/super-squash/main", {}),
    ):
        r = raw(server, method, path, json=body)
        assert (r.status_code, r.headers["x-error-code"]) == (404, "RepoNotFound"), path
        assert "location" not in r.headers

    # nothing reached the repo under its new name, which still answers as before
    assert api.repo_info(new).sha == head
    assert sorted(api.list_repo_files(new)) == [".gitattributes", "a.txt", "sub/b.txt", "weights.bin"]
    assert {b.name for b in api.list_repo_refs(new).branches} == {"main", "dev"}
    assert not api.repo_exists(f"alice/{repo_name}-elsewhere")


def test_transfer_of_a_dataset_to_an_org(api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path) -> None:
    old, new = f"alice/{repo_name}", f"acme/{repo_name}"
    head = seed(api, old, repo_type="dataset")
    api.move_repo(old, new, repo_type="dataset")

    info = api.dataset_info(old)
    assert (info.id, info.sha, info.author) == (new, head, "acme")
    assert api.list_repo_files(old, repo_type="dataset") == api.list_repo_files(new, repo_type="dataset")
    assert [e.path for e in api.list_repo_tree(old, repo_type="dataset", path_in_repo="sub")] == ["sub/b.txt"]
    got = hf_hub_download(old, "weights.bin", repo_type="dataset", endpoint=server.url, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == WEIGHTS
    folder = Path(snapshot_download(old, repo_type="dataset", endpoint=server.url, cache_dir=tmp_path / "s"))
    assert (folder / "a.txt").read_bytes() == b"alpha"
    r = raw(server, "HEAD", f"/datasets/{old}/resolve/main/a.txt")
    assert (r.status_code, r.headers["location"]) == (307, f"/datasets/{new}/resolve/main/a.txt")
    # the type is part of the old name: no model of that id appears
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(old)
    assert redirect_rows(server, repo_name) == [(old, new)]


def test_private_repo_stays_hidden_through_the_old_id(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    old, new = f"acme/{repo_name}", f"acme/{repo_name}-secret-new-name"
    api.create_repo(old, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=old)
    api.move_repo(old, new)
    missing = f"acme/{repo_name}-never-existed"

    for who in (None, "bob"):
        outsider = api_as(who)
        with pytest.raises(RepositoryNotFoundError, match=rf"Repository Not Found for url: .*/{old}\.") as info:
            outsider.model_info(old)
        assert "secret-new-name" not in str(info.value)
        with pytest.raises(RepositoryNotFoundError, match=rf"Repository Not Found for url: .*/{old}/resolve/"):
            hf_hub_download(old, "s.txt", endpoint=server.url, token=TOKENS[who] if who else False,
                            cache_dir=tmp_path / f"out-{who}")
        with pytest.raises(RepositoryNotFoundError, match="Repository Not Found"):
            outsider.list_repo_files(old)
        assert not outsider.repo_exists(old)
        # on the wire: exactly a missing repo's answer, and no Location naming the new id
        for method, path in (("GET", "/api/models/{}"), ("GET", "/api/models/{}/tree/main"),
                             ("HEAD", "/{}/resolve/main/s.txt"), ("GET", "/api/models/{}/refs")):
            same_id = {"X-Request-Id": "probe-1"}  # error bodies carry the request's id
            hidden = raw(server, method, path.format(old), token=TOKENS[who] if who else None, headers=same_id)
            absent = raw(server, method, path.format(missing), token=TOKENS[who] if who else None, headers=same_id)
            assert hidden.status_code == absent.status_code == 404
            assert hidden.headers["x-error-code"] == absent.headers["x-error-code"] == "RepoNotFound"
            assert "location" not in hidden.headers
            assert hidden.content == absent.content and b"secret-new-name" not in hidden.content
            assert "secret-new-name" not in str(hidden.headers)

    carol = api_as("carol")  # a read member of acme follows the redirect, token and all
    assert carol.model_info(old).id == new
    got = hf_hub_download(old, "s.txt", endpoint=server.url, token=TOKENS["carol"], cache_dir=tmp_path / "carol")
    assert Path(got).read_bytes() == b"secret"

    api.update_repo_settings(new, private=False)  # public now: anyone follows
    assert api_as(None).model_info(old).id == new
    api.update_repo_settings(new, private=True)
    with pytest.raises(RepositoryNotFoundError):
        api_as("bob").model_info(old)


def test_a_new_repo_with_the_old_name_ends_the_redirect(
    api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    old, new = f"alice/{repo_name}", f"alice/{repo_name}-renamed"
    head = seed(api, old)
    api.move_repo(old, new)
    assert api.repo_info(old).id == new

    api.create_repo(old)  # the old name is a repo again
    taken = api.repo_info(old)
    assert taken.id == old and taken.sha != head
    assert api.list_repo_files(old) == [".gitattributes"]
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(old, "a.txt", endpoint=server.url, cache_dir=tmp_path / "c")
    assert raw(server, "GET", f"/api/models/{old}").status_code == 200
    assert redirect_rows(server, repo_name) == []

    # deleting the newcomer does not bring the redirect back
    api.delete_repo(old)
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info(old)
    assert api.repo_info(new).sha == head

    # moving another repo onto an old name ends that name's redirect too
    other = f"alice/{repo_name}-other"
    api.create_repo(other)
    api.move_repo(new, f"alice/{repo_name}-third")
    assert api.repo_info(new).id == f"alice/{repo_name}-third"
    api.move_repo(other, new)
    assert api.repo_info(new).id == new and api.repo_info(new).sha != head
    assert api.repo_info(f"alice/{repo_name}-third").sha == head
    assert redirect_rows(server, repo_name) == [(other, new)]


def test_moving_twice_and_back_never_loops(api: HfApi, server: LiveServer, repo_name: str) -> None:
    a, b, c = (f"alice/{repo_name}-{x}" for x in "abc")
    head = seed(api, a)
    api.move_repo(a, b)
    api.move_repo(b, c)
    for name in (a, b):
        assert api.repo_info(name).id == c
        r = raw(server, "GET", f"/api/models/{name}")  # one hop straight to the current id
        assert (r.status_code, r.headers["location"]) == (307, f"/api/models/{c}")
    assert redirect_rows(server, repo_name) == [(a, c), (b, c)]

    api.move_repo(c, a)  # back to the first name: it is a repo again, the others lead to it
    assert raw(server, "GET", f"/api/models/{a}").status_code == 200
    for name in (b, c):
        r = raw(server, "GET", f"/api/models/{name}")
        assert (r.status_code, r.headers["location"]) == (307, f"/api/models/{a}")
        assert api.repo_info(name).id == a and api.repo_info(name).sha == head
    assert redirect_rows(server, repo_name) == [(b, a), (c, a)]

    api.move_repo(a, b)  # and on again: still one hop each, no name leads to itself
    assert api.repo_info(b).id == b
    assert redirect_rows(server, repo_name) == [(a, b), (c, b)]
    for name in (a, c):
        assert api.repo_info(name).id == b

    # a rename that only changes case leaves no redirect from the name to itself
    upper = f"alice/{repo_name}-B"
    api.move_repo(b, upper)
    assert redirect_rows(server, repo_name) == [(a, upper), (c, upper)]
    assert api.repo_info(b).id == upper and raw(server, "GET", f"/api/models/{b}").status_code == 200


def test_deleting_a_moved_repo_removes_its_redirects(api: HfApi, server: LiveServer, repo_name: str) -> None:
    a, b, c = (f"alice/{repo_name}-{x}" for x in "abc")
    api.create_repo(a)
    api.move_repo(a, b)
    api.move_repo(b, c)
    assert len(redirect_rows(server, repo_name)) == 2
    api.delete_repo(c)
    assert redirect_rows(server, repo_name) == []
    for name in (a, b, c):
        with pytest.raises(RepositoryNotFoundError, match="Repository Not Found"):
            api.repo_info(name)
        r = raw(server, "GET", f"/api/models/{name}")
        assert r.status_code == 404 and "location" not in r.headers
    api.create_repo(c)  # a new repo under the deleted one's name does not revive the old names
    for name in (a, b):
        with pytest.raises(RepositoryNotFoundError):
            api.repo_info(name)


def test_refused_moves_change_nothing(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str
) -> None:
    a, taken = f"alice/{repo_name}", f"alice/{repo_name}-taken"
    head = seed(api, a)
    api.create_repo(taken)
    taken_head = api.repo_info(taken).sha

    with pytest.raises(HfHubHTTPError) as info:  # the target name is a repo
        api.move_repo(a, taken)
    assert info.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as info:  # no write access to bob's namespace
        api.move_repo(a, f"bob/{repo_name}")
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as info:  # a namespace that does not exist
        api.move_repo(a, f"nobody-{repo_name}/{repo_name}")
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as info:  # bob may read the repo but not move it
        api_as("bob").move_repo(a, f"bob/{repo_name}")
    assert info.value.response.status_code == 403
    # an invalid new name (the client refuses it before sending, so it goes raw)
    r = raw(server, "POST", "/api/repos/move", json={"fromRepo": a, "toRepo": f"alice/{repo_name}..x"})
    assert (r.status_code, r.headers["x-error-code"]) == (400, "BadRequest")
    with pytest.raises(RepositoryNotFoundError):  # a source that does not exist
        api.move_repo(f"alice/{repo_name}-ghost", f"alice/{repo_name}-ghost2")

    assert (api.repo_info(a).id, api.repo_info(a).sha) == (a, head)
    assert (api.repo_info(taken).id, api.repo_info(taken).sha) == (taken, taken_head)
    for name in (f"bob/{repo_name}", f"alice/{repo_name}-ghost2"):
        assert not api.repo_exists(name)
    assert raw(server, "GET", f"/api/models/alice/{repo_name}..x").status_code == 404
    assert redirect_rows(server, repo_name) == []


@pytest.mark.slow
def test_xet_file_through_the_old_id_with_the_default_client(
    xet_env: dict[str, str], api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path
) -> None:
    """A default install (Xet on) downloads a Xet-stored file through the old id: HEAD /resolve
    follows the 307, and the Xet refresh route it then uses names the current id."""
    data = random.Random(7).randbytes(1_200_000)
    (tmp_path / "w.bin").write_bytes(data)
    old, new = f"acme/{repo_name}", f"alice/{repo_name}-moved"
    api.create_repo(old)
    run_client("xet_client.py", ["upload", old, str(tmp_path / "w.bin"), "w.bin"], xet_env)
    assert [e.path for e in api.list_repo_tree(old) if isinstance(e, RepoFile) and e.xet_hash] == ["w.bin"]
    api.move_repo(old, new)
    got = run_client("xet_client.py", ["fetch", old, json.dumps([{"path": "w.bin"}])],
                     {**xet_env, "HF_HOME": str(tmp_path / "reader")})
    assert Path(got["results"][0]["path"]).read_bytes() == data
    assert not [u for m, u in got["requests"] if m == "GET" and u.endswith("/w.bin")]  # not over /resolve
    assert any(f"/api/models/{new}/xet-read-token/" in u for _m, u in got["requests"])


def test_location_keeps_the_public_url_prefix(tmp_path: Path) -> None:
    """Behind a proxy that serves the hub under ``/hub`` (and strips it), the path-only Location
    keeps the prefix, so a client resolving it against the URL it called stays on the hub."""
    live = LiveServer(tmp_path / "prefixed", None, "sqlite",
                      extra_env={"MODELYARD_PUBLIC_URL": "https://models.internal/hub"})
    live.prepare()
    with live.running():
        # raw: the client refuses a repo URL on a host other than its endpoint's
        assert raw(live, "POST", "/api/repos/create", json={"name": "before", "organization": "alice"}).is_success
        moving = {"fromRepo": "alice/before", "toRepo": "acme/after"}
        assert raw(live, "POST", "/api/repos/move", json=moving).is_success
        r = raw(live, "GET", "/api/models/alice/before/tree/main?recursive=true")
        assert (r.status_code, r.headers["location"]) == (307, "/hub/api/models/acme/after/tree/main?recursive=true")
