"""Done-when (discovery) 3: list_models with every filter and sort on a seeded catalog."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from huggingface_hub import HfApi
from safetensors.numpy import save

from modelyard.catalog import search as search_q
from tests.support.server import TOKENS, LiveServer


def weights(n_params: int) -> bytes:
    return save({"w": np.zeros((n_params,), dtype=np.float32)})


@dataclass
class Seeded:
    word: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def catalog(server: LiveServer) -> Seeded:
    """Six models with known licenses, tasks, libraries, sizes, likes, downloads and gating."""
    word = f"zq{uuid.uuid4().hex[:8]}"
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    specs = {
        "tiny-mit-sim": ("mit", "sentence-similarity", "sentence-transformers", 1_000, ["en"]),
        "small-apache-sim": ("apache-2.0", "sentence-similarity", "sentence-transformers", 50_000, ["en", "fr"]),
        "mid-apache-gen": ("apache-2.0", "text-generation", "transformers", 200_000, ["en"]),
        "big-mit-gen": ("mit", "text-generation", "transformers", 800_000, ["de"]),
        "cls-apache": ("apache-2.0", "text-classification", "transformers", 30_000, ["en"]),
        "nocard": (None, None, None, None, []),
    }
    ids = {}
    for key, (lic, task, lib, params, langs) in specs.items():
        rid = f"acme/{word}-{key}"
        ids[key] = rid
        api.create_repo(rid)
        if lic is not None:
            card = f"---\nlicense: {lic}\npipeline_tag: {task}\nlibrary_name: {lib}\nlanguage: {langs}\n---\n"
            card += f"# {key}\nA model about {'sentences' if 'sim' in key else 'text'} for {word}.\n"
            api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
        if params is not None:
            api.upload_file(path_or_fileobj=io.BytesIO(weights(params)), path_in_repo="model.safetensors",
                            repo_id=rid)
    api.update_repo_settings(ids["big-mit-gen"], gated="auto")
    with httpx.Client(base_url=server.url) as client:
        for user, repos_liked in (("alice", ["cls-apache", "mid-apache-gen"]), ("bob", ["cls-apache"]),
                                  ("carol", ["cls-apache", "mid-apache-gen", "tiny-mit-sim"])):
            for key in repos_liked:
                r = client.post(f"/api/models/{ids[key]}/like", headers={"Authorization": f"Bearer {TOKENS[user]}"})
                assert r.status_code == 200
    # Downloads count once per client (address and token) and repo: five clients load
    # tiny-mit-sim (each twice), three small-apache-sim, one mid-apache-gen.
    clients = [None, "alice", "alice_read", "bob", "carol"]
    for key, count in (("tiny-mit-sim", 5), ("small-apache-sim", 3), ("mid-apache-gen", 1)):
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=ids[key])
        for user in clients[:count]:
            headers = {"X-HF-Download-Counter": "1"} | ({"Authorization": f"Bearer {TOKENS[user]}"} if user else {})
            for _ in range(2):
                r = httpx.head(f"{server.url}/{ids[key]}/resolve/main/config.json", headers=headers)
                assert r.status_code == 200
    wait_until(lambda: api.model_info(ids["mid-apache-gen"]).downloads == 1)  # folded asynchronously
    server.settle()  # and the catalog follows the commits through the job queue
    return Seeded(word, ids)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def names(models: object, seeded: Seeded) -> list[str]:
    inverse = {v: k for k, v in seeded.ids.items()}
    return [inverse[m.id] for m in models]  # type: ignore[attr-defined]


def test_search_ranks_and_filters(api: HfApi, catalog: Seeded) -> None:
    w = catalog.word
    assert sorted(names(api.list_models(search=w), catalog)) == sorted(catalog.ids)
    assert sorted(names(api.list_models(search=f"{w} apache"), catalog)) == ["cls-apache", "mid-apache-gen",
                                                                             "small-apache-sim"]
    # card text is searched too ("sentences" appears only in the similarity cards)
    assert sorted(names(api.list_models(search=f"{w} sentences"), catalog)) == ["small-apache-sim", "tiny-mit-sim"]
    assert sorted(names(api.list_models(search=w, filter=["license:mit"]), catalog)) == ["big-mit-gen", "tiny-mit-sim"]
    assert sorted(names(api.list_models(search=w, filter=["license:apache-2.0", "en"]), catalog)) == [
        "cls-apache", "mid-apache-gen", "small-apache-sim"]
    assert names(api.list_models(search=w, filter=["fr"]), catalog) == ["small-apache-sim"]
    assert sorted(names(api.list_models(search=w, filter="sentence-transformers"), catalog)) == [
        "small-apache-sim", "tiny-mit-sim"]
    assert sorted(names(api.list_models(search=w, pipeline_tag="text-generation"), catalog)) == [
        "big-mit-gen", "mid-apache-gen"]
    assert names(api.list_models(search=w, author="acme", pipeline_tag="text-classification"), catalog) == [
        "cls-apache"]
    assert list(api.list_models(search=w, author="bob")) == []


def test_num_parameters_and_gated(api: HfApi, catalog: Seeded) -> None:
    w = catalog.word
    assert sorted(names(api.list_models(search=w, num_parameters="min:40K"), catalog)) == [
        "big-mit-gen", "mid-apache-gen", "small-apache-sim"]
    assert sorted(names(api.list_models(search=w, num_parameters="min:20K,max:0.1M"), catalog)) == [
        "cls-apache", "small-apache-sim"]
    assert names(api.list_models(search=w, gated=True), catalog) == ["big-mit-gen"]
    assert sorted(names(api.list_models(search=w, gated=False), catalog)) == sorted(set(catalog.ids) - {"big-mit-gen"})
    info = api.model_info(catalog.ids["mid-apache-gen"])
    assert info.safetensors is not None and info.safetensors.total == 200_000
    assert info.safetensors.parameters == {"F32": 200_000}


def test_sorts(api: HfApi, catalog: Seeded) -> None:
    w = catalog.word
    by_likes = names(api.list_models(search=w, sort="likes"), catalog)
    assert by_likes[:3] == ["cls-apache", "mid-apache-gen", "tiny-mit-sim"]
    by_downloads = names(api.list_models(search=w, sort="downloads"), catalog)
    assert by_downloads[:3] == ["tiny-mit-sim", "small-apache-sim", "mid-apache-gen"]
    created = names(api.list_models(search=w, sort="created_at"), catalog)
    assert created == list(reversed(list(catalog.ids)))
    modified = names(api.list_models(search=w, sort="last_modified"), catalog)
    assert modified[:3] == ["mid-apache-gen", "small-apache-sim", "tiny-mit-sim"]  # the config.json commits
    trending = names(api.list_models(search=w, sort="trending_score"), catalog)
    assert trending[0] == "cls-apache"  # 3 likes (x10) beat 5 downloads
    info = api.model_info(catalog.ids["tiny-mit-sim"])
    assert info.downloads == 5 and info.likes == 1


def test_expand_full_carddata_config(api: HfApi, catalog: Seeded) -> None:
    w = catalog.word
    [m] = list(api.list_models(search=f"{w} cls"))
    assert m.card_data is None and m.siblings is None
    [m] = list(api.list_models(search=f"{w} cls", cardData=True))
    assert m.card_data is not None and m.card_data["license"] == "apache-2.0"
    [m] = list(api.list_models(search=f"{w} cls", full=True))
    assert {s.rfilename for s in m.siblings} == {".gitattributes", "README.md", "model.safetensors"}
    [m] = list(api.list_models(search=f"{w} cls", expand=["safetensors", "likes"]))
    assert m.safetensors is not None and m.safetensors.total == 30_000 and m.likes == 3 and m.tags is None


def test_likers_and_user_likes(api: HfApi, server: LiveServer, catalog: Seeded, repo_name: str) -> None:
    likers = [u.username for u in api.list_repo_likers(catalog.ids["cls-apache"])]
    assert sorted(likers) == ["alice", "bob", "carol"]
    # Of the catalog's repos (the hub is shared: other tests' users like their own repos too)
    liked = [r for r in api.list_liked_repos("carol").models if r in set(catalog.ids.values())]
    assert sorted(liked) == sorted([catalog.ids[k] for k in ("cls-apache", "mid-apache-gen", "tiny-mit-sim")])
    # Unliking on a repo of its own: the catalog's likes stay as the sort tests expect them, in any order.
    rid = api.create_repo(f"acme/{repo_name}").repo_id
    for user in ("alice", "bob"):
        r = httpx.post(f"{server.url}/api/models/{rid}/like", headers={"Authorization": f"Bearer {TOKENS[user]}"})
        assert r.status_code == 200
    assert api.model_info(rid).likes == 2
    api.unlike(rid)
    assert api.model_info(rid).likes == 1
    assert [u.username for u in api.list_repo_likers(rid)] == ["bob"]
    assert rid not in list(api.list_liked_repos("alice").models)


def test_tags_by_type_and_bad_parameters(server: LiveServer, catalog: Seeded) -> None:
    tags = httpx.get(f"{server.url}/api/models-tags-by-type").json()
    assert any(t["id"] == "license:mit" for t in tags["license"])
    for bad in ("num_parameters=min:lots", "num_parameters=min:5B,max:1B", "gated=maybe", "limit=0",
                "limit=100000", "sort=stars", "cursor=xyz"):
        r = httpx.get(f"{server.url}/api/models?{bad}")
        assert r.status_code == 400 and r.headers["X-Error-Message"], bad


def test_search_finds_names_that_look_like_numbers(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Tokens such as '1e84ba0168' (a number to PostgreSQL's text parser) must still match."""
    rid = f"acme/v-1e84ba{repo_name[2:]}-0"
    api.create_repo(rid)
    server.settle()
    assert [m.id for m in api.list_models(search=f"v-1e84ba{repo_name[2:]}")] == [rid]
    assert [m.id for m in api.list_models(search=f"1e84ba{repo_name[2:]}")] == [rid]


def test_prefixes_match_every_word_they_start(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Words of 4 letters or more match as prefixes. On PostgreSQL a prefix standing for few words
    is searched as those words (catalog/search.py ``_expand``), and one standing for more than
    ``EXPAND_MAX`` is left to the index's own prefix match: both find the same repos."""
    stem = f"pfx{repo_name[-8:]}".lower()
    few = [f"acme/{stem}-{suffix}" for suffix in ("a", "b")]
    for rid, word in zip(few, ("alpha", "alphabet"), strict=True):
        api.create_repo(rid)
        api.upload_file(path_or_fileobj=f"# card\nabout {stem}{word}\n".encode(), path_in_repo="README.md",
                        repo_id=rid)
    many = f"acme/{stem}-many"
    api.create_repo(many)
    words = " ".join(f"{stem}z{i:03d}" for i in range(search_q.EXPAND_MAX + 8))
    api.upload_file(path_or_fileobj=f"# card\n{words}\n".encode(), path_in_repo="README.md", repo_id=many)
    server.settle()

    def found(search: str) -> set[str]:
        return {m.id for m in api.list_models(search=search)}

    assert found(f"{stem}alph") == set(few)  # two words: expanded to both
    assert found(f"{stem}alphabet") == {few[1]}
    assert found(f"{stem}z0") == {many}  # 40 words: the index's prefix match
    assert found(f"{stem}z01 {stem}alpha") == set()
    assert found(f"{stem}nothing") == set()  # no such word anywhere
    # a word that arrives with a later commit is found by its prefix at once
    api.upload_file(path_or_fileobj=f"# card\nabout {stem}omega\n".encode(), path_in_repo="README.md",
                    repo_id=few[0])
    server.settle()
    assert found(f"{stem}omeg") == {few[0]}
    assert found(f"{stem}alph") == {few[1]}
