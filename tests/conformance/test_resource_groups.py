"""Resource groups: teams sharing one org each see only their own private repos.

Each test seeds an org of its own: ``boss`` (org admin), ``ann`` and ``ben`` (org writers, each
in one team's group), ``rita`` (org reader, reads team A), ``cory`` (org writer, contributor in
team A) and ``olga`` (org writer in no group). Groups are managed through
``/api/organizations/{org}/resource-groups``; repos are made in a group with the real
``HfApi.create_repo(resource_group_id=...)`` and read back through the client
(``model_info(...).resource_group``, ``list_models``, ``hf_hub_download``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import TOKENS, LiveServer

PEOPLE = ("boss", "ann", "ben", "rita", "cory", "olga")


class Team:
    """An org of its own with its people, their tokens and clients."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.tag = uuid.uuid4().hex[:8]
        self.org = f"rg-{self.tag}"
        self.names = {p: f"{p}-{self.tag}" for p in PEOPLE}
        self.tokens = {p: "hf_" + uuid.uuid4().hex + uuid.uuid4().hex[:8] for p in PEOPLE}
        roles = {"boss": "admin", "ann": "write", "ben": "write", "rita": "read", "cory": "write", "olga": "write"}
        server.seed({
            "users": [{"name": self.names[p], "tokens": [{"value": self.tokens[p], "role": "write", "name": "t"}]}
                      for p in PEOPLE],
            "orgs": [{"name": self.org, "members": {self.names[p]: roles[p] for p in PEOPLE}}],
        })

    def api(self, who: str) -> HfApi:
        return HfApi(endpoint=self.server.url, token=self.tokens[who])

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        token = TOKENS["bob"] if who == "outsider" else self.tokens[who]
        return httpx.request(method, f"{self.server.url}{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})

    def group(self, name: str, users: dict[str, str]) -> str:
        r = self.call("boss", "POST", f"/api/organizations/{self.org}/resource-groups", {
            "name": name, "description": f"team {name}",
            "users": [{"user": self.names[p], "role": role} for p, role in users.items()]})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["name"] == name and made["organization"] == self.org and len(made["id"]) == 24
        assert {u["user"]: u["role"] for u in made["users"]} == {self.names[p]: r for p, r in users.items()}
        return str(made["id"])

    def repo(self, name: str) -> str:
        return f"{self.org}/{name}"


@pytest.fixture
def team(server: LiveServer) -> Team:
    return Team(server)


def status(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    return error.value.response.status_code


def visible(team: Team, who: str) -> set[str]:
    return {m.id for m in team.api(who).list_models(author=team.org)}


def test_each_team_sees_only_its_own_private_models(team: Team, tmp_path: Path) -> None:
    a = team.group("team-a", {"ann": "write", "rita": "read", "cory": "contributor"})
    b = team.group("team-b", {"ben": "write"})
    a_model, b_model, common = team.repo("a-model"), team.repo("b-model"), team.repo("common")
    team.api("ann").create_repo(a_model, private=True, resource_group_id=a)
    team.api("ann").upload_file(path_or_fileobj=b'{"team": "a"}', path_in_repo="config.json", repo_id=a_model)
    team.api("ben").create_repo(b_model, private=True, resource_group_id=b)
    team.api("ben").upload_file(path_or_fileobj=b'{"team": "b"}', path_in_repo="config.json", repo_id=b_model)
    team.api("boss").create_repo(common, private=True)

    info = team.api("ann").model_info(a_model)
    assert info.resource_group == {"id": a, "name": "team-a", "numUsers": 3}
    assert team.api("ann").model_info(common).resource_group is None

    # Each team: its own models and the org's ungrouped ones; the other team's do not exist.
    assert visible(team, "ann") == {a_model, common}
    assert visible(team, "ben") == {b_model, common}
    for who, hidden in (("ann", b_model), ("ben", a_model), ("olga", a_model), ("olga", b_model)):
        with pytest.raises(RepositoryNotFoundError):
            team.api(who).model_info(hidden)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(hidden, "config.json", endpoint=team.server.url, token=team.tokens[who],
                            cache_dir=tmp_path / who)
        with pytest.raises(RepositoryNotFoundError):
            team.api(who).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=hidden)
    assert visible(team, "olga") == {common}
    assert visible(team, "boss") == {a_model, b_model, common}  # the org's admins see every group's
    assert Path(hf_hub_download(b_model, "config.json", endpoint=team.server.url, token=team.tokens["boss"],
                                cache_dir=tmp_path / "boss")).read_bytes() == b'{"team": "b"}'
    # Search and counts follow the same rule (search text is indexed by a job: wait until the
    # org's admin finds both, then each team finds its own).
    def found(who: str) -> set[str]:
        return {m.id for m in team.api(who).list_models(search="model", author=team.org)}

    deadline = time.monotonic() + 60
    while found("boss") != {a_model, b_model} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found("boss") == {a_model, b_model}
    assert found("ben") == {b_model} and found("ann") == {a_model}
    overview = team.call("olga", "GET", f"/api/organizations/{team.org}/overview")
    assert overview.status_code == 200 and overview.json()["numModels"] == 1

    # Roles within a group: a reader reads, a contributor writes only what they created.
    assert Path(hf_hub_download(a_model, "config.json", endpoint=team.server.url, token=team.tokens["rita"],
                                cache_dir=tmp_path / "rita")).read_bytes() == b'{"team": "a"}'
    with pytest.raises(HfHubHTTPError) as refused:
        team.api("rita").upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=a_model)
    assert status(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:
        team.api("rita").create_repo(team.repo("rita-new"), private=True, resource_group_id=a)
    assert status(refused) == 403
    cory_model = team.repo("cory-model")
    team.api("cory").create_repo(cory_model, private=True, resource_group_id=a)
    team.api("cory").upload_file(path_or_fileobj=b"mine", path_in_repo="notes.txt", repo_id=cory_model)
    with pytest.raises(HfHubHTTPError) as refused:
        team.api("cory").upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=a_model)
    assert status(refused) == 403
    assert visible(team, "ann") == {a_model, cory_model, common}
    # A group's writer writes, but administering (visibility, deletion) is for its admins.
    with pytest.raises(HfHubHTTPError) as refused:
        team.api("ann").update_repo_settings(a_model, private=False)
    assert status(refused) == 403
    # Nobody creates in a group they cannot see: it does not exist for them.
    with pytest.raises(HfHubHTTPError) as refused:
        team.api("ann").create_repo(team.repo("sneaky"), private=True, resource_group_id=b)
    assert status(refused) == 404
    with pytest.raises(RepositoryNotFoundError):
        team.api("boss").model_info(team.repo("sneaky"))

    # Leaving the org ends the group role with it.
    assert team.call("boss", "DELETE", f"/api/organizations/{team.org}/members/{team.names['ann']}").status_code == 200
    with pytest.raises(RepositoryNotFoundError):
        team.api("ann").model_info(a_model)
    assert [u["user"] for u in team.call("boss", "GET", f"/api/organizations/{team.org}/resource-groups/{a}")
            .json()["users"]] == sorted([team.names["cory"], team.names["rita"]])


def test_public_repos_in_a_group_are_read_by_all_and_written_by_the_group(team: Team) -> None:
    a = team.group("open-a", {"ann": "write"})
    shared = team.repo("shared")
    team.api("ann").create_repo(shared, resource_group_id=a)
    anonymous = HfApi(endpoint=team.server.url, token=False)
    assert anonymous.model_info(shared).id == shared
    assert shared in visible(team, "olga")
    team.api("ann").upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=shared)
    with pytest.raises(HfHubHTTPError) as refused:  # an org writer outside the group
        team.api("olga").upload_file(path_or_fileobj=b"o", path_in_repo="o.txt", repo_id=shared)
    assert status(refused) == 403


def test_managing_groups_and_moving_repos(team: Team) -> None:
    base = f"/api/organizations/{team.org}/resource-groups"
    a = team.group("alpha", {"ann": "admin", "rita": "read"})
    b = team.group("beta", {"ben": "write"})

    # Who sees which groups: org admins all, members their own, outsiders nothing.
    assert [g["name"] for g in team.call("boss", "GET", base).json()] == ["alpha", "beta"]
    assert [g["name"] for g in team.call("rita", "GET", base).json()] == ["alpha"]
    assert team.call("olga", "GET", base).json() == []
    assert team.call("outsider", "GET", base).status_code == 404
    assert team.call("ben", "GET", f"{base}/{a}").status_code == 404

    # Bad input changes nothing.
    for body, code in (
        ({"name": "alpha"}, 409),  # names are unique within the org (case-insensitively)
        ({"name": "ALPHA"}, 409),
        ({"name": ""}, 400),
        ({"name": "x" * 97}, 400),
        ({"name": "ok", "users": [{"user": team.names["olga"], "role": "owner"}]}, 400),
        ({"name": "ok", "users": [{"user": "alice", "role": "read"}]}, 400),  # not an org member
        ({"name": "ok", "users": [{"user": f"nobody-{team.tag}", "role": "read"}]}, 404),
        ({"name": "ok", "users": "everyone"}, 400),
    ):
        r = team.call("boss", "POST", base, body)
        assert r.status_code == code, (body, r.text)
        assert r.headers.get("X-Error-Message")
    assert [g["name"] for g in team.call("boss", "GET", base).json()] == ["alpha", "beta"]
    assert team.call("ann", "POST", base, {"name": "mine"}).status_code == 403  # only org admins create

    # A group's admin manages its members; its other members do not.
    r = team.call("ann", "POST", f"{base}/{a}/users", {"users": [{"user": team.names["olga"], "role": "write"}]})
    assert r.status_code == 200, r.text
    assert {u["user"]: u["role"] for u in r.json()["users"]}[team.names["olga"]] == "write"
    assert team.call("rita", "POST", f"{base}/{a}/users",
                     {"users": [{"user": team.names["cory"], "role": "admin"}]}).status_code == 403
    r = team.call("ann", "PATCH", f"{base}/{a}/users/{team.names['olga']}", {"role": "read"})
    assert r.status_code == 200 and {u["user"]: u["role"] for u in r.json()["users"]}[team.names["olga"]] == "read"
    assert team.call("ann", "DELETE", f"{base}/{a}/users/{team.names['olga']}").status_code == 200
    assert team.call("rita", "DELETE", f"{base}/{a}/users/{team.names['rita']}").status_code == 200  # leaving
    assert team.call("rita", "GET", f"{base}/{a}").status_code == 404
    r = team.call("ann", "PATCH", f"{base}/{a}", {"name": "alpha-team"})
    assert r.status_code == 200 and r.json()["name"] == "alpha-team"

    # Moving a repo: who administers it where it is and the group it goes to.
    model = team.repo("moved")
    team.api("boss").create_repo(model, private=True)
    # ann writes the org's ungrouped repos, but administering them is for the org's admins.
    assert team.call("ann", "POST", f"/api/models/{model}/resource-group", {"resourceGroupId": a}).status_code == 403
    r = team.call("boss", "POST", f"/api/models/{model}/resource-group", {"resourceGroupId": a})
    assert r.status_code == 200 and r.json()["resourceGroup"]["id"] == a
    assert team.api("ann").model_info(model).resource_group["name"] == "alpha-team"
    assert model not in visible(team, "olga")
    # ann administers alpha but not beta: she cannot move it there.
    assert team.call("ann", "POST", f"/api/models/{model}/resource-group", {"resourceGroupId": b}).status_code == 404
    assert team.api("boss").model_info(model).resource_group["id"] == a
    # A group holds its org's repos only.
    team.api("ann").create_repo(f"{team.names['ann']}/own", private=True)
    assert team.call("ann", "POST", f"/api/models/{team.names['ann']}/own/resource-group",
                     {"resourceGroupId": a}).status_code == 400
    # A group with repos cannot be deleted (its private repos would open to the whole org).
    r = team.call("boss", "DELETE", f"{base}/{a}")
    assert r.status_code == 409 and "move them out" in r.headers["X-Error-Message"]
    assert team.call("ann", "POST", f"/api/models/{model}/resource-group", {"resourceGroupId": None}).status_code == 200
    assert team.api("boss").model_info(model).resource_group is None
    assert model in visible(team, "olga")
    assert team.call("ann", "DELETE", f"{base}/{a}").status_code == 403  # group admins do not delete groups
    assert team.call("boss", "DELETE", f"{base}/{a}").status_code == 200
    assert [g["name"] for g in team.call("boss", "GET", base).json()] == ["beta"]

    # A transfer out of the org leaves the group.
    team.api("ben").create_repo(team.repo("leaving"), private=True, resource_group_id=b)
    team.api("boss").move_repo(team.repo("leaving"), f"{team.names['boss']}/leaving")
    assert team.api("boss").model_info(f"{team.names['boss']}/leaving").resource_group is None

    # Every change is in the org's audit log, for its admins.
    log = team.call("boss", "GET", f"/api/organizations/{team.org}/audit-log").json()
    actions = {e["action"] for e in log}
    assert {"resource_group.created", "resource_group.updated", "resource_group.deleted",
            "resource_group.member_role_set", "resource_group.member_removed",
            "repo.resource_group_changed"} <= actions
    assert team.call("ann", "GET", f"/api/organizations/{team.org}/audit-log").status_code == 403


def test_fine_grained_tokens_and_groups(team: Team) -> None:
    a = team.group("scoped-a", {"ann": "write"})
    b = team.group("scoped-b", {"ben": "write"})
    a_model, b_model = team.repo("sa"), team.repo("sb")
    team.api("ann").create_repo(a_model, private=True, resource_group_id=a)
    team.api("ben").create_repo(b_model, private=True, resource_group_id=b)
    r = team.call("ann", "POST", "/api/settings/tokens", {"name": "ns", "role": "fineGrained", "scoped": [
        {"entity": {"type": "org", "name": team.org}, "permissions": ["repo.content.read"]}]})
    assert r.status_code == 201, r.text
    scoped = HfApi(endpoint=team.server.url, token=r.json()["token"])
    # The scope names the whole org, but the token still carries only its user's access.
    assert {m.id for m in scoped.list_models(author=team.org)} == {a_model}
    with pytest.raises(RepositoryNotFoundError):
        scoped.model_info(b_model)
    with pytest.raises(HfHubHTTPError) as refused:  # read-only scope
        scoped.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=a_model)
    assert status(refused) == 403
    # Managing groups needs a token that may write everything.
    assert team.call("ann", "GET", f"/api/organizations/{team.org}/resource-groups").status_code == 200
    r = httpx.get(f"{team.server.url}/api/organizations/{team.org}/resource-groups", timeout=30,
                  headers={"Authorization": f"Bearer {scoped.token}"})
    assert r.status_code == 403


def test_webhooks_of_org_members_outside_a_group_miss_its_private_repos(team: Team) -> None:
    """Who may read a private repo is checked at each event, not when the webhook was made: a
    repo moved into a group stops reaching the webhooks of org members outside it."""
    a = team.group("hooked", {"ann": "write"})
    moving = team.repo("hooked-model")
    team.api("boss").create_repo(moving, private=True)
    url = "http://127.0.0.1:9/hook"  # never answers: the delivery log is what is checked
    hooks = {"boss": team.api("boss").create_webhook(url=url, watched=[{"type": "org", "name": team.org}]).id}
    for who in ("olga", "ann"):  # both may read it now, so both may watch it
        hooks[who] = team.api(who).create_webhook(url=url, watched=[{"type": "model", "name": moving}]).id

    def commits_delivered(who: str) -> list[str]:
        r = team.call(who, "GET", f"/api/settings/webhooks/{hooks[who]}/deliveries")
        assert r.status_code == 200, r.text
        return sorted(d["payload"]["updatedRefs"][0]["newSha"] for d in r.json()
                      if d["payload"]["event"]["scope"] == "repo.content")

    def wait_for(count: int) -> list[str]:
        # Every webhook's delivery of an event is made in one transaction (by a job): once the
        # org admin's has the commit, every other's is decided.
        deadline = time.monotonic() + 60
        while len(commits_delivered("boss")) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return commits_delivered("boss")

    first = team.api("boss").upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=moving).oid
    assert wait_for(1) == [first]
    r = team.call("boss", "POST", f"/api/models/{moving}/resource-group", {"resourceGroupId": a})
    assert r.status_code == 200, r.text
    second = team.api("ann").upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=moving).oid
    assert wait_for(2) == sorted([first, second])
    assert commits_delivered("ann") == sorted([first, second])
    assert commits_delivered("olga") == [first]
