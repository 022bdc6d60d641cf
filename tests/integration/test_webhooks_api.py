"""The webhook settings API through ``HfApi`` (create, list, get, update, enable, disable,
delete), its refusals, and who may see what (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from huggingface_hub import HfApi, WebhookWatchedItem
from huggingface_hub.errors import HfHubHTTPError

from tests.integration.conftest import BACKENDS
from tests.support.server import TOKENS, LiveServer, seeded_hub

URL = "http://127.0.0.1:9/hook"  # never posted to: these webhooks watch repos that do nothing


def status_of(exc: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert exc.value.response is not None
    return exc.value.response.status_code


def test_create_get_list_update_enable_disable_delete(api: HfApi, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    hook = api.create_webhook(url=URL, watched=[WebhookWatchedItem(type="model", name=repo_id),
                                                {"type": "user", "name": "alice"}], secret="s3cret")
    assert len(hook.id) == 24
    assert hook.url == URL and hook.secret == "s3cret" and not hook.disabled
    assert hook.domains == ["repo", "discussion"]  # the client's default: both
    assert {(w.type, w.name) for w in hook.watched} == {("model", repo_id), ("user", "alice")}
    assert api.get_webhook(hook.id) == hook
    assert hook.id in {h.id for h in api.list_webhooks()}

    updated = api.update_webhook(hook.id, url=URL + "2", domains=["discussion"], secret="other",
                                 watched=[{"type": "org", "name": "acme"}])
    assert updated.url == URL + "2" and updated.domains == ["discussion"] and updated.secret == "other"
    assert [(w.type, w.name) for w in updated.watched] == [("org", "acme")]
    # The client always sends ``watched`` ([] when not given): an empty list keeps the items.
    kept = api.update_webhook(hook.id, domains=["repo"])
    assert [(w.type, w.name) for w in kept.watched] == [("org", "acme")] and kept.domains == ["repo"]

    assert api.disable_webhook(hook.id).disabled is True
    assert api.get_webhook(hook.id).disabled is True
    assert api.enable_webhook(hook.id).disabled is False

    api.delete_webhook(hook.id)
    with pytest.raises(HfHubHTTPError) as exc:
        api.get_webhook(hook.id)
    assert status_of(exc) == 404
    assert hook.id not in {h.id for h in api.list_webhooks()}


def test_other_users_webhooks_are_not_found(api: HfApi, api_as: Callable[[str | None], HfApi]) -> None:
    hook = api.create_webhook(url=URL, watched=[{"type": "user", "name": "alice"}])
    bob = api_as("bob")
    assert hook.id not in {h.id for h in bob.list_webhooks()}
    calls: list[Callable[[], object]] = [
        lambda: bob.get_webhook(hook.id), lambda: bob.update_webhook(hook.id, url=URL),
        lambda: bob.enable_webhook(hook.id), lambda: bob.disable_webhook(hook.id),
        lambda: bob.delete_webhook(hook.id),
    ]
    for call in calls:
        with pytest.raises(HfHubHTTPError) as exc:
            call()
        assert status_of(exc) == 404
    assert api.get_webhook(hook.id) == hook  # unchanged
    with pytest.raises(HfHubHTTPError) as exc:
        api_as(None).list_webhooks()
    assert status_of(exc) == 401
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(endpoint=api.endpoint, token=TOKENS["alice_read"]).create_webhook(
            url=URL, watched=[{"type": "user", "name": "alice"}])
    assert status_of(exc) == 403


def test_unknown_ids_are_not_found(api: HfApi) -> None:
    for call in (api.get_webhook, api.enable_webhook, api.delete_webhook):
        with pytest.raises(HfHubHTTPError) as exc:
            call("0123456789abcdef01234567")
        assert status_of(exc) == 404


@pytest.mark.parametrize("kwargs", [
    {"url": "ftp://example.com/hook"},
    {"url": "not a url"},
    {"url": "http:///nohost"},
    {"url": "http://example.com/a b"},
    {"url": "http://example.com/a\x7fb"},
    {"secret": "line\r\nX-Injected: 1"},
    {"secret": "clé"},
    {"domains": ["repo", "billing"]},
    {"domains": []},
    {"watched": [{"type": "galaxy", "name": "alice"}]},
    {"watched": [{"type": "user", "name": "nobody-like-this"}]},
    {"watched": [{"type": "org", "name": "alice"}]},  # alice is a user, not an org
    {"watched": [{"type": "model", "name": "alice/does-not-exist"}]},
    {"watched": []},
])
def test_bad_inputs_are_refused_and_change_nothing(api: HfApi, kwargs: dict[str, object]) -> None:
    before = api.list_webhooks()
    args: dict[str, object] = {"url": URL, "watched": [{"type": "user", "name": "alice"}], **kwargs}
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_webhook(**args)  # type: ignore[arg-type]
    assert status_of(exc) == 400
    assert api.list_webhooks() == before


def test_bad_updates_change_nothing(api: HfApi) -> None:
    hook = api.create_webhook(url=URL, watched=[{"type": "user", "name": "alice"}])
    for kwargs in ({"url": "file:///etc/passwd"}, {"domains": ["nope"]},
                   {"watched": [{"type": "user", "name": "nobody-like-this"}]}):
        with pytest.raises(HfHubHTTPError) as exc:
            api.update_webhook(hook.id, **kwargs)  # type: ignore[arg-type]
        assert status_of(exc) == 400
    assert api.get_webhook(hook.id) == hook


def test_org_webhooks_need_the_admin_role(api: HfApi, api_as: Callable[[str | None], HfApi]) -> None:
    hook = api.create_webhook(url=URL, watched=[{"type": "org", "name": "acme"}])  # alice: admin of acme
    assert [(w.type, w.name) for w in hook.watched] == [("org", "acme")]
    for user, org in (("carol", "acme"), ("alice", "vault")):  # a reader, a writer: not admins
        with pytest.raises(HfHubHTTPError) as exc:
            api_as(user).create_webhook(url=URL, watched=[{"type": "org", "name": org}])
        assert status_of(exc) == 403


def test_private_repos_are_watched_only_by_their_readers(
    api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str,
) -> None:
    repo_id = api.create_repo(repo_name, private=True).repo_id
    with pytest.raises(HfHubHTTPError) as exc:
        api_as("bob").create_webhook(url=URL, watched=[{"type": "model", "name": repo_id}])
    assert status_of(exc) == 400  # as for a repo that does not exist
    hook = api.create_webhook(url=URL, watched=[{"type": "model", "name": repo_id.upper()}])
    assert [(w.type, w.name) for w in hook.watched] == [("model", repo_id)]  # its real spelling


@pytest.fixture(scope="module", params=BACKENDS)
def strict_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A hub with the default setting: webhooks may not target private addresses."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"strict-{request.param}")) as hub:
        hub.extra_env["MODELYARD_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "false"
        with hub.running() as live:
            yield live


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook", "http://169.254.169.254/latest",
    "http://10.1.2.3/hook", "https://192.168.0.1/hook", "http://0.0.0.0/hook",
])
def test_private_targets_are_refused_by_default(strict_server: LiveServer, url: str) -> None:
    api = HfApi(endpoint=strict_server.url, token=TOKENS["alice"])
    before = api.list_webhooks()  # the module's other tests share this hub
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_webhook(url=url, watched=[{"type": "user", "name": "alice"}])
    assert status_of(exc) == 400
    assert "private" in (exc.value.response.headers.get("x-error-message") or "")
    assert api.list_webhooks() == before
    assert all(hook.url != url for hook in before)


def test_delivery_log_is_private_and_paged(api: HfApi, server: LiveServer) -> None:
    hook = api.create_webhook(url=URL, watched=[{"type": "user", "name": "alice"}])
    url = f"{server.url}/api/settings/webhooks/{hook.id}/deliveries"
    assert httpx.get(url, headers={"authorization": f"Bearer {TOKENS['bob']}"}).status_code == 404
    response = httpx.get(url, params={"limit": 5}, headers={"authorization": f"Bearer {TOKENS['alice']}"})
    assert response.status_code == 200 and isinstance(response.json(), list)
    bad = httpx.get(url, params={"limit": "x"}, headers={"authorization": f"Bearer {TOKENS['alice']}"})
    assert bad.status_code == 400


def test_target_address_is_checked_again_at_delivery(strict_server: LiveServer) -> None:
    """A name that does not resolve is let through at creation (it may resolve later); each
    attempt checks the address again, here refusing to post."""
    api = HfApi(endpoint=strict_server.url, token=TOKENS["alice"])
    repo_id = api.create_repo(f"r-{uuid.uuid4().hex[:10]}").repo_id
    strict_server.settle()
    hook = api.create_webhook(url="http://nothing-here.invalid/hook", watched=[{"type": "model", "name": repo_id}])
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    url = f"{strict_server.url}/api/settings/webhooks/{hook.id}/deliveries"
    headers = {"authorization": f"Bearer {TOKENS['alice']}"}
    deadline = time.monotonic() + 60
    while not (log := [a for d in httpx.get(url, headers=headers).json() for a in d["log"]]):
        assert time.monotonic() < deadline, "no attempt logged"
        time.sleep(0.1)
    assert log[0]["statusCode"] is None and log[0]["error"].startswith("refused:")
