"""Hardening findings 4-7 and 10-16, and a table of hostile requests (the findings' inputs and
their neighbours): none gets a 500, none changes anything.

Each ``test_finding_*`` reproduces a finding against a live server and asserts the fixed
behaviour; on the code before the fix each of them fails (see the issue's numbered list).
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import create_engine, text

from tests.support.attack import connect, probing, request_head, rss_bytes
from tests.support.server import SEED, TOKENS, LiveServer

MB = 1024 * 1024
ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


HEADER = {"key": "header", "value": {"summary": "hostile"}}


def commit(server: LiveServer, repo_id: str, body: bytes, headers: dict[str, str] = ALICE) -> httpx.Response:
    return httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", content=body, headers={**headers, **NDJSON},
                      timeout=120)


def wait_until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def api(quiet: LiveServer) -> HfApi:
    return HfApi(endpoint=quiet.url, token=TOKENS["alice"])


@pytest.fixture(scope="module")
def target(quiet: LiveServer, api: HfApi) -> str:
    repo_id = api.create_repo("acme/hostile-target").repo_id
    api.upload_file(path_or_fileobj=b"keep", path_in_repo="keep.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo_id)
    return repo_id


# -- 4: paths-info on a huge folder ---------------------------------------------------------------


def test_finding_04_paths_info_cost_does_not_grow_with_the_folder(quiet: LiveServer, api: HfApi, target: str) -> None:
    """After a 20,000-file folder is committed, 1,000 missing paths cost one look-up each (it
    took 52 CPU seconds: each path scanned the whole folder); other requests stay fast."""
    repo_id = api.create_repo("acme/wide-folder").repo_id
    lines = [{"key": "file", "value": {"path": f"big/f{i:05d}.txt", "content": b64(b"%d" % i)}}
             for i in range(20_000)]
    assert commit(quiet, repo_id, ndjson(HEADER, *lines)).status_code == 200
    form = {"paths": [f"big/missing-{i}.txt" for i in range(999)] + ["big/f12345.txt"], "expand": "false"}
    quiet.settle()  # the 20,000-file commit's indexing is done: the probe measures paths-info alone
    with probing(f"{quiet.url}/api/models/{target}/revision/main") as probe:
        start = time.perf_counter()
        r = httpx.post(f"{quiet.url}/api/models/{repo_id}/paths-info/main", data=form, timeout=30)
        elapsed = time.perf_counter() - start
    assert r.status_code == 200 and [e["path"] for e in r.json()] == ["big/f12345.txt"]
    assert elapsed < 5, f"paths-info took {elapsed:.1f} s"
    assert probe.worst < 1.0


# -- 5: LFS batch requests that ask for too much -----------------------------------------------------


def lfs_batch(
    server: LiveServer, repo_id: str, objects: Any, transfers: Any = ("basic", "multipart")
) -> httpx.Response:
    body = {"operation": "upload", "transfers": transfers, "objects": objects, "hash_algo": "sha256"}
    return httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", json=body, headers=ALICE, timeout=60)


def test_finding_05_lfs_batch_sizes_and_part_counts_are_capped(quiet: LiveServer, target: str) -> None:
    oid = "ab" * 32
    r = lfs_batch(quiet, target, [{"oid": f"{i:064x}", "size": 512 * MB} for i in range(1001)])
    assert r.status_code == 400 and "1000 objects" in r.headers["X-Error-Message"]
    for size in (2**63, 2**62, 600 * 1024 * MB):
        (obj,) = lfs_batch(quiet, target, [{"oid": oid, "size": size}]).json()["objects"]
        assert obj["error"]["code"] == 422 and "actions" not in obj, size
    # 1,000 objects of 100 GiB: 200 parts each; past 10,000 parts the objects get an error
    start = time.perf_counter()
    before = rss_bytes(quiet)
    r = lfs_batch(quiet, target, [{"oid": f"{i:064x}", "size": 100 * 1024 * MB} for i in range(1000)])
    assert r.status_code == 200 and time.perf_counter() - start < 10
    objects = r.json()["objects"]
    parts = sum(sum(k.isdigit() for k in o["actions"]["upload"]["header"]) for o in objects if "actions" in o)
    assert parts <= 10_000 and parts == 200 * sum("actions" in o for o in objects)
    assert {o["error"]["code"] for o in objects if "error" in o} == {413}
    assert len(r.content) < 10 * MB and rss_bytes(quiet) - before < 60 * MB


# -- 6: xorb bodies that announce more than they send -------------------------------------------


def test_finding_06_xorb_buffers_follow_the_bytes_received(quiet: LiveServer, target: str) -> None:
    """Six uploads announcing 67 MB each and sending 1 byte cost about nothing (they cost 384 MB)."""
    r = httpx.get(f"{quiet.url}/api/models/{target}/xet-write-token/main", headers=ALICE)
    token = r.json()["accessToken"]
    before = rss_bytes(quiet)
    socks = []
    try:
        for i in range(6):
            sock = connect(quiet)
            sock.sendall(request_head("POST", f"/xet/v1/xorbs/default/{i:064x}", {
                "Authorization": f"Bearer {token}", "Content-Length": "67000000"}) + b"x")
            socks.append(sock)
        time.sleep(3)  # past the old code's 2 s wait for a pooled buffer
        grown = rss_bytes(quiet) - before
    finally:
        for sock in socks:
            sock.close()
    assert grown < 40 * MB, f"RSS grew by {grown / MB:.0f} MB"


# -- 7: user files as active content -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["page.html", "page.htm", "image.svg", "data.xml", "code.js", "page.xhtml"])
def test_finding_07_user_files_are_never_active_content(quiet: LiveServer, api: HfApi, target: str, name: str) -> None:
    content = b"<html><script>alert(document.domain)</script></html>"
    api.upload_file(path_or_fileobj=content, path_in_repo=f"web/{name}", repo_id=target)
    r = httpx.get(f"{quiet.url}/{target}/resolve/main/web/{name}")
    assert r.status_code == 200 and r.content == content
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]


# -- 10, 11: what a private repo lets outsiders learn ---------------------------------------------


def test_finding_10_a_hidden_repo_is_answered_exactly_like_a_missing_one(quiet: LiveServer, api: HfApi) -> None:
    api.create_repo("acme/Private-Model", private=True)
    api.upload_file(path_or_fileobj=b"s", path_in_repo="s.txt", repo_id="acme/Private-Model")
    for route in ("/api/models/{}", "/api/models/{}/revision/main", "/{}/resolve/main/s.txt",
                  "/api/models/{}/tree/main", "/api/models/{}/refs"):
        # One request id for both: error bodies name the request (its id), nothing else differs.
        for asker in ({"X-Request-Id": "f10"}, {"Authorization": f"Bearer {TOKENS['bob']}", "X-Request-Id": "f10"}):
            hidden = httpx.get(quiet.url + route.format("ACME/private-model"), headers=asker)
            missing = httpx.get(quiet.url + route.format("ACME/absent-model"), headers=asker)
            assert hidden.status_code == missing.status_code == 404, route
            assert hidden.content == missing.content, route
            for header in ("X-Error-Code", "X-Error-Message"):
                assert hidden.headers[header] == missing.headers[header], (route, header)
            assert b"Private-Model" not in hidden.content


def test_finding_11_children_count_matches_the_children_listing(quiet: LiveServer, api: HfApi) -> None:
    base = api.create_repo("acme/base-model").repo_id
    child = api.create_repo("vault/secret-finetune").repo_id  # vault repos are private by default
    api.upload_file(path_or_fileobj=f"---\nbase_model: {base}\n---\n# child\n".encode(), path_in_repo="README.md",
                    repo_id=child)
    quiet.settle()
    outsider = httpx.get(f"{quiet.url}/api/models/{base}").json()
    member = httpx.get(f"{quiet.url}/api/models/{base}", headers=ALICE).json()
    assert outsider["childrenModelCount"] == 0 and member["childrenModelCount"] == 1
    assert httpx.get(f"{quiet.url}/api/models/{base}/children").json() == []
    listed = httpx.get(f"{quiet.url}/api/models", params={"search": "base-model", "expand": "childrenModelCount"})
    assert [m["childrenModelCount"] for m in listed.json() if m["id"] == base] == [0]


# -- 12: inputs that used to end in a 500 -------------------------------------------------------------


def test_finding_12_no_input_ends_in_a_server_error(quiet: LiveServer, target: str) -> None:
    url = f"{quiet.url}/{target}/resolve/main/keep.txt"
    for header in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000):
        r = httpx.get(url, headers={"Range": header})
        assert r.status_code == 416, header
    r = lfs_batch(quiet, target, [{"oid": "ab" * 32, "size": 1}], transfers=5)
    assert r.status_code == 400 and "transfers" in r.headers["X-Error-Message"]
    deep = "/".join(["d"] * 1200) + "/f.txt"
    r = commit(quiet, target, ndjson(HEADER, {"key": "file", "value": {"path": deep, "content": b64(b"x")}}))
    assert r.status_code == 400 and "levels" in r.headers["X-Error-Message"]
    nested = b'{"key":"header","value":{"summary":' + b"[" * 50_000 + b"]" * 50_000 + b"}}\n"
    assert commit(quiet, target, nested).status_code == 400


# -- 13: paths that git and other tools mishandle -----------------------------------------------------

UNSAFE_PATHS = ["..\\..\\evil.txt", "C:\\Windows\\x.txt", "C:evil.txt", ".GIT/config", ".Git/hooks/post-checkout",
                ".git /x", ".git./x", "GIT~1/config", "git~2/HEAD", "sub/.GIT/config",
                "evil\u202etxt.exe", "a/\u2066b\u2069.txt", ".g\u200cit/config"]


@pytest.mark.parametrize("kind", ["file", "lfsFile", "deletedFile", "deletedFolder"])
def test_finding_13_unsafe_paths_are_refused_with_422(quiet: LiveServer, target: str, kind: str) -> None:
    before = hub_state(quiet)
    for path in UNSAFE_PATHS:
        value: dict[str, Any] = {"path": path}
        if kind == "file":
            value["content"] = b64(b"x")
        elif kind == "lfsFile":
            value.update(algo="sha256", oid="ab" * 32, size=1)
        ok = {"key": "file", "value": {"path": "fine.txt", "content": b64(b"fine")}}
        r = commit(quiet, target, ndjson(HEADER, ok, {"key": kind, "value": value}))
        assert r.status_code == 422 and r.headers["X-Error-Code"] == "UnprocessableEntity", (path, r.status_code)
        assert "path" in r.headers["X-Error-Message"].lower()
    r = httpx.post(f"{quiet.url}/api/models/{target}/preupload/main", headers=ALICE,
                   json={"files": [{"path": p, "size": 1, "sample": ""} for p in UNSAFE_PATHS[:1]]})
    assert r.status_code == 422
    assert hub_state(quiet) == before


# -- 14: download counts ---------------------------------------------------------------------------------


def downloads(server: LiveServer, repo_id: str) -> int:
    return int(httpx.get(f"{server.url}/api/models/{repo_id}").json()["downloads"])


def test_finding_14_one_client_cannot_inflate_download_counts(quiet: LiveServer, api: HfApi) -> None:
    counted = api.create_repo("acme/counted").repo_id
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=counted)
    empty = api.create_repo("acme/no-config").repo_id
    flag = {"X-HF-Download-Counter": "1"}
    with httpx.Client() as client:
        for _ in range(50):
            assert client.head(f"{quiet.url}/{counted}/resolve/main/config.json", headers=flag).status_code == 200
            assert client.head(f"{quiet.url}/{empty}/resolve/main/config.json", headers=flag).status_code == 404
        wait_until(lambda: downloads(quiet, counted) >= 1)
        time.sleep(1.0)  # several folds later: still one
        assert downloads(quiet, counted) == 1 and downloads(quiet, empty) == 0
        for user in ("bob", "carol"):  # other clients do count
            headers = {**flag, "Authorization": f"Bearer {TOKENS[user]}"}
            assert client.head(f"{quiet.url}/{counted}/resolve/main/config.json", headers=headers).status_code == 200
        wait_until(lambda: downloads(quiet, counted) == 3)


# -- 15: the Host header ---------------------------------------------------------------------------------


def test_finding_15_foreign_host_names_are_refused(quiet: LiveServer, target: str) -> None:
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "cd" * 32, "size": 10}]}
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "[::2]"):
        r = httpx.post(f"{quiet.url}/{target}.git/info/lfs/objects/batch", json=body, headers={**ALICE, "Host": host})
        assert r.status_code == 400 and "evil" not in r.text.replace(host, ""), host
        assert "actions" not in r.text
    for host in (f"127.0.0.1:{quiet.port}", f"localhost:{quiet.port}", f"[::1]:{quiet.port}"):
        r = httpx.post(f"{quiet.url}/{target}.git/info/lfs/objects/batch", json=body, headers={**ALICE, "Host": host})
        assert r.status_code == 200, host
        assert r.json()["objects"][0]["actions"]["upload"]["href"].startswith(f"http://{host}/")


# -- 16: secrets at rest ---------------------------------------------------------------------------------


def database_rows(server: LiveServer, sql: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_finding_16_secrets_at_rest(quiet: LiveServer) -> None:
    assert database_rows(quiet, "SELECT name FROM server_secrets") == []
    key_file = quiet.data_dir / "signing.key"
    assert mode(key_file) == 0o600 and len(bytes.fromhex(key_file.read_text().strip())) >= 32
    assert mode(quiet.data_dir) == 0o700 and mode(quiet.data_dir / "blobs") == 0o700
    assert mode(quiet.data_dir / "modelyard.db") == 0o600
    # the admin token: not in the server's output, only in a file of the server's user
    token_file = quiet.data_dir / "admin-token"
    token = token_file.read_text().strip()
    assert mode(token_file) == 0o600 and token.startswith("hf_")
    assert token not in quiet.log_path.read_text()
    who = httpx.get(f"{quiet.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 200 and who.json()["name"] == "admin"
    for weak in ("hf_abcdefghijklmnopq", "hf_" + "a" * 40, "hf_ab" * 8, "hf_" + "é" * 40):
        r = quiet.cli("tokens", "create", "bob", "--role", "read", "--value", weak, check=False)
        assert r.returncode == 1 and "at least" in r.stderr, weak


def test_finding_16_a_key_kept_in_the_database_moves_to_the_key_file(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "legacy", None, "sqlite")
    live.cli("db", "upgrade")
    live.seed(SEED)
    legacy = hashlib.sha256(b"legacy key").hexdigest()
    engine = create_engine(f"sqlite:///{live.data_dir / 'modelyard.db'}")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO server_secrets (name, value) VALUES ('signing_key', :v)"), {"v": legacy})
    engine.dispose()
    (live.data_dir / "modelyard.db").chmod(0o644)
    live.data_dir.chmod(0o755)
    with live.running():
        assert (live.data_dir / "signing.key").read_text().strip() == legacy
        assert database_rows(live, "SELECT name FROM server_secrets") == []
        assert mode(live.data_dir) == 0o700 and mode(live.data_dir / "modelyard.db") == 0o600


# -- the hostile table: no 500, no change ----------------------------------------------------------------


def hub_state(server: LiveServer) -> dict[str, Any]:
    """Everything a refused request must leave as it was: rows of the tables that matter, and blobs."""
    tables = {
        "repos": "SELECT id, type, namespace, name, private, gated FROM repos ORDER BY id",
        "objects": "SELECT count(*) FROM git_objects",
        "lfs": "SELECT sha256 FROM lfs_objects ORDER BY sha256",
        "repo_lfs": "SELECT repo_id, sha256 FROM repo_lfs_objects ORDER BY repo_id, sha256",
        "xorbs": "SELECT hash FROM xet_xorbs ORDER BY hash",
        "xet_files": "SELECT repo_id, sha256 FROM repo_xet_files ORDER BY repo_id, sha256",
        "tokens": "SELECT id, revoked_at FROM tokens ORDER BY id",
        "accounts": "SELECT id, name FROM accounts ORDER BY id",
        "likes": "SELECT account_id, repo_id FROM likes ORDER BY account_id, repo_id",
        "multipart": "SELECT count(*) FROM multipart_uploads",
        "purged": "SELECT repo_id, sha256 FROM repo_purged_lfs ORDER BY repo_id, sha256",
    }
    out: dict[str, Any] = {name: database_rows(server, sql) for name, sql in tables.items()}
    blobs = server.data_dir / "blobs"
    out["blobs"] = sorted(str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file()
                          and p.relative_to(blobs).parts[0] != "tmp")
    return out


def hostile_requests(target: str) -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
    """(method, path, headers, body): the findings' inputs and their neighbours."""
    api = f"/api/models/{target}"
    junk = [b"null", b"[]", b"5", b'"x"', b"{", b"\xff\xfe", b'{"a":' * 10_000, b"[" * 100_000]
    routes = [("POST", "/api/repos/create"), ("DELETE", "/api/repos/delete"), ("POST", "/api/repos/move"),
              ("PUT", f"{api}/settings"), ("POST", f"{api}/preupload/main"), ("POST", f"{api}/paths-info/main"),
              ("POST", f"{api}/branch/x"), ("POST", f"{api}/tag/main"), ("POST", f"{api}/super-squash/main"),
              ("POST", f"/{target}.git/info/lfs/objects/batch"), ("POST", f"/{target}.git/info/lfs/objects/verify"),
              ("POST", "/api/validate-yaml"), ("POST", f"{api}/commit/main"), ("POST", f"{api}/lfs-files/batch")]
    for method, path in routes:
        optional = path.endswith(("/branch/x", "/super-squash/main"))  # an empty body is a valid request there
        for body in junk if optional else [b"", json.dumps({"x": "\u0000"}).encode(), *junk]:
            for auth in ({}, ALICE, {"Authorization": "Bearer hf_not_a_token"}):
                yield method, path, {**auth, "Content-Type": "application/json"}, body
    typed = {
        "/api/repos/create": [{"name": 5}, {"name": "a/b/c"}, {"name": "x" * 10_000}, {"name": "..", "type": "x"},
                              {"name": "ok-name", "organization": ["acme"]}, {"name": "ok", "private": "yes"},
                              {"name": "ok", "visibility": 1}, {"name": "ok\u0000"}, {"name": "ok", "type": "space"}],
        f"{api}/settings": [{"private": "true"}, {"gated": "sometimes"}, {"visibility": None}, {}],
        f"{api}/preupload/main": [{"files": [{"path": 5}]}, {"files": [{"path": "a", "size": 2**70}]},
                                  {"files": [{"path": "a", "size": -1}]}, {"files": "x"}, {"files": [None]}],
        f"/{target}.git/info/lfs/objects/batch": [
            {"operation": "upload", "objects": [None, 5, "x", {"oid": 5, "size": "1"}]},
            {"operation": "upload", "objects": [{"oid": "ab" * 32, "size": True}], "transfers": [5]},
            {"operation": "delete", "objects": []}, {"operation": "download", "objects": {"oid": 1}},
            {"operation": "upload", "objects": [{"oid": "ab" * 32, "size": 1}], "transfers": "basic"}],
        f"/{target}.git/info/lfs/objects/verify": [{"oid": 5}, {"oid": "ab" * 32, "size": "x"}, {}],
        f"{api}/branch/x": [{"startingPoint": 5}, {"startingPoint": "nope"}, {"startingPoint": "\u0000"}],
        f"{api}/tag/main": [{"tag": 5}, {"tag": ".."}, {"tag": "a" * 1000}, {"tag": "refs/heads/main"}],
        f"{api}/super-squash/main": [{"message": 5}],
        f"{api}/lfs-files/batch": [{"deletions": 5}, {"deletions": {"sha": "ab" * 32}}, {"deletions": {"sha": [5]}},
                                   {"deletions": {"sha": ["../" * 30]}}, {"deletions": {"sha": ["ab" * 32] * 1001}},
                                   {"deletions": {"sha": ["ab" * 32], "rewriteHistory": "yes"}},
                                   {"deletions": {"sha": ["ab" * 32], "rewriteHistory": True}}, {"sha": ["ab" * 32]}],
    }
    for path, bodies in typed.items():
        method = "PUT" if path.endswith("/settings") else "POST"
        for payload in bodies:
            yield method, path, {**ALICE, "Content-Type": "application/json"}, json.dumps(payload).encode()
    lines = [b'{"key":"header","value":{"summary":"x"}}\n' + extra for extra in [
        b'{"key":"file","value":{"path":"a","content":"!!!"}}\n',
        b'{"key":"file","value":{"path":"a","content":5}}\n',
        b'{"key":"lfsFile","value":{"path":"a","oid":"' + b"ab" * 32 + b'","size":1}}\n',
        b'{"key":"lfsFile","value":{"path":"a","oid":"' + b"ab" * 32 + b'","size":true}}\n',
        b'{"key":"deletedFile","value":{"path":"absent.txt"}}\n',
        b'{"key":"deletedFolder","value":{"path":"/"}}\n',
        b'{"key":"copy","value":{}}\n', b"[]\n", b'{"key":"file","value":[]}\n',
        b'{"key":"file","value":{"path":"' + b"a/" * 2000 + b'x","content":""}}\n']]
    lines += [b'{"key":"header","value":{"summary":5}}\n',
              b'{"key":"header","value":{"summary":"x","parentCommit":"zz"}}\n',
              b'{"key":"header","value":{"summary":"x","parentCommit":"' + b"0" * 40 + b'"}}\n', b"\n\n\n"]
    for body in lines:
        yield "POST", f"{api}/commit/main", {**ALICE, **NDJSON}, body
    for rev in ("%00", "..", "refs%2Fheads%2F..%2Fx", "a" * 5000, "%FF", "%", "main%0Ax"):
        yield "GET", f"{api}/revision/{rev}", {}, None
        yield "GET", f"/{target}/resolve/{rev}/keep.txt", {}, None
        yield "POST", f"{api}/commit/{rev}", {**ALICE, **NDJSON}, lines[4]
    for path in ("%2e%2e/%2e%2e/etc/passwd", "%00", "a%2F..%2F..%2Fx", "keep.txt%00", "%C0%AE%C0%AE/x", "x" * 5000):
        yield "GET", f"/{target}/resolve/main/{path}", {}, None
        yield "GET", f"{api}/tree/main/{path}", {}, None
    for range_ in ("bytes=1-0", "bytes=-0", "bytes=0-0,1-1", "bytes=a-b", "items=0-1", "bytes=" + "1" * 30 + "-",
                   "bytes=--1", "bytes= 0-1", "bytes=0-1" + "," * 5000):
        yield "GET", f"/{target}/resolve/main/keep.txt", {"Range": range_}, None
    for query in ("limit=" + "9" * 5000, "limit=-1", "cursor=" + "A" * 10_000, "sort=" + "x" * 1000,
                  "num_parameters=min:" + "9" * 5000, "search=%00", "filter=" + "a," * 5000, "expand=" + "x" * 100):
        yield "GET", f"/api/models?{query}", {}, None
    for auth in ("Basic !!!", "Basic " + b64(b"\xff\xfe:\xff"), "Bearer " + "x" * 10_000, "Bearer \x7f", "Digest x"):
        yield "GET", api, {"Authorization": auth}, None
    for route in ("/xet/v1/reconstructions/" + "0" * 64, "/xet/v1/chunks/default/" + "0" * 64,
                  "/xet/v2/reconstructions/zz", "/xet/fetch/" + "a" * 5000, "/xet/fetch/a.b"):
        for token in ("", "Bearer x.y", "Bearer " + "a" * 5000):
            yield "GET", route, {"Authorization": token} if token else {}, None
    for token_path in ("/_lfs/objects/x.y", "/_lfs/objects/" + "a" * 5000):
        yield "GET", token_path, {}, None
    yield "PUT", "/_lfs/upload/x.y", {}, b"data"
    yield "PUT", "/_lfs/parts/x.y", {}, b"data"
    yield "POST", "/_lfs/complete/x.y", {"Content-Type": "application/json"}, b'{"parts":[5]}'
    yield "POST", "/a/b/c/d/e", {}, b""
    yield "DELETE", f"{api}/branch/main", ALICE, None
    yield "DELETE", f"{api}/tag/nope", ALICE, None
    for sha in ("nope", "%00", "ab" * 32, "AB" * 32, "a" * 5000):
        yield "DELETE", f"{api}/lfs-files/{sha}", ALICE, None
        yield "DELETE", f"{api}/lfs-files/{sha}", {}, None
    for query in ("limit=x", "limit=-1", "limit=" + "9" * 5000, "cursor=%00", "cursor=" + "a" * 5000):
        yield "GET", f"{api}/lfs-files?{query}", {}, None
    yield "PATCH", api, ALICE, b"{}"


def test_hostile_requests_get_clear_errors_and_change_nothing(quiet: LiveServer, target: str) -> None:
    before = hub_state(quiet)
    seen: dict[int, int] = {}
    with httpx.Client(timeout=60) as client:
        for method, path, headers, body in hostile_requests(target):
            r = client.request(method, quiet.url + path, headers=headers, content=body)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            label = (method, path[:120], (body or b"")[:80])
            assert r.status_code < 500, label
            assert r.status_code in (200, 206, 404, 416) or r.headers.get("X-Error-Message"), label
            if r.status_code >= 400 and method != "HEAD":
                assert r.json().get("error"), label
    assert hub_state(quiet) == before
    assert sum(seen.values()) > 400 and not any(code >= 500 for code in seen)
    assert "Traceback" not in quiet.log_path.read_text()


def test_hostile_path_segments_are_never_decoded_into_another_repo(quiet: LiveServer, target: str) -> None:
    """Percent-encoded separators stay inside their segment: no route reaches another repo's files."""
    victim = HfApi(endpoint=quiet.url, token=TOKENS["alice"]).create_repo("vault/hidden-files").repo_id
    for path in (f"/{target}/resolve/main/..%2F..%2F{quote(victim, safe='')}%2Fresolve%2Fmain%2F.gitattributes",
                 f"/{quote(target, safe='')}/resolve/main/keep.txt"):
        r = httpx.get(quiet.url + path)
        assert r.status_code == 404 and b"*.bin" not in r.content
