"""Hub parity: card metadata refused as the Hub refuses it, commit authors, org full names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import BadRequestError

from tests.support.clients.run import run_client
from tests.support.server import LiveServer

#: (card metadata, the message the Hub's validate-yaml gives for it). The message is matched in
#: the JSON body too (where quotes are escaped), hence ``\\?"``.
BAD_CARDS = [
    ("license: my-own-licence", r'"license\\?" must be one of \[apache-2\.0, mit, openrail, '),
    ("license: Apache-2.0", r'"license\\?" must be one of \[.*did you mean \\?"apache-2\.0'),
    ("model-index: not a list", r'"model-index\\?" must be a list'),
    ("model-index:\n- results: []", r'"model-index\[0\]\.name\\?" is required'),
    ("model-index:\n- name: m\n  results: {task: x}", r'"model-index\[0\]\.results\\?" must be a list'),
    (
        "model-index:\n- name: m\n  results:\n  - task: {name: Classification}\n"
        "    dataset: {name: d, type: d}\n    metrics: [{type: acc, value: 1}]",
        r'"model-index\[0\]\.results\[0\]\.task\.type\\?" is required',
    ),
    (
        "model-index:\n- name: m\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: d}\n    metrics: [{type: acc, value: 1}]",
        r'"model-index\[0\]\.results\[0\]\.dataset\.type\\?" is required',
    ),
    (
        "model-index:\n- name: m\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: d, type: d}\n    metrics: [{type: acc}]",
        r'"model-index\[0\]\.results\[0\]\.metrics\[0\]\.value\\?" is required',
    ),
    ("tags: {a: b}", r'"tags\\?" must be a string or a list of strings'),
    ("tags: [ok, 3]", r'"tags\[1\]\\?" must be a string'),
    ("library_name: [transformers]", r'"library_name\\?" must be a string'),
    ("pipeline_tag: text-generator", r'"pipeline_tag\\?" must be one of \['),
]


def card(metadata: str) -> bytes:
    return f"---\n{metadata}\n---\n# A model\n".encode()


@pytest.mark.parametrize(("metadata", "message"), BAD_CARDS, ids=[m.split(":")[0] + str(i) for i, (m, _) in
                                                                   enumerate(BAD_CARDS)])
def test_a_readme_with_bad_metadata_is_refused_before_anything_is_uploaded(
    api: HfApi, repo_name: str, metadata: str, message: str
) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    head = api.model_info(repo_id).sha
    weights = CommitOperationAdd("model.safetensors", b"\x00" * 4096)  # would go through LFS
    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md\.\n- ") as refused:
        api.create_commit(repo_id, [weights, CommitOperationAdd("README.md", card(metadata))], commit_message="x")
    assert re.search(message, str(refused.value)), str(refused.value)
    cause = refused.value.__cause__
    assert isinstance(cause, BadRequestError) and cause.response.url.path == "/api/validate-yaml"
    assert re.search(message, cause.response.text)
    # nothing changed: same head, same files, no LFS object known to the repo
    assert api.model_info(repo_id).sha == head
    assert api.list_repo_files(repo_id) == [".gitattributes"]
    assert len(api.list_repo_commits(repo_id)) == 1


def test_the_same_metadata_is_accepted_once_valid(api: HfApi, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    good = (
        "license: apache-2.0\ntags: [ok]\nmodel-index:\n- name: m\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: d, type: d}\n    metrics: [{type: acc, value: 0.9}]"
    )
    api.upload_file(path_or_fileobj=card(good), path_in_repo="README.md", repo_id=repo_id)
    info = api.model_info(repo_id)
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    assert info.card_data.eval_results is not None and info.card_data.eval_results[0].metric_value == 0.9


def test_a_card_without_metadata_is_accepted_with_a_warning(api: HfApi, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    with pytest.warns(UserWarning, match="Warnings while validating metadata in README.md:\n- Empty or missing yaml"):
        api.upload_file(path_or_fileobj=b"# Just a title\n", path_in_repo="README.md", repo_id=repo_id)
    assert "README.md" in api.list_repo_files(repo_id)


def test_repocard_validate_push_and_metadata_update_are_refused_by_the_server(
    api: HfApi, hf_env: dict[str, str], tmp_path: Path, repo_name: str
) -> None:
    """The client's card helpers, run as a user runs them (HF_ENDPOINT set at import)."""
    repo_id = api.create_repo(repo_name).repo_id
    bad = tmp_path / "bad.md"
    bad.write_bytes(card("license: my-own-licence\ntags: [ok]"))
    good = tmp_path / "good.md"
    good.write_bytes(card("license: mit\ntags: [ok]"))
    empty = tmp_path / "empty.md"
    empty.write_text("# No metadata\n")

    # RepoCard.validate raises a plain ValueError carrying the server's answer
    checked = run_client("card_checks.py", ["validate", "model", str(bad)], hf_env)
    assert checked["error"] == "ValueError" and checked["cause"] is None
    assert re.search(r'"license\\?" must be one of \[apache-2\.0, mit', checked["message"])
    assert run_client("card_checks.py", ["validate", "model", str(good)], hf_env)["error"] is None
    assert run_client("card_checks.py", ["validate", "model", str(empty)], hf_env)["error"] is None
    # a dataset card may list licences, a model card may not
    as_dataset = tmp_path / "list.md"
    as_dataset.write_bytes(card("license: [mit, cc-by-4.0]"))
    assert run_client("card_checks.py", ["validate", "dataset", str(as_dataset)], hf_env)["error"] is None
    refused = run_client("card_checks.py", ["validate", "model", str(as_dataset)], hf_env)
    assert refused["error"] == "ValueError" and '\\"license\\" must be a string' in refused["message"]

    head = api.model_info(repo_id).sha
    pushed = run_client("card_checks.py", ["push", repo_id, "model", str(bad)], hf_env)
    assert pushed["error"] == "ValueError" and "must be one of" in pushed["message"]
    updated = run_client("card_checks.py", ["metadata_update", repo_id, json.dumps({"tags": [1, 2]})], hf_env)
    assert updated["error"] == "ValueError" and '\\"tags[0]\\" must be a string' in updated["message"]
    assert api.model_info(repo_id).sha == head and "README.md" not in api.list_repo_files(repo_id)

    ok = run_client("card_checks.py", ["push", repo_id, "model", str(good)], hf_env)
    assert ok["error"] is None and ok["warnings"] == []
    ok = run_client("card_checks.py", ["metadata_update", repo_id, json.dumps({"license": "apache-2.0"})], hf_env)
    assert ok["error"] is None
    assert api.model_info(repo_id).card_data.license == "apache-2.0"


def test_validate_yaml_answers_json_with_errors_and_warnings(server: LiveServer) -> None:
    """The shape the client parses: ``errors`` and ``warnings``, lists of ``{message}``."""
    r = httpx.post(f"{server.url}/api/validate-yaml",
                   json={"content": "---\nlicense: nope\nlanguage: English\n---\n", "repoType": "model"})
    assert r.status_code == 400
    body = r.json()
    assert [e["message"].split(" must")[0] for e in body["errors"]] == ['Error: "license"']
    assert len(body["warnings"]) == 1 and '"English"' in body["warnings"][0]["message"]
    r = httpx.post(f"{server.url}/api/validate-yaml", json={"content": "no metadata", "repoType": "space"})
    assert r.status_code == 200
    assert r.json() == {"errors": [], "warnings": [{"message": "Empty or missing yaml metadata in repo card"}]}


# --- commit authors and people ------------------------------------------------------------------


def test_commit_authors_are_user_names(api: HfApi, api_as: Callable[[str | None], HfApi], repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id  # alice: fullname "Alice A", e-mail alice@example.com
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo_id)
    commits = api.list_repo_commits(repo_id)
    assert [c.authors for c in commits] == [["alice"], ["system"]]
    formatted = api.list_repo_commits(repo_id, formatted=True)
    assert [c.authors for c in formatted] == [["alice"], ["system"]]
    bob = api_as("bob")
    bobs = bob.create_repo(repo_name).repo_id  # bob has no e-mail
    bob.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=bobs)
    bob.create_branch(bobs, branch="dev")
    api_as("bob").super_squash_history(bobs, branch="dev")
    assert [c.authors for c in bob.list_repo_commits(bobs)] == [["bob"], ["system"]]
    assert [c.authors for c in bob.list_repo_commits(bobs, revision="dev")] == [["bob"]]


def test_whoami_orgs_carry_their_full_names(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str
) -> None:
    orgs = {o["name"]: o for o in api.whoami()["orgs"]}
    assert {name: o["fullname"] for name, o in orgs.items()} == {"acme": "Acme", "vault": "Vault"}
    assert {name: o["roleInOrg"] for name, o in orgs.items()} == {"acme": "admin", "vault": "write"}
    org = f"o{repo_name[2:]}"
    server.cli("orgs", "create", org, "--fullname", "Parity Works Ltd.")
    server.cli("orgs", "add-member", org, "bob", "--role", "read")
    mine = [o for o in api_as("bob").whoami()["orgs"] if o["name"] == org]
    assert [(o["fullname"], o["roleInOrg"], o["type"]) for o in mine] == [("Parity Works Ltd.", "read", "org")]
    plain = f"p{repo_name[2:]}"
    server.cli("orgs", "create", plain)  # no --fullname: the name stands in, as before
    server.cli("orgs", "add-member", plain, "bob", "--role", "read")
    assert [o["fullname"] for o in api_as("bob").whoami()["orgs"] if o["name"] == plain] == [plain]
