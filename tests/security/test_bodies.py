"""Hardening findings 1 and 2: request bodies are authorised before they are read, bounded by
route, and parsed off the event loop, so that one hostile body neither stalls the other requests
nor bloats the server."""

from __future__ import annotations

import base64
import json
import socket
import threading

import httpx
import pytest
from huggingface_hub import HfApi

from tests.support.attack import connect, probing, read_status, request_head, rss_bytes
from tests.support.server import TOKENS, LiveServer

MB = 1024 * 1024


@pytest.fixture(scope="module")
def target(quiet: LiveServer) -> str:
    api = HfApi(endpoint=quiet.url, token=TOKENS["alice"])
    repo_id = api.create_repo("acme/target").repo_id
    api.upload_file(path_or_fileobj=b"keep", path_in_repo="keep.txt", repo_id=repo_id)
    return repo_id


def info_url(server: LiveServer, repo_id: str) -> str:
    return f"{server.url}/api/models/{repo_id}/revision/main"


def small_lines(total: int) -> bytes:
    """``total`` bytes of tiny NDJSON operations: the costliest body to parse per byte."""
    header = b'{"key":"header","value":{"summary":"flood"}}\n'
    line = b'{"key":"deletedFile","value":{"path":"nope.txt"}}\n'
    return header + line * ((total - len(header)) // len(line))


def send_all(sock: socket.socket, body: bytes) -> None:
    """Send ``body`` until done or the server hangs up (what it should do once it has answered)."""
    view = memoryview(body)
    try:
        for start in range(0, len(view), MB):
            sock.sendall(view[start : start + MB])
    except OSError:
        pass


def test_anonymous_commit_flood_is_refused_before_its_body(quiet: LiveServer, target: str) -> None:
    """An anonymous 60 MB NDJSON commit gets its 401 from the headers alone: the body is not
    read, a GET meanwhile stays fast, and the server's memory does not grow with it."""
    body = small_lines(60 * MB)
    before = rss_bytes(quiet)
    with connect(quiet) as sock, probing(info_url(quiet, target)) as probe:
        sock.sendall(request_head("POST", f"/api/models/{target}/commit/main", {
            "Content-Type": "application/x-ndjson", "Content-Length": str(len(body))}))
        status, head = read_status(sock, timeout=5)  # no body sent yet: the headers must suffice
        send_all(sock, body)  # and the rest is not taken in: the server hangs up
    assert status == 401
    assert b"connection: close" in head.lower()
    assert probe.worst < 1.0, f"a GET waited {probe.worst:.2f} s during the attack"
    assert rss_bytes(quiet) - before < 30 * MB


def test_writer_commit_flood_is_parsed_off_the_loop_and_bounded(quiet: LiveServer, target: str) -> None:
    """Even with a write token, 60 MB of tiny operations is refused once past the operation
    limit, parsed in worker threads meanwhile: other requests stay fast; nothing is committed."""
    head_before = HfApi(endpoint=quiet.url).model_info(target).sha
    body = small_lines(60 * MB)
    with probing(info_url(quiet, target)) as probe:
        r = httpx.post(f"{quiet.url}/api/models/{target}/commit/main", content=body, timeout=120, headers={
            "Authorization": f"Bearer {TOKENS['alice']}", "Content-Type": "application/x-ndjson"})
    assert r.status_code == 413 and r.headers["X-Error-Code"] == "PayloadTooLarge"
    assert "operations" in r.headers["X-Error-Message"]
    assert probe.worst < 1.0, f"a GET waited {probe.worst:.2f} s during the commit"
    assert HfApi(endpoint=quiet.url).model_info(target).sha == head_before


def bounded_routes(repo_id: str) -> list[tuple[str, str, int]]:
    """(method, path, the status expected from the headers alone) for every route with a body."""
    api = f"/api/models/{repo_id}"
    return [
        ("POST", "/api/repos/create", 401),
        ("DELETE", "/api/repos/delete", 401),
        ("POST", "/api/repos/move", 401),
        ("PUT", f"{api}/settings", 401),
        ("POST", f"{api}/preupload/main", 401),
        ("POST", f"{api}/commit/main", 401),
        ("POST", f"{api}/branch/b1", 401),
        ("POST", f"{api}/tag/main", 401),
        ("POST", f"{api}/super-squash/main", 401),
        ("POST", f"{api}/lfs-files/batch", 401),
        ("POST", f"{api}/discussions", 401),
        ("POST", f"{api}/discussions/1/comment", 401),
        ("POST", f"{api}/discussions/1/title", 401),
        ("POST", f"{api}/discussions/1/status", 401),
        ("POST", f"{api}/discussions/1/merge", 401),
        ("POST", f"{api}/discussions/1/comment/{'0' * 24}/edit", 401),
        ("POST", f"{api}/discussions/1/comment/{'0' * 24}/hide", 401),
        ("POST", "/uploads", 401),
        ("POST", f"{api}/user-access-request", 401),
        ("POST", f"{api}/user-access-request/handle", 401),
        ("POST", f"{api}/user-access-request/grant", 401),
        ("POST", f"{api}/paths-info/main", 413),  # readable: refused for its declared size
        ("POST", f"/{repo_id}.git/info/lfs/objects/batch", 413),
        ("POST", f"/{repo_id}.git/info/lfs/objects/verify", 413),
        ("POST", "/api/validate-yaml", 413),
        ("POST", "/api/telemetry/x", 413),
        ("POST", "/xet/v1/telemetry", 413),
        ("POST", "/_lfs/complete/not-a-token", 401),
        ("PUT", "/_lfs/upload/not-a-token", 401),
        ("POST", "/xet/v1/shards", 401),
        ("POST", "/xet/v1/xorbs/default/" + "0" * 64, 401),
    ]


def test_every_body_is_judged_before_it_is_read(quiet: LiveServer, target: str) -> None:
    """A 100 MB body announced to any route is answered before a byte of it is sent: by its
    credentials or by its declared size, then the connection is closed."""
    for method, path, expected in bounded_routes(target):
        with connect(quiet) as sock:
            sock.sendall(request_head(method, path, {
                "Content-Type": "application/json", "Content-Length": str(100 * MB)}))
            status, head = read_status(sock, timeout=5)
        assert status == expected, (path, status)
        assert b"connection: close" in head.lower(), path


def test_chunked_bodies_are_cut_at_the_route_limit(quiet: LiveServer, target: str) -> None:
    """Without a Content-Length the limit applies as the body streams in."""
    chunk = b"%x\r\n%s\r\n" % (MB, b" " * MB)
    for path in ("/api/validate-yaml", f"/{target}.git/info/lfs/objects/batch"):
        before = rss_bytes(quiet)
        with connect(quiet) as sock:
            sock.sendall(request_head("POST", path, {"Content-Type": "application/json",
                                                     "Transfer-Encoding": "chunked"}))
            sender = threading.Thread(target=send_all, args=(sock, chunk * 150))
            sender.start()
            status, _ = read_status(sock, timeout=20)
            sender.join(60)
        assert status == 413, path
        assert rss_bytes(quiet) - before < 60 * MB, path


def yaml_card(items: int) -> str:
    return "---\ntags:\n" + "".join(f"- t{i}\n" for i in range(items)) + "---\n# card\n"


def test_validate_yaml_does_not_stall_the_server(quiet: LiveServer, target: str) -> None:
    """A 4 MB YAML list (it used to be parsed on the event loop: 11 s without an answer to anyone)
    is refused for its size; a 0.9 MB one (near the largest accepted) is parsed in the pool for
    heavy work: GETs meanwhile stay fast either way."""
    for items, status in ((420_000, 400), (100_000, 200)):
        card = yaml_card(items)
        with probing(info_url(quiet, target)) as probe:
            r = httpx.post(f"{quiet.url}/api/validate-yaml", json={"content": card, "repoType": "model"}, timeout=120)
        assert probe.worst < 1.0, f"a GET waited {probe.worst:.2f} s while {len(card)} bytes of YAML were checked"
        assert r.status_code == status, (len(card), r.text[:200])
        if status == 400:
            assert "larger than" in r.json()["errors"][0]["message"]


def test_validate_yaml_memory_is_bounded(quiet: LiveServer) -> None:
    """150 MB sent to validate-yaml anonymously: refused from its header, RSS unchanged."""
    before = rss_bytes(quiet)
    content = json.dumps({"content": "x" * (150 * MB - 64), "repoType": "model"}).encode()
    r = httpx.post(f"{quiet.url}/api/validate-yaml", content=content, headers={"Content-Type": "application/json"},
                   timeout=120)
    assert r.status_code == 413
    assert rss_bytes(quiet) - before < 30 * MB


def test_deeply_nested_json_bodies_are_bad_requests(quiet: LiveServer, target: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    auth = {"Authorization": f"Bearer {TOKENS['alice']}"}
    r = httpx.post(f"{quiet.url}/api/repos/create", content=b'{"name":' + nested + b"}", headers=auth)
    assert r.status_code == 400 and "deeply" in r.headers["X-Error-Message"]
    line = b'{"key":"header","value":{"summary":"x","description":' + nested + b"}}\n"
    r = httpx.post(f"{quiet.url}/api/models/{target}/commit/main", content=line,
                   headers={**auth, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and "deeply" in r.headers["X-Error-Message"]
    content = base64.b64encode(b"x").decode()
    ok = json.dumps({"key": "file", "value": {"path": "a.txt", "content": content}}).encode()
    r = httpx.post(f"{quiet.url}/api/models/{target}/commit/main", content=line.replace(nested, b'""') + ok,
                   headers={**auth, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
