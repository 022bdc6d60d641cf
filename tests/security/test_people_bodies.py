"""The collection and follow routes judge a body from the URL and the token before reading it,
and refuse a body past the JSON limit by its declared size."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from tests.support.attack import connect, read_status, request_head
from tests.support.server import TOKENS, LiveServer

MB = 1024 * 1024


@pytest.fixture(scope="module")
def slug(quiet: LiveServer) -> str:
    api = HfApi(endpoint=quiet.url, token=TOKENS["alice"])
    return api.create_collection("bodies", private=True).slug


def announce(server: LiveServer, method: str, path: str, user: str | None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Content-Length": str(100 * MB)}
    if user is not None:
        headers["Authorization"] = f"Bearer {TOKENS[user]}"
    with connect(server) as sock:
        sock.sendall(request_head(method, path, headers))
        return read_status(sock, timeout=5)


def test_collection_bodies_are_judged_before_they_are_read(quiet: LiveServer, slug: str) -> None:
    item = "0" * 24
    routes = [
        ("POST", "/api/collections", 401, 413),
        ("PATCH", f"/api/collections/{slug}", 404, 413),
        ("POST", f"/api/collections/{slug}/items", 404, 413),
        ("PATCH", f"/api/collections/{slug}/items/{item}", 404, 413),
        ("POST", f"/api/collections/{slug}/resource-group", 404, 413),
    ]
    for method, path, stranger, owner in routes:
        # anonymous on create, bob (who cannot see the private collection) elsewhere
        status, head = announce(quiet, method, path, None if path == "/api/collections" else "bob")
        assert status == stranger, (path, status)
        assert b"connection: close" in head.lower(), path
        status, head = announce(quiet, method, path, "alice")  # allowed: refused for its size
        assert status == owner, (path, status)
        assert b"connection: close" in head.lower(), path
