"""The audit log: an entry for every security-relevant action, readable by org admins only.

Each action is done the way a person does it (huggingface_hub, the API, the web form, the CLI);
each must leave one entry naming who, what, on what, when and from where, in the log of the
account it concerns. The org's log is read through the API and on its settings page by its
admins; members who are not admins get 403, outsiders 404, the anonymous 401; operators read
everything with ``modelyard audit``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from huggingface_hub import HfApi

from tests.support.server import TOKENS, LiveServer
from tests.web.conftest import PASSWORD, browser_for, csrf_of, sign_in


def api_get(server: LiveServer, path: str, user: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[user]}"} if user else {}
    return httpx.get(f"{server.url}{path}", headers=headers, params=params, timeout=30)


def entries(server: LiveServer, path: str, user: str, about: str) -> list[dict[str, Any]]:
    """Every entry of a log (all pages, oldest first) whose subject or details mention ``about``."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{server.url}{path}?limit=50"
    while url:
        r = httpx.get(url, headers={"Authorization": f"Bearer {TOKENS[user]}"}, timeout=30)
        assert r.status_code == 200, r.text
        out.extend(e for e in r.json() if about in e["subject"] or about in json.dumps(e["details"]))
        url = r.links.get("next", {}).get("url")
    return out[::-1]


def test_org_actions_are_recorded_for_its_admins(server: LiveServer, api: HfApi, tmp_path: Any) -> None:
    name = f"audited-{uuid.uuid4().hex[:8]}"
    repo_id, moved_id = f"acme/{name}", f"acme/{name}-moved"
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    api.create_repo(repo_id)
    api.update_repo_settings(repo_id, private=True)
    api.update_repo_settings(repo_id, private=False, gated="manual")
    api.move_repo(repo_id, moved_id)
    bob = HfApi(endpoint=server.url, token=TOKENS["bob"])
    asked = httpx.post(f"{server.url}/api/models/{moved_id}/user-access-request",
                       headers={"Authorization": f"Bearer {TOKENS['bob']}"}, json={"fields": {}}, timeout=30)
    assert asked.status_code == 200, asked.text
    api.accept_access_request(moved_id, "bob")
    api.reject_access_request(moved_id, "bob", rejection_reason="not now")
    api.grant_access(moved_id, "carol")
    api.upload_file(path_or_fileobj=b"w" * 2000, path_in_repo="weights.bin", repo_id=moved_id)
    [lfs] = api.list_lfs_files(moved_id)
    api.permanently_delete_lfs_files(moved_id, [lfs])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as alice:
        assert alice.put("/api/organizations/acme/members/bob", json={"role": "write"}).status_code == 200
        assert alice.delete("/api/organizations/acme/members/bob").status_code == 200
    api.delete_repo(moved_id)
    del bob

    log = entries(server, "/api/organizations/acme/audit-log", "alice", name)
    members = [e for e in entries(server, "/api/organizations/acme/audit-log", "alice", "user:bob")
               if datetime.fromisoformat(e["at"].rstrip("Z")) >= started]
    assert [e["action"] for e in log] == [
        "repo.created", "repo.visibility_changed", "repo.visibility_changed", "repo.gating_changed", "repo.moved",
        "access_request.accepted", "access_request.rejected", "access_request.granted", "lfs.permanently_deleted",
        "repo.deleted",
    ]
    assert [e["action"] for e in members[-2:]] == ["org.member_role_set", "org.member_removed"]
    for entry in log + members[-2:]:
        assert entry["actor"] == "alice" and entry["address"] == "127.0.0.1", entry
        assert started <= datetime.fromisoformat(entry["at"].rstrip("Z")) <= datetime.now(UTC).replace(tzinfo=None)
    assert log[0]["subject"] == f"model:{repo_id}" and log[0]["details"] == {"private": False}
    assert log[1]["details"] == {"private": True} and log[3]["details"] == {"gated": "manual"}
    assert log[4]["details"] == {"from": repo_id, "to": moved_id}
    assert log[5]["details"] == {"user": "bob", "was": "pending"}
    assert log[6]["details"] == {"user": "bob", "was": "accepted", "reason": "not now"}
    assert log[8]["details"] == {"oids": [lfs.file_oid], "rewriteHistory": True}
    assert members[-2]["details"] == {"role": "write", "was": None}

    # Filtered by action; only the org's admins read it.
    deleted = api_get(server, "/api/organizations/acme/audit-log", "alice", action="repo.deleted").json()
    assert {e["action"] for e in deleted} == {"repo.deleted"} and f"model:{moved_id}" in {e["subject"] for e in deleted}
    assert api_get(server, "/api/organizations/acme/audit-log", "carol").status_code == 403  # a reader
    assert api_get(server, "/api/organizations/acme/audit-log", "bob").status_code == 404  # an outsider
    assert api_get(server, "/api/organizations/acme/audit-log", None).status_code == 401
    assert api_get(server, "/api/organizations/acme/audit-log", "alice", action="repo.nope").status_code == 400
    assert api_get(server, "/api/organizations/acme/audit-log", "alice", limit=0).status_code == 400
    # The log cannot be written or erased through the API.
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as alice:
        assert alice.delete("/api/organizations/acme/audit-log").status_code == 405
        assert alice.post("/api/organizations/acme/audit-log", json={}).status_code == 405

    # Operators: everything, as JSON lines, filterable.
    out = server.cli("audit", "--account", "acme", "--action", "repo.moved", "--action", "repo.deleted").stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert {(e["action"], e["subject"]) for e in lines} >= {("repo.moved", f"model:{moved_id}"),
                                                           ("repo.deleted", f"model:{moved_id}")}
    assert all(e["account"] == "acme" for e in lines)


def test_accounts_tokens_webhooks_and_sign_ins(server: LiveServer, user: tuple[str, str]) -> None:
    name, token = user
    # A failed and a good sign-in through the form, a token made and revoked on the settings page.
    anonymous = browser_for(server)
    form = anonymous.get("/login")
    bad = anonymous.post("/login", data={"csrf": csrf_of(form.text), "username": name, "password": "wrong"})
    assert bad.status_code in (400, 401)
    browser = sign_in(server, name, PASSWORD)
    page = browser.get("/settings/tokens")
    made = browser.post("/settings/tokens", data={"csrf": csrf_of(page.text), "name": "audit-ci", "role": "read"})
    assert made.status_code in (200, 303), made.text[:300]
    page = browser.get("/settings/tokens")
    revoked = browser.post("/settings/tokens/revoke", data={"csrf": csrf_of(page.text), "name": "audit-ci"})
    assert revoked.status_code in (200, 303), revoked.text[:300]
    # Webhooks through the client.
    api = HfApi(endpoint=server.url, token=token)
    hook = api.create_webhook(url="http://127.0.0.1:9/hook", watched=[{"type": "user", "name": name}],
                              domains=["repo"], secret="s3cret-value")
    api.update_webhook(hook.id, url="http://127.0.0.1:9/other", watched=[], secret="another-secret")
    api.disable_webhook(hook.id)
    api.enable_webhook(hook.id)
    api.delete_webhook(hook.id)

    r = httpx.get(f"{server.url}/api/settings/audit-log", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200
    log = r.json()[::-1]
    actions = [e["action"] for e in log]
    assert actions == [
        "user.created", "token.created", "user.sign_in_failed", "user.sign_in", "token.created", "token.revoked",
        "webhook.created", "webhook.updated", "webhook.disabled", "webhook.enabled", "webhook.deleted",
    ], actions
    assert log[0]["actor"] == "cli" and log[1]["actor"] == "cli" and log[1]["address"] == "local"
    assert log[2]["actor"] == "anonymous" and log[2]["address"] == "127.0.0.1"
    assert all(e["actor"] == name for e in log[3:])
    assert log[4]["subject"] == "token:audit-ci" and log[4]["details"] == {"role": "read"}
    assert log[7]["details"] == {"changed": ["secret", "url"], "url": "http://127.0.0.1:9/other"}
    assert "s3cret" not in r.text and "another-secret" not in r.text  # secrets never reach the log
    # Nobody else reads a user's log.
    other = httpx.get(f"{server.url}/api/organizations/{name}/audit-log",
                      headers={"Authorization": f"Bearer {TOKENS['bob']}"}, timeout=30)
    assert other.status_code == 404


def test_the_org_settings_page_shows_the_log(server: LiveServer) -> None:
    tag = uuid.uuid4().hex[:8]
    org, admin, reader = f"org-{tag}", f"adm-{tag}", f"rd-{tag}"
    for user in (admin, reader):
        server.cli("users", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
    server.cli("orgs", "create", org)
    server.cli("orgs", "add-member", org, admin, "--role", "admin")
    server.cli("orgs", "add-member", org, reader, "--role", "read")
    page = sign_in(server, admin, PASSWORD).get(f"/organizations/{org}/settings")
    assert page.status_code == 200
    assert "Audit log" in page.text and "org.member_role_set" in page.text and f"user:{reader}" in page.text
    denied = sign_in(server, reader, PASSWORD).get(f"/organizations/{org}/settings")
    assert denied.status_code == 403 and "org.member_role_set" not in denied.text
