"""The Hub's wording of common errors, through the real client (users and tools match on it), and
that each refusal leaves everything as it was."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.repo_state import add, assert_repo_not_found, repo_state
from tests.support.server import TOKENS, LiveServer


def test_not_found_wording(api: HfApi, server: LiveServer, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found") as repo_err:
        api.model_info(f"acme/{repo_name}-nope")
    assert_repo_not_found(repo_err)
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: nope") as rev_err:
        api.model_info(rid, revision="nope")
    assert rev_err.value.response.headers["X-Error-Code"] == "RevisionNotFound"
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: nope"):
        hf_hub_download(rid, ".gitattributes", revision="nope", endpoint=server.url, token=TOKENS["alice"])
    with pytest.raises(EntryNotFoundError, match="Entry Not Found for url") as entry_err:
        hf_hub_download(rid, "missing.txt", endpoint=server.url, token=TOKENS["alice"])
    assert isinstance(entry_err.value, HfHubHTTPError)  # the remote kind, from the HEAD's headers
    assert entry_err.value.server_message == "Entry not found"
    assert entry_err.value.response.headers["X-Error-Code"] == "EntryNotFound"
    with pytest.raises(EntryNotFoundError, match="Entry Not Found for url") as tree_err:
        list(api.list_repo_tree(rid, path_in_repo="missing"))
    assert tree_err.value.server_message == "Entry not found"


def test_branch_and_tag_conflicts(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    first = api.model_info(rid).sha
    api.create_branch(rid, branch="dev")
    api.create_tag(rid, tag="v1")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=rid)
    before = repo_state(api, rid)
    with pytest.raises(HfHubHTTPError, match="Reference refs/heads/dev already exists") as err:
        api.create_branch(rid, branch="dev")
    assert err.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError, match="Reference refs/heads/main already exists"):
        api.create_branch(rid, branch="main", revision=first)
    with pytest.raises(HfHubHTTPError, match="Reference refs/tags/v1 already exists") as err:
        api.create_tag(rid, tag="v1")  # now on a newer head: the tag must not move
    assert err.value.response.status_code == 409
    api.create_branch(rid, branch="dev", exist_ok=True)
    api.create_tag(rid, tag="v1", exist_ok=True)
    assert repo_state(api, rid) == before
    assert before["tags"]["v1"] == first


def test_branch_deletion_refusals(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    api.create_tag(rid, tag="cool-tag")
    before = repo_state(api, rid)
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main") as err:
        api.delete_branch(rid, branch="main")
    assert err.value.response.status_code == 403
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: cool-branch"):
        api.delete_branch(rid, branch="cool-branch")
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: cool-tag"):
        api.delete_branch(rid, branch="cool-tag")  # a tag is not a branch
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: v9"):
        api.delete_tag(rid, tag="v9")
    assert repo_state(api, rid) == before


def test_missing_revision_is_reported_before_a_bad_ref_name(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    before = repo_state(api, rid)
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: foobar"):
        api.create_tag(rid, tag="invalid tag", revision="foobar")
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: foobar"):
        api.create_branch(rid, branch="invalid branch", revision="foobar")
    with pytest.raises(RepositoryNotFoundError, match="Repository Not Found"):
        api.create_tag(f"acme/{repo_name}-nope", tag="invalid tag", revision="foobar")
    with pytest.raises(BadRequestError) as err:
        api.create_tag(rid, tag="invalid tag")  # an existing revision: now the name is the problem
    assert err.value.response.status_code == 400
    with pytest.raises(BadRequestError):
        api.create_branch(rid, branch="invalid branch")
    assert repo_state(api, rid) == before


def test_create_and_move_onto_an_existing_repo(api: HfApi, repo_name: str) -> None:
    for repo_type in ("model", "dataset"):
        a = api.create_repo(f"acme/{repo_name}-a", repo_type=repo_type).repo_id
        b = api.create_repo(f"acme/{repo_name}-b", repo_type=repo_type).repo_id
        api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=a, repo_type=repo_type)
        before = {rid: repo_state(api, rid, repo_type) for rid in (a, b)}
        with pytest.raises(HfHubHTTPError, match=f"You already created this {repo_type} repo") as err:
            api.create_repo(b, repo_type=repo_type)
        assert err.value.response.status_code == 409
        with pytest.raises(HfHubHTTPError, match=f"A {repo_type} repository called {b} already exists") as err:
            api.move_repo(a, b, repo_type=repo_type)
        assert err.value.response.status_code == 409
        assert {rid: repo_state(api, rid, repo_type) for rid in (a, b)} == before


def test_commit_on_a_stale_parent(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    old = api.model_info(rid).sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=rid)
    before = repo_state(api, rid)
    message = re.escape("The branch was updated since you opened this page. Please refresh and try again.")
    with pytest.raises(HfHubHTTPError, match=message) as err:
        api.create_commit(rid, [add("two.txt", b"2")], commit_message="two", parent_commit=old)
    assert err.value.response.status_code == 412
    assert err.value.server_message == message.replace("\\", "")
    assert repo_state(api, rid) == before


def test_validate_yaml_errors_in_the_hubs_form(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    before = repo_state(api, rid)
    card = b"---\nlicense: not-a-license\n---\n# Card\n"
    # Only the form is checked here: which licences are accepted (and the rule's own words) is
    # the card validation's business.
    with pytest.raises(ValueError, match=r'Invalid metadata in README\.md\.\n- Error: "license" '):
        api.create_commit(rid, [add("README.md", card)], commit_message="card")
    assert repo_state(api, rid) == before


def test_deleting_a_missing_file(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    api.upload_file(path_or_fileobj=b"x", path_in_repo="dir/x.txt", repo_id=rid)
    before = repo_state(api, rid)
    # The client recognises the Hub's words and adds its hint about files and folders.
    with pytest.raises(EntryNotFoundError, match=r"(?s)A file with this name doesn't exist.*trailing '/'"):
        api.delete_file("missing.txt", rid)
    with pytest.raises(EntryNotFoundError, match="A file with this name doesn't exist"):
        api.delete_file("dir/missing.txt", rid)
    assert repo_state(api, rid) == before
