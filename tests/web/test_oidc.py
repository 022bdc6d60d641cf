"""Single sign-on: the web hub signs people in through a real OpenID provider on loopback.

``oidc-provider`` (npm, run by node) is the identity provider: the browser (an httpx client
keeping cookies, following each redirect by hand across the two hosts) goes from the hub's
"Sign in with" link through the provider's login and consent forms and back; the hub makes the
user, maps their groups to organization roles, and opens a session. A hostile provider then
answers the same flow with ID tokens of another issuer, another audience, a wrong nonce, a forged
signature, no signature, or expired, and the callback is replayed with a wrong state or without
the flow's cookie: each is refused (401, the reason said) and signs nobody in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin, urlparse

import httpx
import pytest

from tests.support.oidc_providers import CLIENT_ID, hostile_provider, real_provider
from tests.support.server import SEED, LiveServer
from tests.web.conftest import _OPEN

SECRET = "a-client-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    hub = LiveServer(tmp_path_factory.mktemp("sso"), None, "sqlite")
    redirect = f"{hub.url}/login/oidc/callback"
    with real_provider(redirect, SECRET, {"dana": ["ml-team", "staff"], "erin": []}) as provider:
        hub.extra_env.update({
            "MODELYARD_OIDC_ISSUER": provider.issuer, "MODELYARD_OIDC_CLIENT_ID": CLIENT_ID,
            "MODELYARD_OIDC_CLIENT_SECRET": SECRET, "MODELYARD_OIDC_NAME": "Corp SSO",
            "MODELYARD_OIDC_GROUP_ROLES": '{"ml-team": "acme:write", "staff": "vault:read"}',
        })
        hub.prepare()
        with hub.running():
            yield hub, provider.issuer


def new_browser() -> httpx.Client:
    """A browser: cookies kept, closed after the test (``tests/web/conftest.py``)."""
    client = httpx.Client(timeout=30)
    _OPEN.append(client)
    return client


def follow(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Follow redirects by hand (the hub and the provider are two hosts, cookies per host)."""
    while response.status_code in (302, 303):
        response = client.get(urljoin(str(response.url), response.headers["location"]))
    return response


def submit(client: httpx.Client, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
    """Post the page's first form with ``fields`` (plus its hidden inputs)."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action is not None, page.text[:500]
    hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    response = client.post(urljoin(str(page.url), unescape(action.group(1))), data={**hidden, **fields})
    return follow(client, response)


def sign_in_through_the_provider(hub: LiveServer, login: str) -> httpx.Client:
    browser = new_browser()
    page = browser.get(f"{hub.url}/login")
    assert "Sign in with Corp SSO" in page.text
    page = follow(browser, browser.get(f"{hub.url}/login/oidc?next=/settings/tokens"))
    assert urlparse(str(page.url)).port != urlparse(hub.url).port  # at the provider's login form
    page = submit(browser, page, {"login": login, "password": "any"})
    if "/interaction/" in str(page.url):  # the consent form
        page = submit(browser, page, {})
    assert str(page.url) == f"{hub.url}/settings/tokens", (page.url, page.text[:300])
    assert page.status_code == 200
    return browser


def test_sign_in_makes_the_user_and_maps_groups(real: tuple[LiveServer, str]) -> None:
    hub, issuer = real
    browser = sign_in_through_the_provider(hub, "dana")
    assert "dana" in browser.get(f"{hub.url}/settings/tokens").text
    members = hub.cli("audit", "--account", "acme", "--action", "org.member_role_set").stdout
    assert '"subject": "user:dana"' in members and '"via": "oidc"' in members
    signins = hub.cli("audit", "--account", "dana", "--action", "user.sign_in").stdout
    assert '"via": "oidc"' in signins and '"actor": "dana"' in signins
    # The same person again: the same user, no second account.
    again = sign_in_through_the_provider(hub, "dana")
    assert "dana" in again.get(f"{hub.url}/settings/tokens").text
    assert hub.cli("audit", "--action", "user.created").stdout.count('"subject": "user:dana"') == 1
    # A person outside the mapped groups is signed in with no org role.
    sign_in_through_the_provider(hub, "erin")
    assert '"subject": "user:erin"' not in hub.cli("audit", "--account", "acme").stdout
    # Local accounts still sign in with their passwords.
    hub.cli("users", "create", "local-l", "--password-stdin", stdin="correct horse battery staple\n")
    form = httpx.Client(base_url=hub.url, timeout=30)
    _OPEN.append(form)
    page = form.get("/login")
    token = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert token is not None
    done = form.post("/login", data={"csrf": token.group(1), "username": "local-l",
                                     "password": "correct horse battery staple", "next": "/"})
    assert done.status_code == 303


def test_a_name_taken_by_a_local_account_is_not_handed_over(real: tuple[LiveServer, str]) -> None:
    hub, _issuer = real
    hub.seed({"users": [{"name": "frank"}]})  # a local account named like the provider's user
    browser = new_browser()
    page = follow(browser, browser.get(f"{hub.url}/login/oidc"))
    page = submit(browser, page, {"login": "frank", "password": "any"})
    if "/interaction/" in str(page.url):
        page = submit(browser, page, {})
    assert page.status_code == 401 and "taken on this hub by another account" in unescape(page.text)
    assert "modelyard_session" not in browser.cookies


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, object]]:
    with hostile_provider() as provider:
        hub = LiveServer(tmp_path_factory.mktemp("hostile-sso"), None, "sqlite", extra_env={
            "MODELYARD_OIDC_ISSUER": provider.issuer, "MODELYARD_OIDC_CLIENT_ID": CLIENT_ID,
            "MODELYARD_OIDC_CLIENT_SECRET": SECRET,
        })
        hub.cli("db", "upgrade")
        hub.seed(SEED)
        with hub.running():
            yield hub, provider


@pytest.mark.parametrize(("mode", "reason"), [
    ("good", None),
    ("issuer", "was issued by"),
    ("audience", "another client"),
    ("nonce", "nonce"),
    ("signature", "signature does not verify"),
    ("none", "signature does not verify"),
    ("expired", "expired"),
])
def test_id_tokens_that_are_not_for_this_sign_in_are_refused(hostile: tuple[LiveServer, object], mode: str,
                                                             reason: str | None) -> None:
    hub, provider = hostile
    provider.mode = mode  # type: ignore[attr-defined]
    browser = new_browser()
    page = follow(browser, browser.get(f"{hub.url}/login/oidc"))
    if reason is None:
        assert page.status_code == 200 and str(page.url) == f"{hub.url}/"
        assert browser.cookies.get("modelyard_session")
        return
    assert page.status_code == 401, page.text[:300]
    assert reason in page.headers["X-Error-Message"]
    assert not browser.cookies.get("modelyard_session")


def test_a_callback_without_its_flow_or_with_another_state_is_refused(hostile: tuple[LiveServer, object]) -> None:
    hub, provider = hostile
    provider.mode = "good"  # type: ignore[attr-defined]
    browser = new_browser()
    to_provider = browser.get(f"{hub.url}/login/oidc")
    back = browser.get(to_provider.headers["location"])
    callback = back.headers["location"]
    forged = re.sub(r"state=[^&]+", "state=someone-elses", callback)
    refused = browser.get(forged)
    assert refused.status_code == 401 and "state" in refused.headers["X-Error-Message"]
    # The flow's cookie is spent: the genuine callback cannot be replayed after a refusal either.
    stranger = new_browser()
    replay = stranger.get(callback)  # another browser, without the flow's cookie
    assert replay.status_code == 401 and "did not start here" in replay.headers["X-Error-Message"]
    assert not stranger.cookies.get("modelyard_session") and not browser.cookies.get("modelyard_session")
