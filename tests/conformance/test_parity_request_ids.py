"""Request ids through the real client: every response carries `X-Request-Id` (the client's own,
bounded, or a fresh one), and the server's log line and error body name the request by it."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import get_session, hf_raise_for_status

from tests.support.server import TOKENS, LiveServer

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

def _log_lines(server: LiveServer, rid: str, count: int = 1) -> list[str]:
    """The server's log lines for a request id (written just after the response went out)."""
    deadline = time.monotonic() + 10
    while True:
        text = server.log_path.read_text(errors="replace")
        lines = [line for line in text.splitlines() if f"request_id={rid}" in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_request_id_the_client_sent_is_echoed_logged_and_in_errors(server: LiveServer) -> None:
    mine = f"trace-{uuid.uuid4().hex}"
    api = HfApi(endpoint=server.url, token=TOKENS["alice"], headers={"X-Request-Id": mine})
    missing = f"acme/missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RepositoryNotFoundError, match=rf"\(Request ID: {mine}\)") as err:
        api.model_info(missing)
    response = err.value.response
    assert response.request.headers["X-Amzn-Trace-Id"] == mine  # what the client sent
    assert response.headers["X-Request-Id"] == mine
    assert response.json()["requestId"] == mine
    assert err.value.request_id == mine
    # HEAD has no body: the header alone carries it, and the client prints it.
    with pytest.raises(RepositoryNotFoundError, match=rf"\(Request ID: {mine}\)"):
        get_hf_file_metadata(
            f"{server.url}/{missing}/resolve/main/config.json", token=TOKENS["alice"], headers={"X-Request-Id": mine}
        )
    lines = _log_lines(server, mine, count=2)
    assert any(f'"GET /api/models/{missing}" 404' in line for line in lines), lines
    assert any(f'"HEAD /{missing}/resolve/main/config.json" 404' in line for line in lines), lines


def test_every_response_has_a_request_id(server: LiveServer, api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    # The default client names each call with a fresh X-Amzn-Trace-Id: echoed on success too.
    ok = get_session().get(f"{server.url}/api/models/{rid}")
    hf_raise_for_status(ok)
    sent = ok.request.headers["X-Amzn-Trace-Id"]
    assert UUID.fullmatch(sent) and ok.headers["X-Request-Id"] == sent
    assert _log_lines(server, sent) and f'"GET /api/models/{rid}" 200' in _log_lines(server, sent)[0]
    # Without any id from the client (plain httpx), the server makes one up: fresh each time.
    seen = {httpx.get(f"{server.url}/api/models/{rid}").headers["X-Request-Id"] for _ in range(3)}
    assert len(seen) == 3 and all(UUID.fullmatch(s) for s in seen)
    # Errors the default client raises carry its own id.
    with pytest.raises(RevisionNotFoundError) as err:
        api.model_info(rid, revision="nope")
    sent = err.value.response.request.headers["X-Amzn-Trace-Id"]
    assert err.value.response.headers["X-Request-Id"] == sent
    assert f"(Request ID: {sent})" in str(err.value)


@pytest.mark.parametrize("value", [
    "a" * 201,  # too long
    "two words",  # space
    'quote"d',
    "semi;colon\tand tab",
    "-leading-dash",
    "line%0d%0aX-Injected: 1",
])
def test_unacceptable_client_ids_are_replaced(server: LiveServer, value: str) -> None:
    api = HfApi(endpoint=server.url, token=TOKENS["alice"], headers={"X-Request-Id": value})
    with pytest.raises(RepositoryNotFoundError) as err:
        api.model_info(f"acme/missing-{uuid.uuid4().hex[:8]}")
    got = err.value.response.headers["X-Request-Id"]
    assert got != value and UUID.fullmatch(got)
    assert "X-Injected" not in err.value.response.headers
    assert value not in server.log_path.read_text(errors="replace")
    assert _log_lines(server, got)


def test_request_id_with_raw_bytes_is_replaced(server: LiveServer) -> None:
    """Bytes the client library would refuse to send (CR, non-ASCII) sent on a raw socket."""
    for bad in (b"id\xffx", b"id\rX-Injected: 1", b"id\x7f"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /api/models/acme/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: "
                         + bad + b"\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head = answer.split(b"\r\n\r\n", 1)[0]
        assert b"X-Injected" not in head
        if head.startswith(b"HTTP/1.1 404"):  # the parser accepted the line: the id was replaced
            rid = re.search(rb"(?im)^x-request-id: (.*)$", head)
            assert rid is not None and UUID.fullmatch(rid.group(1).decode().strip())
        else:
            assert head.startswith(b"HTTP/1.1 400")  # refused by the HTTP parser itself


def test_requests_refused_before_the_app_get_a_request_id_too(server: LiveServer) -> None:
    """Header blocks over the limit are refused by the connection (431) before any route runs."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/models/acme/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: mine\r\nX-Big: "
                     + b"a" * (100 * 1024) + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431")
    rid = re.search(rb"(?im)^x-request-id: (.*)$", head)
    assert rid is not None
    got = rid.group(1).decode().strip()
    assert UUID.fullmatch(got) and json.loads(body)["requestId"] == got
    assert _log_lines(server, got) and " 431 " in _log_lines(server, got)[0]


def test_access_lines_never_hold_the_tokens_of_upload_urls(server: LiveServer, api: HfApi, repo_name: str) -> None:
    def lfs_lines() -> list[str]:
        return [line for line in server.log_path.read_text(errors="replace").splitlines() if "/_lfs/" in line]

    rid = api.create_repo(f"acme/{repo_name}").repo_id
    seen = len(lfs_lines())
    data = uuid.uuid4().bytes * 64  # new bytes: the client has to PUT them to the signed URL
    api.upload_file(path_or_fileobj=b"\x00" + data, path_in_repo="w.bin", repo_id=rid)  # LFS (binary)
    deadline = time.monotonic() + 10
    while len(lfs_lines()) == seen and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = lfs_lines()
    assert len(lines) > seen  # the upload's PUT was logged...
    assert all(re.search(r'"[A-Z]+ /_lfs/[a-z]+/<token>" ', line) for line in lines), lines  # ...without its token
