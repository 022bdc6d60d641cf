"""Repo CRUD, info and listing through the real HfApi."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import LiveServer


def test_whoami_reports_user_and_orgs(api: HfApi) -> None:
    me = api.whoami()
    assert me["name"] == "alice"
    assert me["type"] == "user"
    assert {o["name"] for o in me["orgs"]} == {"acme", "vault"}
    assert me["auth"]["accessToken"]["role"] == "write"


def test_whoami_with_unknown_token_is_rejected(api_as: Callable[[str | None], HfApi], server: LiveServer) -> None:
    bad = HfApi(endpoint=server.url, token="hf_this_token_does_not_exist_at_all")
    with pytest.raises(HfHubHTTPError) as info:
        bad.whoami()
    assert info.value.response.status_code == 401


def test_create_repo_returns_url_on_the_client_host(api: HfApi, server: LiveServer, repo_name: str) -> None:
    url = api.create_repo(f"acme/{repo_name}")
    assert url == f"{server.url}/acme/{repo_name}"
    assert url.repo_id == f"acme/{repo_name}"
    again = api.create_repo(f"acme/{repo_name}", exist_ok=True)
    assert again.repo_id == f"acme/{repo_name}"
    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo(f"acme/{repo_name}")
    assert info.value.response.status_code == 409
    assert info.value.response.json()["url"].endswith(f"/acme/{repo_name}")


def test_new_repo_has_gitattributes_and_info_fields(api: HfApi, repo_name: str) -> None:
    api.create_repo(f"acme/{repo_name}")
    info = api.model_info(f"acme/{repo_name}", files_metadata=True)
    assert info.id == f"acme/{repo_name}"
    assert len(info.sha) == 40
    assert info.private is False
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    assert info.siblings[0].size > 0
    assert info.created_at is not None and info.last_modified is not None
    refs = api.list_repo_refs(f"acme/{repo_name}")
    assert [b.name for b in refs.branches] == ["main"]
    commits = api.list_repo_commits(f"acme/{repo_name}")
    assert [c.title for c in commits] == ["initial commit"]


def test_dataset_repo_and_space_404(api: HfApi, repo_name: str) -> None:
    api.create_repo(f"acme/{repo_name}", repo_type="dataset")
    assert api.repo_exists(f"acme/{repo_name}", repo_type="dataset")
    assert not api.repo_exists(f"acme/{repo_name}", repo_type="model")
    assert not api.repo_exists(f"acme/{repo_name}", repo_type="space")
    info = api.dataset_info(f"acme/{repo_name}")
    assert info.id == f"acme/{repo_name}"


def test_delete_and_move(api: HfApi, repo_name: str) -> None:
    api.create_repo(f"acme/{repo_name}")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"acme/{repo_name}")
    api.move_repo(f"acme/{repo_name}", f"alice/{repo_name}-moved")
    # the old id leads to the new one (conformance/test_parity_moved.py has the whole story)
    assert api.repo_info(f"acme/{repo_name}").id == f"alice/{repo_name}-moved"
    assert api.file_exists(f"alice/{repo_name}-moved", "x.txt")
    api.delete_repo(f"alice/{repo_name}-moved")
    assert not api.repo_exists(f"alice/{repo_name}-moved")
    assert not api.repo_exists(f"acme/{repo_name}")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(f"alice/{repo_name}-moved")
    api.delete_repo(f"alice/{repo_name}-moved", missing_ok=True)


def test_list_models_search_author_filter_sort_and_pagination(api: HfApi, server: LiveServer, repo_name: str) -> None:
    ids = [f"acme/{repo_name}-{i}" for i in range(5)]
    for i, rid in enumerate(ids):
        api.create_repo(rid)
        card = f"---\nlicense: mit\ntags:\n- t{i % 2}\nlibrary_name: transformers\n---\n# card\n"
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
    server.settle()  # the catalog follows the commits through the job queue
    found = [m.id for m in api.list_models(search=repo_name, sort="created_at")]
    assert found == list(reversed(ids))
    odd = [m.id for m in api.list_models(search=repo_name, filter=["t1", "license:mit"])]
    assert sorted(odd) == [ids[1], ids[3]]
    assert [m.id for m in api.list_models(author="acme", search=repo_name, limit=2)] == [ids[4], ids[3]]
    # pages of 2 walk the whole result through absolute Link URLs
    import httpx

    url = f"{api.endpoint}/api/models?search={repo_name}&limit=2&sort=createdAt"
    seen: list[str] = []
    pages = 0
    while url:
        r = httpx.get(url)
        r.raise_for_status()
        seen += [m["id"] for m in r.json()]
        pages += 1
        url = r.links.get("next", {}).get("url")
    assert seen == list(reversed(ids)) and pages == 3
    full = next(iter(api.list_models(search=f"{repo_name}-0", full=True)))
    assert {s.rfilename for s in full.siblings} == {".gitattributes", "README.md"}
    with_card = next(iter(api.list_models(search=f"{repo_name}-0", cardData=True)))
    assert with_card.card_data["license"] == "mit"
    assert "license:mit" in with_card.tags and with_card.library_name == "transformers"


def test_list_rejects_bad_parameters(api: HfApi, server: LiveServer) -> None:
    import httpx

    r = httpx.get(f"{server.url}/api/models?sort=nonsense")
    assert r.status_code == 400 and r.headers["X-Error-Message"]
    r = httpx.get(f"{server.url}/api/models?limit=abc")
    assert r.status_code == 400
    r = httpx.get(f"{server.url}/api/models?cursor=garbage")
    assert r.status_code == 400
