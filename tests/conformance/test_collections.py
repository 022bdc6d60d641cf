"""Collections through the real ``HfApi``: CRUD, items, listings, and who may see or change what."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import TOKENS, LiveServer

OID = re.compile(r"^[0-9a-f]{24}$")


def status_of(call: Callable[[], object]) -> int:
    with pytest.raises(HfHubHTTPError) as info:
        call()
    return info.value.response.status_code


def test_collection_lifecycle(api: HfApi, server: LiveServer, repo_name: str) -> None:
    model = api.create_repo(repo_name).repo_id
    dataset = api.create_repo(f"{repo_name}-ds", repo_type="dataset").repo_id
    created = api.create_collection(f"Picks {repo_name}", description="my picks")
    assert created.slug.startswith(f"alice/picks-{repo_name.lower()}-")
    assert OID.match(created.slug.rsplit("-", 1)[1])
    assert created.owner["name"] == "alice" and created.owner["type"] == "user"  # type: ignore[index]
    assert created.items == [] and created.private is False and created.description == "my picks"
    assert created.url == f"{server.url}/collections/{created.slug}"

    # the same title again: 409 naming the existing slug, which exists_ok follows
    assert status_of(lambda: api.create_collection(f"Picks {repo_name}")) == 409
    assert api.create_collection(f"Picks {repo_name}", exists_ok=True).slug == created.slug

    slug = created.slug
    after = api.add_collection_item(slug, model, "model", note="the best")
    assert [i.item_id for i in after.items] == [model]
    api.add_collection_item(slug, dataset, "dataset")
    assert status_of(lambda: api.add_collection_item(slug, model, "model")) == 409  # nothing changed
    assert len(api.add_collection_item(slug, model, "model", exists_ok=True).items) == 2

    got = api.get_collection(slug)
    assert [(i.item_id, i.item_type, i.position, i.note) for i in got.items] == [
        (model, "model", 0, "the best"), (dataset, "dataset", 1, None)]
    assert all(OID.match(i.item_object_id) for i in got.items)

    ds_item = got.items[1].item_object_id
    api.update_collection_item(slug, ds_item, position=0, note="data first")
    got = api.get_collection(slug)
    assert [(i.item_id, i.position, i.note) for i in got.items] == [(dataset, 0, "data first"), (model, 1, "the best")]

    renamed = api.update_collection_metadata(slug, title=f"Best {repo_name}", theme="pink", description="new")
    assert renamed.title == f"Best {repo_name}" and renamed.theme == "pink" and renamed.description == "new"
    assert renamed.slug.endswith(slug.rsplit("-", 1)[1]) and renamed.slug != slug
    assert api.get_collection(slug).title == f"Best {repo_name}"  # the old slug still names it (by its id)
    assert renamed.last_updated >= created.last_updated
    slug = renamed.slug

    api.delete_collection_item(slug, ds_item)
    assert [i.item_id for i in api.get_collection(slug).items] == [model]
    assert status_of(lambda: api.delete_collection_item(slug, ds_item)) == 404
    api.delete_collection_item(slug, ds_item, missing_ok=True)
    assert status_of(lambda: api.update_collection_item(slug, ds_item, note="x")) == 404

    listed = list(api.list_collections(item=f"models/{model}"))  # no `position` clash in list items
    assert [c.slug for c in listed] == [slug]
    assert [c.slug for c in api.list_collections(owner="alice", item=f"models/{model}", sort="upvotes")] == [slug]
    assert list(api.list_collections(owner="bob", item=f"models/{model}")) == []

    api.update_collection_resource_group(slug, None)
    with pytest.raises(BadRequestError):
        api.update_collection_resource_group(slug, "66980ecfc1e12a49c8f0e42d")

    api.delete_collection(slug)
    assert status_of(lambda: api.get_collection(slug)) == 404
    assert status_of(lambda: api.delete_collection(slug)) == 404
    api.delete_collection(slug, missing_ok=True)


def test_bad_items_change_nothing(api: HfApi, repo_name: str) -> None:
    slug = api.create_collection(f"Bad items {repo_name}").slug
    with pytest.raises(RepositoryNotFoundError) as info:
        api.add_collection_item(slug, f"alice/{repo_name}-missing", "model")
    assert info.value.response.status_code == 404
    with pytest.raises(BadRequestError):
        api.add_collection_item(slug, "2311.12983", "paper")
    with pytest.raises(BadRequestError):
        api.add_collection_item(slug, slug, "collection")  # itself
    with pytest.raises(BadRequestError):
        api.add_collection_item(slug, "alice/x", "widget")  # type: ignore[arg-type]
    with pytest.raises(BadRequestError):
        api.update_collection_metadata(slug, theme="neon")
    with pytest.raises(BadRequestError):
        api.create_collection("x" * 101)
    assert status_of(lambda: api.get_collection("alice/no-such-000000000000000000000000")) == 404
    assert status_of(lambda: api.get_collection("alice/not-a-slug")) == 404
    got = api.get_collection(slug)
    assert got.items == [] and got.theme == "orange"


def test_collections_hold_collections_and_follow_repo_lifetimes(api: HfApi, repo_name: str) -> None:
    inner = api.create_collection(f"Inner {repo_name}").slug
    outer = api.create_collection(f"Outer {repo_name}").slug
    model = api.create_repo(repo_name).repo_id
    api.add_collection_item(outer, inner, "collection")
    api.add_collection_item(outer, model, "model")
    items = api.get_collection(outer).items
    assert [(i.item_id, i.item_type) for i in items] == [(inner, "collection"), (model, "model")]
    assert [c.slug for c in api.list_collections(item=f"collections/{inner}")] == [outer]

    api.move_repo(model, f"{model}-moved")  # a moved repo is shown under its new id
    assert [i.item_id for i in api.get_collection(outer).items] == [inner, f"{model}-moved"]
    assert [c.slug for c in api.list_collections(item=f"models/{model}-moved")] == [outer]
    model = f"{model}-moved"
    api.delete_repo(model)  # a deleted repo leaves every collection that held it
    api.delete_collection(inner)
    assert api.get_collection(outer).items == []


def test_list_pages_follow_link(api: HfApi, server: LiveServer, repo_name: str) -> None:
    model = api.create_repo(repo_name).repo_id
    slugs = set()
    for n in range(3):
        slug = api.create_collection(f"Paged {n} {repo_name}").slug
        api.add_collection_item(slug, model, "model")
        slugs.add(slug)
    first = httpx.get(f"{server.url}/api/collections", params={"item": f"models/{model}", "limit": 2})
    assert first.status_code == 200 and len(first.json()) == 2
    assert all("position" not in c for c in first.json())
    second = httpx.get(first.links["next"]["url"])
    assert len(second.json()) == 1 and "next" not in second.links
    assert {c["slug"] for c in first.json() + second.json()} == slugs
    assert {c.slug for c in api.list_collections(item=f"models/{model}")} == slugs
    assert len(list(api.list_collections(item=f"models/{model}", limit=2))) == 2
    # a listing shows at most 4 items per collection; get_collection shows them all
    big = api.create_collection(f"Big {repo_name}").slug
    for n in range(5):
        api.add_collection_item(big, api.create_repo(f"{repo_name}-{n}").repo_id, "model")
    listed = [c for c in api.list_collections(owner="alice", item=f"models/alice/{repo_name}-0")]
    assert [len(c.items) for c in listed] == [4]
    assert len(api.get_collection(big).items) == 5


def test_private_repos_in_collections_do_not_leak(
    api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str
) -> None:
    secret = api.create_repo(f"acme/{repo_name}", private=True).repo_id
    public = api.create_repo(repo_name).repo_id
    slug = api.create_collection(f"Mixed {repo_name}").slug
    api.add_collection_item(slug, secret, "model")
    api.add_collection_item(slug, public, "model")
    assert [i.item_id for i in api.get_collection(slug).items] == [secret, public]
    assert [i.item_id for i in api_as("carol").get_collection(slug).items] == [secret, public]  # acme member
    for outsider in (api_as("bob"), api_as(None)):
        assert [i.item_id for i in outsider.get_collection(slug).items] == [public]
        assert list(outsider.list_collections(item=f"models/{secret}")) == []
    assert [c.slug for c in api.list_collections(item=f"models/{secret}")] == [slug]
    # bob cannot put a repo he cannot read in his own collection: 404 as if it did not exist
    bob = api_as("bob")
    mine = bob.create_collection(f"Bob {repo_name}").slug
    with pytest.raises(RepositoryNotFoundError):
        bob.add_collection_item(mine, secret, "model")
    assert bob.get_collection(mine).items == []


def _describe(client: HfApi, slug: str) -> int:
    """The status of a metadata change by ``client`` (200 when it worked)."""
    try:
        client.update_collection_metadata(slug, description="changed")
    except HfHubHTTPError as err:
        return err.response.status_code
    return 200


def _read(client: HfApi, slug: str) -> int:
    try:
        client.get_collection(slug)
    except HfHubHTTPError as err:
        return err.response.status_code
    return 200


@pytest.mark.parametrize("private", [False, True])
def test_permission_matrix_org_collection(
    api_as: Callable[[str | None], HfApi], repo_name: str, private: bool
) -> None:
    """acme: alice is admin, carol has the read role, bob is an outsider."""
    admin = api_as("alice")
    slug = admin.create_collection(f"Org {repo_name}", namespace="acme", private=private).slug
    assert slug.startswith("acme/")
    hidden = 404 if private else 200
    expected_read = {None: hidden, "bob": hidden, "carol": 200, "alice": 200}
    expected_write = {None: 404 if private else 401, "bob": 404 if private else 403, "carol": 403, "alice": 200}
    for who, status in expected_read.items():
        assert _read(api_as(who), slug) == status, who
    for who, status in expected_write.items():
        assert _describe(api_as(who), slug) == status, who
    for who in (None, "bob", "carol"):  # and nothing of theirs changed it
        client = api_as(who)
        assert status_of(lambda c=client: c.add_collection_item(slug, "alice/x", "model")) in (401, 403, 404)
        assert status_of(lambda c=client: c.delete_collection(slug)) in (401, 403, 404)
    got = admin.get_collection(slug)
    assert got.items == [] and got.description == "changed"
    listed_by = {who: {c.slug for c in api_as(who).list_collections(owner="acme")} for who in (None, "bob", "carol")}
    assert all((slug in seen) == (not private or who == "carol") for who, seen in listed_by.items())
    # creating in acme needs the write role there
    assert status_of(lambda: api_as("carol").create_collection(f"C {repo_name}", namespace="acme")) == 403
    assert status_of(lambda: api_as("bob").create_collection(f"B {repo_name}", namespace="acme")) == 403
    admin.delete_collection(slug)


@pytest.mark.parametrize("private", [False, True])
def test_permission_matrix_user_collection(
    api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str, private: bool
) -> None:
    owner = api_as("alice")
    slug = owner.create_collection(f"Own {repo_name}", private=private).slug
    hidden = 404 if private else 200
    for who in (None, "bob", "carol"):
        assert _read(api_as(who), slug) == hidden, who
        assert _describe(api_as(who), slug) == (404 if private else 401 if who is None else 403), who
    assert _read(owner, slug) == 200 and _describe(owner, slug) == 200
    # a read token reads, never writes
    reader = HfApi(endpoint=server.url, token=TOKENS["alice_read"])
    assert _read(reader, slug) == 200 and _describe(reader, slug) == 403
    # nobody writes in someone else's namespace
    assert status_of(lambda: api_as("bob").create_collection(f"X {repo_name}", namespace="alice")) == 403
    with pytest.raises(HfHubHTTPError) as info:
        api_as(None).create_collection(f"Y {repo_name}", namespace="alice")
    assert info.value.response.status_code == 401


def test_positions_and_visibility_changes(api_as: Callable[[str | None], HfApi], repo_name: str) -> None:
    bob = api_as("bob")
    first = bob.create_collection(f"First {repo_name}").slug
    second = bob.create_collection(f"Second {repo_name}").slug
    before = {c: bob.get_collection(c).position for c in (first, second)}
    assert before[second] == before[first] + 1  # a new collection goes last in its owner's list
    assert bob.update_collection_metadata(second, position=0).position == 0
    assert bob.get_collection(first).position == before[first] + 1
    with pytest.raises(BadRequestError):
        bob.update_collection_metadata(second, position=-1)

    # turning a collection private hides it at once, and public again shows it
    assert api_as("carol").get_collection(first).private is False
    assert bob.update_collection_metadata(first, private=True).private is True
    assert status_of(lambda: api_as("carol").get_collection(first)) == 404
    assert first not in {c.slug for c in api_as(None).list_collections(owner="bob")}
    assert first in {c.slug for c in bob.list_collections(owner="bob")}
    bob.update_collection_metadata(first, private=False)
    assert api_as("carol").get_collection(first).private is False
    # a title another of bob's collections has: 409, nothing changed
    assert status_of(lambda: bob.update_collection_metadata(first, title=f"Second {repo_name}")) == 409
    assert bob.get_collection(first).title == f"First {repo_name}"
    for slug in (first, second):
        bob.delete_collection(slug)


def test_hf_cli_collections(api: HfApi, hf_env: dict[str, str], repo_name: str) -> None:
    """The ``hf collections`` commands, run as a user would, against this hub."""
    hf = str(Path(sys.executable).parent / "hf")

    def run(*args: str) -> str:
        done = subprocess.run([hf, "collections", *args], env=hf_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    model = api.create_repo(repo_name).repo_id
    run("create", f"Cli {repo_name}", "--description", "from the cli")
    slug = next(c.slug for c in api.list_collections(owner="alice") if c.title == f"Cli {repo_name}")
    run("add-item", slug, model, "model", "--note", "cli note")
    assert model in run("info", slug, "--json")
    listed = json.loads(run("ls", "--item", f"models/{model}", "--json"))
    assert [c["slug"] for c in listed] == [slug]
    run("delete", slug)
    assert status_of(lambda: api.get_collection(slug)) == 404
