"""Signing in to the pages with a password, sessions, CSRF, access tokens and likes, over real
HTTP against a live server (SQLite and PostgreSQL); the tokens made in the browser flow are then
used by the real ``huggingface_hub`` client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.integration.conftest import BACKENDS
from tests.support.server import LiveServer, seeded_hub
from tests.web.conftest import PASSWORD, browser_for, csrf_of, sign_in
from tests.web.html import active_elements, dangers, parse
from tests.web.test_pages import assert_page
from tests.web.xss import PAYLOADS


def test_sign_in_sessions_and_sign_out(server: LiveServer, user: tuple[str, str]) -> None:
    name, token = user
    secret = HfApi(endpoint=server.url, token=token).create_repo(f"{name}/secret", private=True).repo_id
    anonymous = browser_for(server)
    form = anonymous.get("/login?next=/somewhere")
    assert_page(form)
    cookie = form.headers["set-cookie"].lower()
    assert "modelyard_form=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert 'name="next" value="/somewhere"' in form.text and 'type="password"' in form.text

    # wrong password, unknown user: the same 401 page, no session
    for who, password in ((name, "wrong password!"), (f"nobody-{name}", PASSWORD)):
        r = anonymous.post("/login", data={"csrf": csrf_of(form.text), "username": who, "password": password})
        assert_page(r, 401)
        assert "Invalid user name or password" in r.text and "modelyard_session" not in r.headers.get("set-cookie", "")
    # no CSRF token, or another one: refused, nothing happens
    for bad in ({}, {"csrf": "forged"}):
        r = anonymous.post("/login", data={**bad, "username": name, "password": PASSWORD})
        assert_page(r, 403)
        assert "modelyard_session" not in r.headers.get("set-cookie", "")

    ok = anonymous.post("/login", data={"csrf": csrf_of(form.text), "username": name, "password": PASSWORD,
                                        "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # only paths of this hub
    session = ok.headers["set-cookie"]
    assert "modelyard_session=" in session and "HttpOnly" in session and "samesite=lax" in session.lower()
    browser = sign_in(server, name, target=f"/{secret}")
    page = assert_page(browser.get(f"/{secret}"))
    assert f'href="/{name}">{name}</a>' in page and "Sign out" in page
    assert_page(httpx.get(f"{server.url}/{secret}"), 404)  # without the cookie

    # the cookie never authenticates the API
    api_write = browser.post("/api/repos/create", json={"name": "from-a-cookie"})
    assert api_write.status_code == 401
    assert "from-a-cookie" not in [m.id.split("/")[1] for m in HfApi(endpoint=server.url, token=token)
                                   .list_models(author=name)]

    # sign out: needs the session's token; then the old cookie is worth nothing
    old = browser.cookies["modelyard_session"]
    assert_page(browser.post("/logout", data={"csrf": "forged"}), 403)
    assert_page(browser.get(f"/{secret}"))  # still signed in
    out = browser.post("/logout", data={"csrf": csrf_of(browser.get("/").text)})
    assert out.status_code == 303 and 'modelyard_session=""' in out.headers["set-cookie"]
    replay = httpx.get(f"{server.url}/{secret}", cookies={"modelyard_session": old})
    assert_page(replay, 404)


def test_tokens_made_in_the_browser_work_with_the_client(server: LiveServer, user: tuple[str, str]) -> None:
    name, _token = user
    anonymous = httpx.get(f"{server.url}/settings/tokens")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    browser = sign_in(server, name)
    page = assert_page(browser.get("/settings/tokens"))
    assert "seeded" in parse(page).text and page.count("Revoke") >= 1
    csrf = csrf_of(page)

    refused = browser.post("/settings/tokens", data={"name": "ci", "role": "write"})
    assert_page(refused, 403)
    assert "ci" not in parse(assert_page(browser.get("/settings/tokens"))).text  # nothing made

    made = assert_page(browser.post("/settings/tokens", data={"csrf": csrf, "name": "ci", "role": "write"}))
    value = re.search(r'id="new-token" class="token" readonly value="(hf_[^"]+)"', made)
    assert value is not None
    assert made.count(value.group(1)) == 1  # shown once, on this page only
    assert value.group(1) not in assert_page(browser.get("/settings/tokens"))
    client = HfApi(endpoint=server.url, token=value.group(1))
    assert client.whoami()["name"] == name
    client.create_repo("made-with-a-browser-token")  # a write token
    assert_page(browser.post("/settings/tokens", data={"csrf": csrf, "name": "ci", "role": "write"}), 400)
    assert_page(browser.post("/settings/tokens", data={"csrf": csrf, "name": "", "role": "write"}), 400)
    assert_page(browser.post("/settings/tokens", data={"csrf": csrf, "name": "x", "role": "admin"}), 400)

    gone = browser.post("/settings/tokens/revoke", data={"csrf": csrf, "name": "ci"})
    assert gone.status_code == 303
    with pytest.raises(HfHubHTTPError) as err:
        client.whoami()
    assert err.value.response.status_code == 401
    assert_page(browser.post("/settings/tokens/revoke", data={"csrf": csrf, "name": "ci"}), 404)


def test_likes_from_the_page(api: HfApi, server: LiveServer, user: tuple[str, str], repo_name: str) -> None:
    name, _token = user
    repo_id = api.create_repo(repo_name).repo_id
    browser = sign_in(server, name)
    page = assert_page(browser.get(f"/{repo_id}"))
    assert "&#9825; Like" in page or "♡ Like" in page
    assert_page(browser.post(f"/{repo_id}/like", data={"like": "1"}), 403)  # no CSRF token
    assert api.model_info(repo_id).likes == 0
    r = browser.post(f"/{repo_id}/like", data={"csrf": csrf_of(page), "like": "1", "next": f"/{repo_id}"})
    assert r.status_code == 303 and r.headers["location"] == f"/{repo_id}"
    assert api.model_info(repo_id).likes == 1 and name in [u.username for u in api.list_repo_likers(repo_id)]
    assert 'aria-pressed="true"' in browser.get(f"/{repo_id}").text
    browser.post(f"/{repo_id}/like", data={"csrf": csrf_of(page), "like": "0"})
    assert api.model_info(repo_id).likes == 0
    assert httpx.post(f"{server.url}/{repo_id}/like", data={"csrf": "x", "like": "1"}).status_code == 401


def test_sign_up_is_closed_by_default(server: LiveServer) -> None:
    client = browser_for(server)
    assert_page(client.get("/join"), 404)
    token = csrf_of(client.get("/login").text)
    r = client.post("/join", data={"csrf": token, "username": f"j{uuid.uuid4().hex[:8]}", "password": PASSWORD})
    assert_page(r, 404)
    assert "Sign up" not in client.get("/login").text


def test_passwords_from_the_cli_and_seed(server: LiveServer) -> None:
    name = f"p{uuid.uuid4().hex[:10]}"
    short = server.cli("users", "create", name, "--password-stdin", stdin="short\n", check=False)
    assert short.returncode != 0 and "8 to 1024" in short.stderr
    assert httpx.get(f"{server.url}/{name}").status_code == 404  # no account was made
    server.seed({"users": [{"name": name, "password": PASSWORD}]})
    browser = sign_in(server, name)
    server.seed({"users": [{"name": name, "password": PASSWORD}]})  # again: changes nothing
    assert "Sign out" in browser.get("/").text  # the session lives on
    server.seed({"users": [{"name": name, "password": PASSWORD + "!"}]})  # a new password ends sessions
    assert "Sign out" not in browser.get("/").text
    sign_in(server, name, PASSWORD + "!")


def test_hostile_token_names_stay_text(server: LiveServer, user: tuple[str, str]) -> None:
    name, _token = user
    browser = sign_in(server, name)
    page = assert_page(browser.get("/settings/tokens"))
    baseline, csrf = active_elements(page), csrf_of(page)
    for i, payload in enumerate(PAYLOADS[:40]):
        label = f"{i}{payload}"[:64].replace("\n", " ").replace("\t", " ")
        made = browser.post("/settings/tokens", data={"csrf": csrf, "name": label, "role": "read"})
        assert made.status_code in (200, 400), label
    page = assert_page(browser.get("/settings/tokens"))
    extra = active_elements(page) - baseline
    # each token adds its revoke form (a form, two hidden inputs and a button): nothing else
    made_count = len(re.findall(r'aria-label="Revoke ', page)) - 1
    assert extra == {"form": made_count, "input": 2 * made_count, "button": made_count}, extra
    found = dangers(page, active_elements(page))
    assert found == [], found


@pytest.fixture(scope="module", params=BACKENDS)
def open_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"signup-{request.param}")) as hub:
        hub.extra_env["MODELYARD_ALLOW_SIGNUP"] = "true"
        with hub.running() as live:
            yield live


def test_sign_up_when_the_operator_allows_it(open_server: LiveServer) -> None:
    server = open_server
    client = browser_for(server)
    form = assert_page(client.get("/join"))
    name = f"j{uuid.uuid4().hex[:8]}"
    assert_page(client.post("/join", data={"csrf": csrf_of(form), "username": name, "password": "short"}), 400)
    assert_page(client.post("/join", data={"csrf": csrf_of(form), "username": "alice", "password": PASSWORD}), 409)
    assert_page(client.post("/join", data={"csrf": csrf_of(form), "username": "bad name!", "password": PASSWORD}),
                400)
    made = client.post("/join", data={"csrf": csrf_of(form), "username": name, "password": PASSWORD})
    assert made.status_code == 303 and "modelyard_session=" in made.headers["set-cookie"]
    assert f'href="/{name}"' in client.get("/").text  # signed in at once
    sign_in(server, name)
