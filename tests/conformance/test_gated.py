"""Gated repos and access requests through the real HfApi (and a raw POST for the request itself)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import TOKENS, LiveServer

CARD = """---
license: mit
extra_gated_fields:
  Company: text
  Country: country
  I agree to the terms: checkbox
---
# A gated model
"""
FORM = {"Company": "Initech", "Country": "France", "I agree to the terms": True}

ApiAs = Callable[[str | None], HfApi]


def make_gated(api: HfApi, repo_id: str, gated: str = "manual", private: bool = False) -> None:
    api.create_repo(repo_id, private=private)
    api.upload_file(path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="model.bin", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated=gated)  # type: ignore[arg-type]


def ask(server: LiveServer, repo_id: str, user: str | None, fields: object = FORM) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[user]}"} if user else {}
    return httpx.post(f"{server.url}/api/models/{repo_id}/user-access-request", json={"fields": fields},
                      headers=headers)


def fresh() -> str:
    """An empty cache for each download: every call reaches the server (``force_download``
    would wrap the server's error in a ValueError)."""
    return tempfile.mkdtemp(prefix="gated-cache-")


def gated_status(api: HfApi, repo_id: str) -> int:
    with pytest.raises(GatedRepoError) as err:
        api.hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    return err.value.response.status_code


def users(requests: object) -> list[str | None]:
    return [r.username for r in requests]  # type: ignore[attr-defined]


def test_request_accept_reject_cancel_grant(api: HfApi, api_as: ApiAs, server: LiveServer, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    bob = api_as("bob")
    assert api.model_info(repo_id).gated == "manual"
    assert gated_status(api_as(None), repo_id) == 401
    assert gated_status(bob, repo_id) == 403
    api.hf_hub_download(repo_id, "model.bin")  # the owner always

    assert ask(server, repo_id, "bob").json() == {"status": "pending"}
    [pending] = api.list_pending_access_requests(repo_id)
    assert (pending.username, pending.status, pending.fields, pending.fullname) == ("bob", "pending", FORM, "Bob B")
    assert gated_status(bob, repo_id) == 403  # pending is not access

    api.accept_access_request(repo_id, "bob")
    assert users(api.list_accepted_access_requests(repo_id)) == ["bob"]
    assert users(api.list_pending_access_requests(repo_id)) == []
    with open(bob.hf_hub_download(repo_id, "model.bin", cache_dir=fresh()), "rb") as f:
        assert f.read() == b"weights"

    api.reject_access_request(repo_id, "bob", rejection_reason="Not a company we know")
    [rejected] = api.list_rejected_access_requests(repo_id)
    assert rejected.username == "bob" and rejected.status == "rejected"
    assert gated_status(bob, repo_id) == 403

    api.cancel_access_request(repo_id, request_id=rejected.request_id)  # back to pending, by id
    assert users(api.list_pending_access_requests(repo_id)) == ["bob"]
    api.accept_access_request(repo_id, request_id=rejected.request_id)
    assert users(api.list_accepted_access_requests(repo_id)) == ["bob"]

    api.grant_access(repo_id, "carol")  # never asked: put straight on the accepted list
    assert sorted(users(api.list_accepted_access_requests(repo_id))) == ["bob", "carol"]
    api_as("carol").hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    with pytest.raises(HfHubHTTPError) as err:
        api.grant_access(repo_id, "carol")  # the client documents 400 for a user who has access
    assert err.value.response.status_code == 400


def test_auto_accepts_at_once_and_catalog_filter(api: HfApi, api_as: ApiAs, server: LiveServer,
                                                 repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id, gated="auto")
    assert gated_status(api_as("bob"), repo_id) == 403
    assert ask(server, repo_id, "bob").json() == {"status": "accepted"}
    api_as("bob").hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    assert users(api.list_accepted_access_requests(repo_id)) == ["bob"]
    assert repo_id in {m.id for m in api.list_models(author="alice", gated=True)}
    assert repo_id not in {m.id for m in api.list_models(author="alice", gated=False)}
    api.update_repo_settings(repo_id, gated=False)
    assert api_as(None).model_info(repo_id).gated is False
    api_as(None).hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    assert repo_id in {m.id for m in api.list_models(author="alice", gated=False)}
    assert repo_id not in {m.id for m in api.list_models(author="alice", gated=True)}


def test_metadata_stays_visible_bytes_do_not(api: HfApi, api_as: ApiAs, server: LiveServer, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    for who in (None, "bob"):
        other = api_as(who)
        assert other.model_info(repo_id).gated == "manual"
        assert {f.path for f in other.list_repo_tree(repo_id)} >= {"README.md", "model.bin"}
        assert [p.path for p in other.get_paths_info(repo_id, ["model.bin"])] == ["model.bin"]
        assert other.list_repo_refs(repo_id).branches[0].name == "main"
        assert len(other.list_repo_commits(repo_id)) >= 3
        assert other.repo_exists(repo_id)
        with pytest.raises(GatedRepoError):
            other.file_exists(repo_id, "model.bin")
        with pytest.raises(GatedRepoError):
            other.hf_hub_download(repo_id, "README.md", cache_dir=fresh())  # every file, small ones too
    headers = {"Authorization": f"Bearer {TOKENS['bob']}"}
    sha = api.get_paths_info(repo_id, ["model.bin"])[0].blob_id
    for method, url, body in (
        ("HEAD", f"{server.url}/{repo_id}/resolve/main/model.bin", None),
        ("GET", f"{server.url}/api/models/{repo_id}/xet-read-token/main", None),
        ("POST", f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
         {"operation": "download", "objects": [{"oid": "0" * 64, "size": 7}]}),
    ):
        r = httpx.request(method, url, json=body, headers=headers)
        assert (r.status_code, r.headers.get("x-error-code")) == (403, "GatedRepo"), (url, sha)
        assert r.headers.get("x-error-message")


def test_download_url_dies_when_access_is_withdrawn(api: HfApi, api_as: ApiAs, server: LiveServer,
                                                   repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    api.upload_file(path_or_fileobj=b"x" * 20_000_000, path_in_repo="big.bin", repo_id=repo_id)
    api.grant_access(repo_id, "bob")
    headers = {"Authorization": f"Bearer {TOKENS['bob']}"}
    oid = api.get_paths_info(repo_id, ["big.bin"])[0].lfs.sha256  # type: ignore[union-attr]
    batch = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", headers=headers,
                       json={"operation": "download", "objects": [{"oid": oid, "size": 20_000_000}]}).json()
    href = batch["objects"][0]["actions"]["download"]["href"]
    with httpx.stream("GET", href) as r:
        assert r.status_code == 200
    api.reject_access_request(repo_id, "bob", rejection_reason=None)
    r = httpx.get(href)
    assert (r.status_code, r.headers.get("x-error-code")) == (403, "GatedRepo")


def test_bad_input_changes_nothing(api: HfApi, api_as: ApiAs, server: LiveServer, repo_name: str) -> None:
    plain = f"alice/{repo_name}-plain"
    api.create_repo(plain)
    r = ask(server, plain, "bob")
    assert r.status_code == 400 and "not gated" in r.headers["x-error-message"]
    for call in (lambda: list(api.list_pending_access_requests(plain)), lambda: api.grant_access(plain, "bob"),
                 lambda: api.accept_access_request(plain, "bob")):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert err.value.response.status_code == 400

    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    for fields, words in (({"Company": "Initech"}, "required"), ({**FORM, "Pet": "cat"}, "Unknown fields"),
                          ({**FORM, "I agree to the terms": False}, "checked"), ("yes", "object"),
                          ({**FORM, "Company": "x" * 5000}, "at most")):
        r = ask(server, repo_id, "bob", fields)
        assert r.status_code == 400 and words in r.headers["x-error-message"], (fields, r.headers)
    assert ask(server, repo_id, None).status_code == 401
    assert ask(server, repo_id, "alice").status_code == 400  # the owner has access already
    assert users(api.list_pending_access_requests(repo_id)) == []

    for call in (lambda: api.accept_access_request(repo_id, "bob"),  # never asked
                 lambda: api.accept_access_request(repo_id, "nobody-here"),  # no such user
                 lambda: api.accept_access_request(repo_id, request_id="ffffffffffffffffffffffff"),
                 lambda: api.grant_access(repo_id, "nobody-here")):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert err.value.response.status_code == 404
    assert ask(server, repo_id, "bob").status_code == 200
    assert ask(server, repo_id, "bob").status_code == 409  # once
    with pytest.raises(HfHubHTTPError) as err:
        api.cancel_access_request(repo_id, "bob")  # already pending: the client documents 404
    assert err.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError) as err:
        api.reject_access_request(repo_id, "bob", rejection_reason="x" * 201)
    assert err.value.response.status_code == 400
    r = httpx.post(f"{server.url}/api/models/{repo_id}/user-access-request/handle", json={"status": "maybe",
                   "user": "bob"}, headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert r.status_code == 400
    [pending] = api.list_pending_access_requests(repo_id)
    assert pending.username == "bob"
    assert users(api.list_rejected_access_requests(repo_id)) == []


# -- the permission matrix -------------------------------------------------------------------------

def manage_status(api: HfApi, repo_id: str) -> int:
    try:
        list(api.list_pending_access_requests(repo_id))
    except HfHubHTTPError as exc:
        return exc.response.status_code
    return 200


def read_status(api: HfApi, repo_id: str) -> int | str:
    try:
        api.hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    except GatedRepoError as exc:
        return f"gated {exc.response.status_code}"
    except RepositoryNotFoundError as exc:
        return exc.response.status_code
    return 200


@pytest.mark.parametrize("private", [False, True])
def test_permission_matrix(api: HfApi, api_as: ApiAs, server: LiveServer, repo_name: str, private: bool) -> None:
    acme = f"acme/{repo_name}"  # alice admin, carol read
    # The team's admin is a user of this test's own: the hub is shared, and alice's orgs are
    # compared whole elsewhere.
    org, owner, owner_token = f"g{repo_name[2:]}", f"u{repo_name[2:]}", f"hf_{uuid.uuid4().hex}"
    server.seed({
        "users": [{"name": owner, "tokens": [{"value": owner_token, "role": "write", "name": "t"}]}],
        "orgs": [{"name": org, "members": {owner: "admin", "carol": "write"}}],
    })
    team = f"{org}/{repo_name}"  # its admin, carol write
    make_gated(api, acme, private=private)
    make_gated(HfApi(endpoint=api.endpoint, token=owner_token), team, private=private)
    hidden: int | str = 404 if private else "gated 403"
    hidden_anon: int | str = 404 if private else "gated 401"
    assert read_status(api_as(None), acme) == hidden_anon
    assert read_status(api_as("bob"), acme) == hidden
    assert read_status(api_as("alice"), acme) == 200
    assert read_status(api_as("alice_read"), acme) == 200
    assert read_status(api_as("carol"), acme) == 200  # an org member, even a reader
    assert read_status(api_as("carol"), team) == 200
    assert read_status(api_as("bob"), team) == hidden

    assert manage_status(api_as(None), acme) == (404 if private else 401)
    assert manage_status(api_as("bob"), acme) == (404 if private else 403)
    assert manage_status(api_as("carol"), acme) == 403  # may read, may not manage
    assert manage_status(api_as("alice_read"), acme) == 403  # a read token
    assert manage_status(api_as("alice"), acme) == 200
    assert manage_status(api_as("carol"), team) == 200  # a writer manages requests
    assert manage_status(api_as("bob"), team) == (404 if private else 403)

    r = ask(server, acme, "bob")
    if private:  # a private gated repo stays invisible to outsiders, requests included
        assert (r.status_code, r.headers["x-error-code"]) == (404, "RepoNotFound")
        return
    assert r.status_code == 200
    assert read_status(api_as("bob"), acme) == "gated 403"
    with pytest.raises(HfHubHTTPError) as err:
        api_as("carol").accept_access_request(acme, "bob")
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        api_as("bob").accept_access_request(acme, "bob")  # nobody accepts their own request
    assert err.value.response.status_code == 403
    assert read_status(api_as("bob"), acme) == "gated 403"
    api.accept_access_request(acme, "bob")
    assert read_status(api_as("bob"), acme) == 200
    assert manage_status(api_as("bob"), acme) == 403  # access to the files is not management


def test_pull_request_diff_only_to_who_may_download(api: HfApi, api_as: ApiAs, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    pr = api.upload_file(path_or_fileobj=b"secret weights v2", path_in_repo="model.bin", repo_id=repo_id,
                         create_pr=True)
    num = int(pr.pr_num)  # type: ignore[arg-type]
    assert "model.bin" in (api.get_discussion_details(repo_id, num).diff or "")
    bob = api_as("bob")
    seen = bob.get_discussion_details(repo_id, num)  # the thread is visible, its diff is not
    assert seen.is_pull_request and seen.diff is None
    api.grant_access(repo_id, "bob")
    assert "model.bin" in (bob.get_discussion_details(repo_id, num).diff or "")


def test_requests_die_with_their_repo(api: HfApi, api_as: ApiAs, repo_name: str) -> None:
    """A repo deleted and created again under the same name (SQLite may even reuse its row id)
    starts with no accepted users."""
    repo_id = f"alice/{repo_name}"
    make_gated(api, repo_id)
    api.grant_access(repo_id, "bob")
    api_as("bob").hf_hub_download(repo_id, "model.bin", cache_dir=fresh())
    api.delete_repo(repo_id)
    make_gated(api, repo_id)
    assert users(api.list_accepted_access_requests(repo_id)) == []
    assert gated_status(api_as("bob"), repo_id) == 403
