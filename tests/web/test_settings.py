"""The settings pages (profile and password, organizations and members' roles, webhooks) and
the API beside them, over real HTTP against a live server (SQLite and PostgreSQL). What a page
changes, the real ``huggingface_hub`` client then sees; every refusal changes nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.support.server import LiveServer
from tests.web.conftest import PASSWORD, browser_for, csrf_of, sign_in
from tests.web.html import active_elements, dangers
from tests.web.test_pages import assert_page

HOOK_URL = "http://127.0.0.1:9/hook"  # never posted to: the watched repo does nothing


def make_user(server: LiveServer) -> tuple[str, str]:
    """A user with a password and a write token."""
    name, token = f"s{uuid.uuid4().hex[:10]}", f"hf_{uuid.uuid4().hex}"
    server.cli("users", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    server.seed({"users": [{"name": name, "tokens": [{"value": token, "role": "write", "name": "seeded"}]}]})
    return name, token


def post_form(client: httpx.Client, page: str, target: str, /, **fields: str) -> httpx.Response:
    """Submit a form of ``page`` to ``target`` as a browser does: with the CSRF token the page carries."""
    return client.post(target, data={"csrf": csrf_of(client.get(page).text), **fields})


def api_json(server: LiveServer, method: str, path: str, token: str, **body: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", json=body or None, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})


def test_profile_and_password(server: LiveServer) -> None:
    name, token = make_user(server)
    api = HfApi(endpoint=server.url, token=token)
    browser = sign_in(server, name)
    assert_page(browser.get("/settings/profile"))
    saved = post_form(browser, "/settings/profile", "/settings/profile", fullname="Ada Lovelace",
                      email="ada@example.org")
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/profile?saved=profile"
    me = api.whoami()
    assert me["fullname"] == "Ada Lovelace" and me["email"] == "ada@example.org"
    assert "Your profile is saved." in browser.get(saved.headers["location"]).text

    # refused, and nothing changes: a bad email, an empty name, no CSRF token
    for fields, status in (({"fullname": "X", "email": "not an email"}, 400), ({"fullname": " ", "email": ""}, 400)):
        r = post_form(browser, "/settings/profile", "/settings/profile", **fields)
        assert_page(r, status)
        assert r.headers["x-error-code"] == "BadRequest"
    assert_page(browser.post("/settings/profile", data={"fullname": "Forged"}), 403)
    assert api.whoami()["fullname"] == "Ada Lovelace"

    # the API beside the page
    r = api_json(server, "PUT", "/api/settings/profile", token, fullname="Ada L.", email="")
    assert r.status_code == 200 and r.json()["fullname"] == "Ada L." and r.json()["email"] is None
    assert api_json(server, "GET", "/api/settings/profile", token).json()["name"] == name
    assert httpx.put(f"{server.url}/api/settings/profile", json={"fullname": "anon"}).status_code == 401
    reader = f"hf_{uuid.uuid4().hex}"
    server.seed({"users": [{"name": name, "tokens": [{"value": reader, "role": "read", "name": "reader"}]}]})
    assert api_json(server, "PUT", "/api/settings/profile", reader, fullname="Nope").status_code == 403
    assert api.whoami()["fullname"] == "Ada L."

    # a new password: the current one is required; every other session ends, this browser stays in
    other_device = sign_in(server, name)
    new = "another long passphrase"
    wrong = post_form(browser, "/settings/profile", "/settings/password", current="not it", password=new, confirm=new)
    assert_page(wrong, 401)
    differs = post_form(browser, "/settings/profile", "/settings/password", current=PASSWORD, password=new,
                        confirm=new + "!")
    assert_page(differs, 400)
    short = post_form(browser, "/settings/profile", "/settings/password", current=PASSWORD, password="short",
                      confirm="short")
    assert_page(short, 400)
    changed = post_form(browser, "/settings/profile", "/settings/password", current=PASSWORD, password=new,
                        confirm=new)
    assert changed.status_code == 303 and "modelyard_session=" in changed.headers["set-cookie"]
    assert "Sign out" in browser.get("/settings/profile").text  # the new session
    assert other_device.get("/settings/profile").headers["location"].startswith("/login")
    sign_in(server, name, new)
    form = browser_for(server)
    r = form.post("/login", data={"csrf": csrf_of(form.get("/login").text), "username": name, "password": PASSWORD})
    assert_page(r, 401)


def test_organizations_and_roles(server: LiveServer) -> None:
    owner, owner_token = make_user(server)
    member, member_token = make_user(server)
    outsider, outsider_token = make_user(server)
    org = f"o{uuid.uuid4().hex[:10]}"
    browser = sign_in(server, owner)
    created = post_form(browser, "/organizations/new", "/organizations/new", name=org, fullname="<b>Org</b> Inc")
    assert created.status_code == 303 and created.headers["location"] == f"/organizations/{org}/settings"
    settings_page = assert_page(browser.get(created.headers["location"]))
    assert "&lt;b&gt;Org&lt;/b&gt; Inc" in settings_page and "<b>Org" not in settings_page
    assert [(m["user"], m["role"]) for m in api_json(server, "GET", f"/api/organizations/{org}/settings",
                                                       owner_token).json()["members"]] == [(owner, "admin")]
    owner_api = HfApi(endpoint=server.url, token=owner_token)
    assert org in [o["name"] for o in owner_api.whoami()["orgs"]]
    secret = owner_api.create_repo(f"{org}/secret", private=True).repo_id

    # taken or reserved names, and a bad one: refused
    for name, status in ((org, 409), ("settings", 400), ("bad name", 400)):
        assert_page(post_form(browser, "/organizations/new", "/organizations/new", name=name), status)

    # add a member with the read role: they see the private repo, cannot push to the org
    page = f"/organizations/{org}/settings"
    added = post_form(browser, page, f"{page}/members", user=member, role="read", action="set")
    assert added.status_code == 303
    member_api = HfApi(endpoint=server.url, token=member_token)
    assert member_api.model_info(secret).id == secret
    with pytest.raises(HfHubHTTPError) as refused:
        member_api.create_repo(f"{org}/by-reader")
    assert refused.value.response.status_code == 403
    # write, through the API: now they can
    assert api_json(server, "PUT", f"/api/organizations/{org}/members/{member}", owner_token,
                    role="write").status_code == 200
    assert member_api.create_repo(f"{org}/by-writer").repo_id == f"{org}/by-writer"

    # only admins see and change the settings; outsiders learn nothing
    member_browser = sign_in(server, member)
    assert_page(member_browser.get(page), 403)
    assert_page(sign_in(server, outsider).get(page), 404)
    assert api_json(server, "PUT", f"/api/organizations/{org}/members/{outsider}", member_token,
                    role="admin").status_code == 403
    assert api_json(server, "GET", f"/api/organizations/{org}/settings", outsider_token).status_code == 404
    assert api_json(server, "PUT", f"/api/organizations/{org}/members/nobody-{org}", owner_token,
                    role="read").status_code == 404
    assert api_json(server, "PUT", f"/api/organizations/{org}/members/{member}", owner_token,
                    role="owner").status_code == 400

    # the last admin can be neither demoted nor removed; with a second admin, they can leave
    for r in (post_form(browser, page, f"{page}/members", user=owner, role="write", action="set"),
              post_form(browser, page, f"{page}/members", user=owner, action="remove")):
        assert_page(r, 409)
    assert api_json(server, "DELETE", f"/api/organizations/{org}/members/{owner}", owner_token).status_code == 409
    roles = {m["user"]: m["role"] for m in api_json(server, "GET", f"/api/organizations/{org}/settings",
                                                     owner_token).json()["members"]}
    assert roles == {owner: "admin", member: "write"}
    post_form(browser, page, f"{page}/members", user=member, role="admin", action="set")
    left = post_form(browser, page, f"{page}/members", user=owner, action="remove")
    assert left.status_code == 303 and left.headers["location"] == f"/{owner}"
    assert org not in [o["name"] for o in owner_api.whoami()["orgs"]]
    with pytest.raises(HfHubHTTPError):
        owner_api.model_info(secret)  # no longer a member: the private repo is gone from their view

    # the new admin renames the org's full name; the page's form changes it, CSRF required
    member_page = assert_page(member_browser.get(page))
    assert owner not in member_page.split("<h2>Members</h2>", 1)[1].split("Add a member")[0]
    assert_page(member_browser.post(f"{page}/profile", data={"fullname": "Forged"}), 403)
    renamed = post_form(member_browser, page, f"{page}/profile", fullname="Org Incorporated")
    assert renamed.status_code == 303
    assert api_json(server, "GET", f"/api/organizations/{org}/overview", member_token).json()["fullname"] == \
        "Org Incorporated"


def test_webhooks_page(server: LiveServer) -> None:
    name, token = make_user(server)
    api = HfApi(endpoint=server.url, token=token)
    repo_id = api.create_repo(f"{name}/watched").repo_id
    browser = sign_in(server, name)
    settings = assert_page(browser.get(f"/{repo_id}/settings"))
    assert f'href="/settings/webhooks?watch=model%3A{name}/watched"' in settings
    form = assert_page(browser.get(f"/settings/webhooks?watch=model:{repo_id}"))
    assert f">model:{repo_id}</textarea>" in form

    made = post_form(browser, "/settings/webhooks", "/settings/webhooks", url=HOOK_URL, watched=f"model:{repo_id}",
                     domain_repo="1", secret="s3cret")
    assert made.status_code == 303
    [hook] = api.list_webhooks()
    assert hook.url == HOOK_URL and hook.domains == ["repo"] and hook.secret == "s3cret" and not hook.disabled
    assert [(w.type, w.name) for w in hook.watched] == [("model", repo_id)]
    listed = assert_page(browser.get("/settings/webhooks"))
    assert HOOK_URL in listed and f"model:{repo_id}" in listed

    # refused, nothing made: a bad line, no event, a repo that does not exist, an unsafe URL
    for fields in ({"url": HOOK_URL, "watched": repo_id, "domain_repo": "1"},
                   {"url": HOOK_URL, "watched": f"model:{repo_id}"},
                   {"url": HOOK_URL, "watched": f"model:{name}/missing", "domain_repo": "1"},
                   {"url": "javascript:alert(1)", "watched": f"model:{repo_id}", "domain_repo": "1"}):
        r = post_form(browser, "/settings/webhooks", "/settings/webhooks", **fields)
        assert_page(r, 400)
        assert r.headers["x-error-code"] == "BadRequest"
    assert len(api.list_webhooks()) == 1

    target = f"/settings/webhooks/{hook.id}"
    assert post_form(browser, "/settings/webhooks", target, action="disable").status_code == 303
    assert api.get_webhook(hook.id).disabled is True
    assert post_form(browser, "/settings/webhooks", target, action="enable").status_code == 303
    assert api.get_webhook(hook.id).disabled is False
    assert_page(browser.post(target, data={"action": "delete"}), 403)  # no CSRF token
    other = sign_in(server, make_user(server)[0])
    assert_page(post_form(other, "/settings/webhooks", target, action="delete"), 404)  # not theirs
    assert post_form(browser, "/settings/webhooks", target, action="delete").status_code == 303
    assert api.list_webhooks() == []


def test_settings_need_a_session_and_keep_hostile_names_as_text(server: LiveServer) -> None:
    anonymous = browser_for(server)
    for path in ("/settings/profile", "/settings/webhooks", "/organizations/new", "/organizations/acme/settings"):
        r = anonymous.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
    for path in ("/settings/profile", "/settings/password", "/organizations/new", "/settings/webhooks"):
        assert_page(anonymous.post(path, data={"csrf": "x"}), 401)

    name, _token = make_user(server)
    browser = sign_in(server, name)
    baseline = active_elements(assert_page(browser.get("/settings/profile")))
    hostile = '<img src=x onerror=alert(1)>"><script>alert(2)</script>'
    assert post_form(browser, "/settings/profile", "/settings/profile", fullname=hostile).status_code == 303
    shown = assert_page(browser.get("/settings/profile"))
    assert dangers(shown, baseline) == []
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in shown
