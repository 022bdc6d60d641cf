"""Fine-grained tokens: a token scoped to one repo reads and writes it and nothing else; expiry.

Tokens are made through ``POST /api/settings/tokens`` (and the CLI) and used with the real
huggingface_hub; each refusal is the client's usual error (404 for what the token may not see,
403 for what it may see but not change, 401 once expired).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import TOKENS, LiveServer


def make_token(server: LiveServer, body: dict[str, Any], user: str = "alice") -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/settings/tokens", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {TOKENS[user]}"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def status(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    return error.value.response.status_code


def test_a_token_scoped_to_one_repo(server: LiveServer, api: HfApi, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    mine, other, org_private = f"alice/scoped-{tag}", f"alice/other-{tag}", f"acme/private-{tag}"
    for repo_id in (mine, other, org_private):
        api.create_repo(repo_id, private=True)
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo_id)
    public = f"alice/public-{tag}"
    api.create_repo(public)
    made = make_token(server, {"name": f"ci-{tag}", "role": "fineGrained", "scoped": [
        {"entity": {"type": "model", "name": mine}, "permissions": ["repo.content.read", "repo.write"]}]})
    assert made["token"].startswith("hf_") and made["role"] == "fineGrained"
    scoped = HfApi(endpoint=server.url, token=made["token"])

    who = scoped.whoami()
    assert who["name"] == "alice" and who["auth"]["accessToken"]["role"] == "fineGrained"
    assert who["auth"]["accessToken"]["fineGrained"]["scoped"] == [
        {"entity": {"type": "model", "name": mine}, "permissions": ["repo.content.read", "repo.write"]}]

    # Its repo: read and write.
    assert scoped.model_info(mine).sha is not None
    scoped.upload_file(path_or_fileobj=b"w" * 3000, path_in_repo="weights.bin", repo_id=mine)  # LFS too
    scoped.create_branch(mine, branch="dev")
    assert Path(hf_hub_download(mine, "weights.bin", endpoint=server.url, token=made["token"],
                                cache_dir=tmp_path)).read_bytes() == b"w" * 3000
    # Everything else: the user's other private repo and their org's are missing to it ...
    for repo_id in (other, org_private):
        with pytest.raises(RepositoryNotFoundError):
            scoped.model_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(repo_id, "config.json", endpoint=server.url, token=made["token"], cache_dir=tmp_path)
    assert {m.id for m in scoped.list_models(author="alice")}.isdisjoint({mine, other})
    # ... public repos read as by anyone, and nothing else is written.
    assert scoped.model_info(public).id == public
    with pytest.raises(HfHubHTTPError) as refused:
        scoped.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=public)
    assert status(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:
        scoped.create_repo(f"alice/new-{tag}")
    assert status(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:
        scoped.create_webhook(url="http://127.0.0.1:9/x", watched=[{"type": "user", "name": "alice"}])
    assert status(refused) == 403
    with pytest.raises(RepositoryNotFoundError):
        scoped.delete_repo(other)
    # A signed LFS URL or Xet token obtained with it carries the same scope: the LFS batch for
    # another repo is refused like the repo itself.
    batch = httpx.post(f"{server.url}/{other}.git/info/lfs/objects/batch", timeout=30, json={
        "operation": "download", "objects": [{"oid": "0" * 64, "size": 1}]},
        headers={"Authorization": f"Bearer {made['token']}", "Accept": "application/vnd.git-lfs+json"})
    assert batch.status_code == 404


def test_read_only_namespace_and_discussion_scopes(server: LiveServer, api: HfApi) -> None:
    tag = uuid.uuid4().hex[:8]
    repo_id = f"acme/ns-{tag}"
    api.create_repo(repo_id, private=True)
    reader = HfApi(endpoint=server.url, token=make_token(server, {"name": f"r-{tag}", "role": "fineGrained", "scoped": [
        {"entity": {"type": "org", "name": "acme"}, "permissions": ["repo.content.read"]}]})["token"])
    assert reader.model_info(repo_id).id == repo_id
    assert repo_id in {m.id for m in reader.list_models(author="acme")}  # its namespace is listed
    # The same token from the CLI (operators), with an expiry date.
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    value = server.cli("tokens", "create", "alice", "--name", f"cli-{tag}", "--role", "fineGrained",
                       "--scope", "org:acme=repo.content.read", "--expires", expires).stdout.strip()
    from_cli = HfApi(endpoint=server.url, token=value)
    assert from_cli.model_info(repo_id).id == repo_id
    assert from_cli.whoami()["auth"]["accessToken"]["fineGrained"]["scoped"] == [
        {"entity": {"type": "namespace", "name": "acme"}, "permissions": ["repo.content.read"]}]

    with pytest.raises(HfHubHTTPError) as refused:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert status(refused) == 403
    with pytest.raises(HfHubHTTPError) as refused:
        reader.create_discussion(repo_id, title="hello")
    assert status(refused) == 403

    writer = HfApi(endpoint=server.url, token=make_token(server, {"name": f"w-{tag}", "role": "fineGrained", "scoped": [
        {"entity": {"type": "org", "name": "acme"}, "permissions": ["repo.write"]}]})["token"])
    writer.create_repo(f"acme/made-{tag}")  # a namespace scope may create repos in it
    writer.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as refused:
        writer.create_repo(f"alice/made-{tag}")
    assert status(refused) == 403

    talker = HfApi(endpoint=server.url, token=make_token(server, {"name": f"d-{tag}", "role": "fineGrained",
                                                                  "global": ["discussion.write"]})["token"])
    public = f"alice/talk-{tag}"
    api.create_repo(public)
    assert talker.create_discussion(public, title="a question").num >= 1
    with pytest.raises(HfHubHTTPError) as refused:
        talker.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=public)
    assert status(refused) == 403


def test_expired_tokens_are_refused(server: LiveServer, api: HfApi, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    repo_id = f"alice/expiring-{tag}"
    api.create_repo(repo_id, private=True)
    api.upload_file(path_or_fileobj=b"e" * 3000, path_in_repo="weights.bin", repo_id=repo_id)
    soon = datetime.now(UTC) + timedelta(seconds=3)
    made = make_token(server, {"name": f"short-{tag}", "role": "read", "expiresAt": soon.isoformat()})
    short = HfApi(endpoint=server.url, token=made["token"])
    assert short.whoami()["auth"]["accessToken"]["expiresAt"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))
    # A download URL obtained while it was valid ...
    batch = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", timeout=30, json={
        "operation": "download", "objects": [{"oid": api.list_lfs_files(repo_id).__next__().file_oid, "size": 3000}]},
        headers={"Authorization": f"Bearer {made['token']}", "Accept": "application/vnd.git-lfs+json"})
    href = batch.json()["objects"][0]["actions"]["download"]["href"]
    assert httpx.get(href, timeout=30).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    # ... stops working with it, as every request does.
    with pytest.raises(HfHubHTTPError) as refused:
        short.model_info(repo_id)
    assert status(refused) == 401 and "expired" in str(refused.value)
    assert httpx.get(href, timeout=30).status_code == 401

    bad = httpx.post(f"{server.url}/api/settings/tokens", timeout=30,
                     headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                     json={"name": f"past-{tag}", "role": "read", "expiresAt": "2020-01-01T00:00:00Z"})
    assert bad.status_code == 400 and "future" in bad.json()["error"]


def test_bad_token_requests_are_refused(server: LiveServer) -> None:
    def post(body: dict[str, Any], user: str = "alice") -> httpx.Response:
        return httpx.post(f"{server.url}/api/settings/tokens", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {TOKENS[user]}"})

    tag = uuid.uuid4().hex[:8]
    for body in (
        {"name": tag, "role": "fineGrained"},  # no scope
        {"name": tag, "role": "fineGrained", "scoped": [{"entity": {"type": "model", "name": "x"},
                                                          "permissions": ["repo.write"]}]},  # not ns/name
        {"name": tag, "role": "fineGrained", "scoped": [{"entity": {"type": "model", "name": "a/b"},
                                                          "permissions": ["repo.delete"]}]},  # no such permission
        {"name": tag, "role": "fineGrained", "scoped": [{"entity": {"type": "bucket", "name": "a/b"},
                                                          "permissions": ["repo.write"]}]},
        {"name": tag, "role": "fineGrained", "global": "repo.write"},
        {"name": "", "role": "read"},
        {"name": tag, "role": "read", "expiresAt": "tomorrow"},
    ):
        r = post(body)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["X-Error-Code"] == "BadRequest"
    assert post({"name": tag, "role": "read"}, user="alice_read").status_code == 403  # a read token makes none
    scoped = post({"name": f"s-{tag}", "role": "fineGrained", "global": ["repo.content.read"]}).json()["token"]
    again = httpx.post(f"{server.url}/api/settings/tokens", json={"name": f"t-{tag}", "role": "write"}, timeout=30,
                       headers={"Authorization": f"Bearer {scoped}"})
    assert again.status_code == 403  # nor does a fine-grained one
