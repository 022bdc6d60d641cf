"""Browser-like clients of the web tests: cookies kept, signed in through the real form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import LiveServer

PASSWORD = "correct horse battery staple"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found is not None, "the page has no form"
    return found.group(1)


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def browser_for(server: LiveServer) -> httpx.Client:
    """A client that keeps cookies, as a browser does (closed after the test)."""
    client = httpx.Client(base_url=server.url, timeout=30)
    _OPEN.append(client)
    return client


def sign_in(server: LiveServer, user: str, password: str = PASSWORD, target: str = "/") -> httpx.Client:
    client = browser_for(server)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"csrf": token, "username": user, "password": password, "next": target})
    assert r.status_code == 303 and r.headers["location"] == target, r.text[:300]
    return client


@pytest.fixture
def user(server: LiveServer) -> tuple[str, str]:
    """A user made with ``users create --password-stdin``, and a write token of theirs."""
    name, token = f"w{uuid.uuid4().hex[:10]}", f"hf_{uuid.uuid4().hex}"
    server.cli("users", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    server.seed({"users": [{"name": name, "tokens": [{"value": token, "role": "write", "name": "seeded"}]}]})
    return name, token


