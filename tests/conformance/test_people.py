"""Users and organizations through the real ``HfApi``: overviews, members, followers, follows,
``list_user_repos`` and the generated avatars."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError, HfHubHTTPError

from tests.support.server import TOKENS, LiveServer


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def status_of(call: Callable[[], object]) -> int:
    with pytest.raises(HfHubHTTPError) as info:
        call()
    return info.value.response.status_code


def test_user_overview_counts_only_what_the_viewer_may_see(
    api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str
) -> None:
    before = {who: api_as(who).get_user_overview("alice") for who in (None, "bob", "alice")}
    api.create_repo(repo_name, private=True)
    api.create_repo(f"{repo_name}-ds", repo_type="dataset")
    after = {who: api_as(who).get_user_overview("alice") for who in (None, "bob", "alice")}
    for who in (None, "bob"):
        assert after[who].num_models == before[who].num_models  # the private model stays hidden
        assert after[who].num_datasets == before[who].num_datasets + 1  # type: ignore[operator]
    assert after["alice"].num_models == before["alice"].num_models + 1  # type: ignore[operator]
    me = after["alice"]
    assert me.username == "alice" and me.fullname == "Alice A" and me.user_type == "user"
    assert me.avatar_url == "/avatars/alice.svg" and me.is_pro is False
    assert {o.name for o in me.orgs} == {"acme", "vault"}
    assert all(o.avatar_url == f"/avatars/{o.name}.svg" for o in me.orgs)
    assert after[None].is_following is None and after["bob"].is_following in (True, False)

    # likes count only on repos the viewer can read
    secret = api.create_repo(f"acme/{repo_name}", private=True).repo_id
    likes_before = {who: api_as(who).get_user_overview("carol").num_likes for who in ("bob", "carol")}
    assert httpx.post(f"{api.endpoint}/api/models/{secret}/like", headers=auth("carol")).status_code == 200
    assert api_as("carol").get_user_overview("carol").num_likes == likes_before["carol"] + 1  # type: ignore[operator]
    assert api_as("bob").get_user_overview("carol").num_likes == likes_before["bob"]

    # discussions count only on repos the viewer can read
    public = api.create_repo(f"acme/{repo_name}-open").repo_id
    opened_before = {who: api_as(who).get_user_overview("carol").num_discussions for who in ("bob", "carol")}
    api_as("carol").create_discussion(public, "A question")
    api_as("carol").create_discussion(secret, "A private question")
    opened = {who: api_as(who).get_user_overview("carol").num_discussions for who in ("bob", "carol")}
    assert opened["carol"] == opened_before["carol"] + 2  # type: ignore[operator]
    assert opened["bob"] == opened_before["bob"] + 1  # type: ignore[operator]

    assert status_of(lambda: api.get_user_overview("nobody-here")) == 404
    assert status_of(lambda: api.get_user_overview("acme")) == 404  # an org is not a user


def test_org_overview_and_members(api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer,
                                  repo_name: str) -> None:
    before = {who: api_as(who).get_organization_overview("acme") for who in ("bob", "carol")}
    api.create_repo(f"acme/{repo_name}", private=True)
    after = {who: api_as(who).get_organization_overview("acme") for who in ("bob", "carol")}
    assert after["bob"].num_models == before["bob"].num_models
    assert after["carol"].num_models == before["carol"].num_models + 1  # type: ignore[operator]
    acme = after["carol"]
    assert acme.name == "acme" and acme.fullname == "Acme" and acme.num_users == 2
    assert acme.avatar_url == "/avatars/acme.svg"
    assert status_of(lambda: api.get_organization_overview("alice")) == 404
    assert status_of(lambda: api.get_organization_overview("no-such-org")) == 404

    members = list(api_as(None).list_organization_members("acme"))
    assert {m.username for m in members} == {"alice", "carol"}
    assert all(m.avatar_url == f"/avatars/{m.username}.svg" for m in members)
    assert status_of(lambda: list(api.list_organization_members("no-such-org"))) == 404
    # roles are for the org's own members
    roles = {m["user"]: m.get("role") for m in httpx.get(f"{server.url}/api/organizations/acme/members",
                                                         headers=auth("carol")).json()}
    assert roles == {"alice": "admin", "carol": "read"}
    outside = httpx.get(f"{server.url}/api/organizations/acme/members", headers=auth("bob")).json()
    assert all("role" not in m for m in outside)
    # paginated with an absolute Link
    first = httpx.get(f"{server.url}/api/organizations/acme/members", params={"limit": 1})
    assert len(first.json()) == 1
    second = httpx.get(first.links["next"]["url"])
    assert {m["user"] for m in first.json() + second.json()} == {"alice", "carol"}
    assert "next" not in second.links


def test_follow_and_unfollow(api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer) -> None:
    url = f"{server.url}/api/users/bob/follow"
    httpx.delete(url, headers=auth("carol"))  # the session's server is shared: start from not following
    base = api.get_user_overview("bob").num_followers
    assert httpx.post(url, headers=auth("carol")).status_code == 200
    assert httpx.post(url, headers=auth("carol")).status_code == 200  # twice changes nothing
    assert "carol" in {u.username for u in api.list_user_followers("bob")}
    assert "bob" in {u.username for u in api.list_user_following("carol")}
    assert api.get_user_overview("bob").num_followers == base + 1  # type: ignore[operator]
    assert api_as("carol").get_user_overview("bob").is_following is True
    assert api_as("alice").get_user_overview("bob").is_following in (True, False)
    assert httpx.delete(url, headers=auth("carol")).status_code == 200
    assert "carol" not in {u.username for u in api.list_user_followers("bob")}
    assert api_as("carol").get_user_overview("bob").is_following is False

    org_url = f"{server.url}/api/organizations/acme/follow"
    assert httpx.post(org_url, headers=auth("bob")).status_code == 200
    assert "bob" in {u.username for u in api.list_organization_followers("acme")}
    assert api_as("bob").get_organization_overview("acme").is_following is True
    assert "acme" not in {u.username for u in api.list_user_following("bob")}  # users only
    assert httpx.delete(org_url, headers=auth("bob")).status_code == 200
    assert "bob" not in {u.username for u in api.list_organization_followers("acme")}

    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers=auth("alice_read")).status_code == 403
    assert httpx.post(f"{server.url}/api/users/alice/follow", headers=auth("alice")).status_code == 400
    assert httpx.post(f"{server.url}/api/users/nobody-here/follow", headers=auth("alice")).status_code == 404
    assert httpx.post(f"{server.url}/api/users/acme/follow", headers=auth("alice")).status_code == 404
    assert status_of(lambda: list(api.list_user_followers("nobody-here"))) == 404
    assert status_of(lambda: list(api.list_user_following("acme"))) == 404
    assert status_of(lambda: list(api.list_organization_followers("bob"))) == 404


def test_list_user_repos_with_storage(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str
) -> None:
    mine = api.create_repo(repo_name, private=True).repo_id
    api.upload_file(path_or_fileobj=b"x" * 5000, path_in_repo="w.bin", repo_id=mine)
    api.create_repo(f"{repo_name}-2")  # alice has two repos at least: the listing has two pages of one
    org_repo = api.create_repo(f"acme/{repo_name}", private=True).repo_id
    server.settle()  # storage is accounted by the commit's job
    by_id = {r.id: r for r in api.list_user_repos()}
    assert by_id[mine].visibility == "private" and by_id[mine].type == "model"
    # Its share of the namespace's storage (other tests' repos of alice's share the hub)
    total = sum(r.storage for r in by_id.values())
    assert by_id[mine].storage >= 5000
    # the server's share, rounded to 2 decimals, against the exact one (rounding it again here
    # could put the two a hair over 0.01 apart at a ...5 boundary: the full run's failure)
    assert by_id[mine].storage_percent == pytest.approx(100 * by_id[mine].storage / total, abs=0.01)
    assert by_id[mine].updated_at is not None
    assert org_repo not in by_id
    assert org_repo in {r.id for r in api_as("carol").list_user_repos(namespace="acme")}
    assert mine not in {r.id for r in api_as("bob").list_user_repos()}
    assert status_of(lambda: list(api_as("bob").list_user_repos(namespace="acme"))) == 403
    assert status_of(lambda: list(api_as(None).list_user_repos())) == 401
    assert status_of(lambda: list(api.list_user_repos(namespace="no-such-org"))) == 404
    # paginated
    first = httpx.get(f"{server.url}/api/settings/repositories", params={"limit": 1}, headers=auth("alice"))
    assert len(first.json()) == 1 and "next" in first.links


def test_avatars_are_generated_inert_images(api: HfApi, server: LiveServer, repo_name: str) -> None:
    first = httpx.get(f"{server.url}/avatars/alice.svg")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/svg+xml"
    csp = first.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script" not in csp
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.content.startswith(b"<svg") and b"<script" not in first.content and b"href" not in first.content
    assert httpx.get(f"{server.url}/avatars/alice.svg").content == first.content  # stable
    assert httpx.get(f"{server.url}/avatars/bob.svg").content != first.content
    assert httpx.get(f"{server.url}/avatars/%3Cscript%3E.svg").status_code == 404
    # every avatarUrl the API hands out is served here
    urls = {api.get_user_overview("alice").avatar_url, *(o.avatar_url for o in api.get_user_overview("alice").orgs)}
    urls |= {m.avatar_url for m in api.list_organization_members("acme")}
    urls.add(api.whoami()["avatarUrl"])
    liked = api.create_repo(repo_name).repo_id
    assert httpx.post(f"{server.url}/api/models/{liked}/like", headers=auth("bob")).status_code == 200
    likers = {u.username: u.avatar_url for u in api.list_repo_likers(liked)}
    assert likers == {"bob": "/avatars/bob.svg"}
    urls |= set(likers.values())
    slug = api.create_collection(f"Avatar {repo_name}").slug
    urls.add(api.get_collection(slug).owner["avatarUrl"])  # type: ignore[index]
    num = api.create_discussion(liked, title="Avatars", description="hello").num
    thread = httpx.get(f"{server.url}/api/models/{liked}/discussions/{num}", headers=auth("alice")).json()
    authors = [thread["author"], *(e["author"] for e in thread["events"])]
    assert {a["avatarUrl"] for a in authors} == {"/avatars/alice.svg"}
    listed = httpx.get(f"{server.url}/api/models/{liked}/discussions", headers=auth("alice")).json()
    assert listed["discussions"][0]["author"]["avatarUrl"] == "/avatars/alice.svg"
    for url in urls:
        assert httpx.get(server.url + url).status_code == 200, url


def test_bad_pages_are_refused(server: LiveServer) -> None:
    for query in ("cursor=-1", "limit=0", "limit=x"):
        response = httpx.get(f"{server.url}/api/organizations/acme/members?{query}")
        assert response.status_code == 400, query
    with pytest.raises(BadRequestError):
        list(HfApi(endpoint=server.url, token=False).list_collections(sort="best"))  # type: ignore[arg-type]
