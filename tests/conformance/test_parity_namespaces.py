"""Repo ids without a namespace, through the real client: `organization: null` in create and delete
is the caller's own namespace; in any route such an id is a missing repo (404 `RepoNotFound`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
from huggingface_hub.utils import get_session, hf_raise_for_status

from tests.support.repo_state import add, assert_repo_not_found, repo_state
from tests.support.server import TOKENS, LiveServer


def test_create_and_delete_without_namespace_use_the_callers_own(
    api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str
) -> None:
    url = api.create_repo(repo_name)  # the client sends "organization": null
    assert url.repo_id == f"alice/{repo_name}"
    assert api.repo_exists(f"alice/{repo_name}")
    assert api.create_repo(repo_name, repo_type="dataset").repo_id == f"alice/{repo_name}"
    assert api.repo_exists(f"alice/{repo_name}", repo_type="dataset")

    # Bob's own namespace holds no such repo: refused as missing, alice's repo untouched.
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found") as err:
        api_as("bob").delete_repo(repo_name)
    assert_repo_not_found(err)
    assert api.repo_exists(f"alice/{repo_name}")

    api.delete_repo(repo_name)
    assert not api.repo_exists(f"alice/{repo_name}")
    assert api.repo_exists(f"alice/{repo_name}", repo_type="dataset")  # only the model went
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found") as err:
        api.delete_repo(repo_name)
    assert_repo_not_found(err)
    api.delete_repo(repo_name, missing_ok=True)
    api.delete_repo(repo_name, repo_type="dataset")
    assert not api.repo_exists(f"alice/{repo_name}", repo_type="dataset")


def _bare_id_calls(api: HfApi, server: LiveServer, bare: str) -> dict[str, Callable[[], object]]:
    """One call per route that names a repo, each with a repo id without a namespace."""
    ops = [add("a.txt", b"a")]

    def raw(method: str, url: str, **kwargs: Any) -> Callable[[], object]:
        def call() -> None:
            headers = {"authorization": f"Bearer {TOKENS['alice']}"}
            hf_raise_for_status(get_session().request(method, f"{server.url}{url}", headers=headers, **kwargs))
        return call

    info = UploadInfo(sha256=b"\x00" * 32, size=1, sample=b"x")
    return {
        "info": lambda: api.model_info(bare),
        "dataset info": lambda: api.dataset_info(bare),
        "revision": lambda: api.model_info(bare, revision="main"),
        "tree": lambda: list(api.list_repo_tree(bare)),
        "tree path": lambda: list(api.list_repo_tree(bare, path_in_repo="a/b")),
        "paths-info": lambda: api.get_paths_info(bare, ["a.txt"]),
        "resolve": lambda: hf_hub_download(bare, "config.json", endpoint=server.url, token=TOKENS["alice"]),
        "dataset resolve": lambda: hf_hub_download(
            bare, "README.md", repo_type="dataset", endpoint=server.url, token=TOKENS["alice"]
        ),
        "commits": lambda: api.list_repo_commits(bare),
        "refs": lambda: api.list_repo_refs(bare),
        "preupload + commit": lambda: api.create_commit(bare, ops, commit_message="x"),
        "commit": raw("POST", f"/api/models/{bare}/commit/main", content=b'{"key":"header","value":{"summary":"x"}}\n'),
        "branch": lambda: api.create_branch(bare, branch="dev"),
        "delete branch": lambda: api.delete_branch(bare, branch="dev"),
        "tag": lambda: api.create_tag(bare, tag="v1"),
        "delete tag": lambda: api.delete_tag(bare, tag="v1"),
        "super-squash": lambda: api.super_squash_history(bare),
        "settings": lambda: api.update_repo_settings(bare, private=True),
        "auth-check": lambda: api.auth_check(bare),
        "like": lambda: api.unlike(bare),
        "likers": lambda: list(api.list_repo_likers(bare)),
        # move_repo itself refuses a bare id before sending it: the same body, as other clients send it
        "move": raw("POST", "/api/repos/move", json={"fromRepo": bare, "toRepo": f"alice/{bare}-moved"}),
        "lfs batch": lambda: post_lfs_batch_info(
            [info], token=TOKENS["alice"], repo_type="model", repo_id=bare, endpoint=server.url
        ),
        "xet token": raw("GET", f"/api/models/{bare}/xet-read-token/main"),
    }


def test_repo_id_without_namespace_is_repo_not_found_on_every_route(
    api: HfApi, server: LiveServer, repo_name: str
) -> None:
    # alice owns alice/NAME: a bare NAME is still not found (never resolved to the caller's own).
    rid = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=rid)
    before = repo_state(api, rid)
    for what, call in _bare_id_calls(api, server, repo_name).items():
        with pytest.raises(RepositoryNotFoundError, match="Repository Not Found") as err:
            call()
        assert err.value.response.status_code == 404, what
        assert err.value.response.headers["X-Error-Code"] == "RepoNotFound", what
    # A bare segment that decodes to "alice/NAME" does not reach alice/NAME either.
    alice = {"authorization": f"Bearer {TOKENS['alice']}"}
    for path in (f"/alice%2F{repo_name}/resolve/main/config.json", f"/api/models/alice%2F{repo_name}/refs"):
        with pytest.raises(RepositoryNotFoundError):
            hf_raise_for_status(get_session().get(server.url + path, headers=alice))
    assert repo_state(api, rid) == before
    assert not api.repo_exists(f"alice/{repo_name}-moved")


def test_repos_named_like_routes_keep_their_routes(api: HfApi) -> None:
    """A bare id is only tried once no ``namespace/name`` route matched."""
    for name in ("tree", "refs", "commits", "revision"):
        rid = api.create_repo(f"acme/{name}", exist_ok=True).repo_id
        api.upload_file(path_or_fileobj=name.encode(), path_in_repo="f.txt", repo_id=rid)
        assert api.model_info(rid).id == rid
        assert api.model_info(rid, revision="main").id == rid
        assert "f.txt" in [e.path for e in api.list_repo_tree(rid)]
        assert api.list_repo_refs(rid).branches[0].name == "main"
        assert api.list_repo_commits(rid)[0].title.startswith("Upload f.txt")


def test_absent_organization_is_the_callers_own_namespace(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Other clients leave ``organization`` out rather than sending null: the same answer."""
    alice = {"authorization": f"Bearer {TOKENS['alice']}"}
    created = get_session().post(f"{server.url}/api/repos/create", headers=alice, json={"name": repo_name})
    hf_raise_for_status(created)
    assert created.json()["url"] == f"{server.url}/alice/{repo_name}"
    assert api.repo_exists(f"alice/{repo_name}")
    delete = f"{server.url}/api/repos/delete"
    hf_raise_for_status(get_session().request("DELETE", delete, headers=alice, json={"name": repo_name}))
    assert not api.repo_exists(f"alice/{repo_name}")
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found") as err:
        hf_raise_for_status(get_session().request("DELETE", delete, headers=alice, json={"name": repo_name}))
    assert_repo_not_found(err)
