"""The ``modelyard`` CLI against a live hub: accounts, tokens, seed files and folder import.

Every effect is checked through the real client (``HfApi``) talking to the server the CLI
changed, or by reading the database the CLI wrote.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from sqlalchemy import create_engine, select

from modelyard.catalog.tables import accounts, members, tokens
from tests.support.server import LiveServer

MiB = 1024 * 1024


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _token_from(result: Any) -> str:
    token: str = result.stdout.strip().splitlines()[-1]
    assert token.startswith("hf_"), result.stdout
    return token


def _status(exc: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert exc.value.response is not None
    return int(exc.value.response.status_code)


def test_users_create_then_tokens_read_write_and_revoke(server: LiveServer) -> None:
    user = _name("cli-user")
    created = server.cli("users", "create", user, "--fullname", "Cli User", "--email", f"{user}@example.com")
    assert created.stdout.strip() == f"Created user {user}"
    again = server.cli("users", "create", user, check=False)
    assert again.returncode == 1 and "already taken" in again.stderr

    write_token = _token_from(server.cli("tokens", "create", user, "--role", "write", "--name", "laptop"))
    read_token = _token_from(server.cli("tokens", "create", user, "--role", "read", "--name", "ci"))
    known = f"hf_{uuid.uuid4().hex}"
    assert _token_from(server.cli("tokens", "create", user, "--role", "write", "--name", "known",
                                  "--value", known)) == known

    writer = HfApi(endpoint=server.url, token=write_token)
    reader = HfApi(endpoint=server.url, token=read_token)
    me = writer.whoami()
    assert (me["name"], me["fullname"], me["email"]) == (user, "Cli User", f"{user}@example.com")
    assert me["auth"]["accessToken"]["role"] == "write"
    assert reader.whoami()["auth"]["accessToken"]["role"] == "read"
    assert HfApi(endpoint=server.url, token=known).whoami()["name"] == user

    repo_id = f"{user}/notes"
    writer.create_repo(repo_id)
    writer.upload_file(path_or_fileobj=b"written\n", path_in_repo="a.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as denied:
        reader.upload_file(path_or_fileobj=b"nope\n", path_in_repo="b.txt", repo_id=repo_id)
    assert _status(denied) == 403
    assert [f for f in reader.list_repo_files(repo_id) if f.endswith(".txt")] == ["a.txt"]

    assert server.cli("tokens", "revoke", user, "--name", "ci").stdout.strip() == "Revoked 1 token(s)"
    with pytest.raises(HfHubHTTPError) as revoked:
        reader.whoami()
    assert _status(revoked) == 401
    assert writer.whoami()["name"] == user  # other tokens live on

    assert server.cli("tokens", "revoke", user).stdout.strip() == "Revoked 2 token(s)"
    for token in (write_token, known):
        with pytest.raises(HfHubHTTPError) as gone:
            HfApi(endpoint=server.url, token=token).whoami()
        assert _status(gone) == 401


def test_orgs_create_and_add_member_roles(server: LiveServer) -> None:
    user, org = _name("cli-member"), _name("cli-org")
    server.cli("users", "create", user)
    token = _token_from(server.cli("tokens", "create", user, "--role", "write"))
    api = HfApi(endpoint=server.url, token=token)
    created = server.cli("orgs", "create", org, "--fullname", "Cli Org")
    assert created.stdout.strip() == f"Created organization {org}"

    added = server.cli("orgs", "add-member", org, user, "--role", "read")
    assert added.stdout.strip() == f"{user} is now read in {org}"
    assert [(o["name"], o["roleInOrg"]) for o in api.whoami()["orgs"]] == [(org, "read")]
    with pytest.raises(HfHubHTTPError) as denied:
        api.create_repo(f"{org}/model")
    assert _status(denied) == 403

    server.cli("orgs", "add-member", org, user, "--role", "write")
    assert [(o["name"], o["roleInOrg"]) for o in api.whoami()["orgs"]] == [(org, "write")]
    api.create_repo(f"{org}/model")
    api.upload_file(path_or_fileobj=b"hi\n", path_in_repo="hi.txt", repo_id=f"{org}/model")
    assert "hi.txt" in api.list_repo_files(f"{org}/model")


def _account_rows(server: LiveServer, names: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the seed may have written for these accounts, as plain tuples."""
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            ids = [r.id for r in conn.execute(select(accounts.c.id).where(accounts.c.name.in_(names)))]
            rows = {
                "accounts": conn.execute(select(accounts).where(accounts.c.id.in_(ids))).all(),
                "members": conn.execute(select(members).where(members.c.org_id.in_(ids))).all(),
                "tokens": conn.execute(select(tokens).where(tokens.c.account_id.in_(ids))).all(),
            }
    finally:
        engine.dispose()
    return {table: sorted(tuple(r) for r in found) for table, found in rows.items()}


def test_seed_is_idempotent_and_default_private_org_makes_private_repos(
    server: LiveServer, tmp_path: Path
) -> None:
    user, secret_org, open_org = _name("seeded"), _name("secret"), _name("open")
    token = f"hf_{uuid.uuid4().hex}"
    spec = {
        "users": [{"name": user, "fullname": "Seeded User", "email": f"{user}@example.com",
                   "tokens": [{"value": token, "role": "write", "name": "seeded"}]}],
        "orgs": [
            {"name": secret_org, "fullname": "Secret", "default_private": True, "members": {user: "admin"}},
            {"name": open_org, "members": {user: "write"}},
        ],
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(spec))
    names = [user, secret_org, open_org]

    assert server.cli("seed", str(path)).stdout.strip() == "Seeded"
    first = _account_rows(server, names)
    assert len(first["accounts"]) == 3 and len(first["members"]) == 2 and len(first["tokens"]) == 1
    assert server.cli("seed", str(path)).stdout.strip() == "Seeded"
    assert _account_rows(server, names) == first

    api = HfApi(endpoint=server.url, token=token)
    assert {(o["name"], o["roleInOrg"]) for o in api.whoami()["orgs"]} == {(secret_org, "admin"), (open_org, "write")}
    api.create_repo(f"{secret_org}/hidden")
    api.create_repo(f"{open_org}/shown")
    assert api.model_info(f"{secret_org}/hidden").private is True
    assert api.model_info(f"{open_org}/shown").private is False
    anonymous = HfApi(endpoint=server.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info(f"{secret_org}/hidden")
    assert anonymous.model_info(f"{open_org}/shown").id == f"{open_org}/shown"


def test_import_folder_puts_large_and_binary_files_in_lfs(server: LiveServer, tmp_path: Path) -> None:
    rnd = random.Random(11)
    folder = tmp_path / "my-model"
    files = {
        "README.md": b"---\nlicense: mit\n---\n# Imported\n",
        "config.json": json.dumps({"hidden_size": 8}).encode(),
        "nested/deeper/vocab.txt": b"\n".join(b"tok%d" % i for i in range(100)) + b"\n",
        "model.safetensors": rnd.randbytes(200_000),  # LFS by the .gitattributes patterns
        "raw.dat": b"\x00binary" + rnd.randbytes(5000),  # LFS because it is binary
        "big.txt": b"x" * (10 * MiB + 1),  # LFS because it is large (text otherwise)
    }
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    repo_id = f"alice/{_name('imported')}"

    result = server.cli("import", str(folder), repo_id, "--as-user", "alice")
    commit = result.stdout.strip().removeprefix("Committed ")
    assert len(commit) == 40, result.stdout

    api = HfApi(endpoint=server.url, token=False)
    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == commit
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(files) | {".gitattributes"}
    lfs = {name for name, s in siblings.items() if s.lfs is not None}
    assert lfs == {"model.safetensors", "raw.dat", "big.txt"}
    for name in lfs:
        assert siblings[name].lfs.size == len(files[name])  # type: ignore[union-attr]
    assert info.card_data is not None and info.card_data.get("license") == "mit"
    for rel, content in files.items():
        local = hf_hub_download(repo_id, rel, endpoint=server.url, token=False, cache_dir=tmp_path / "cache")
        assert Path(local).read_bytes() == content, rel


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # argument checks: any backend will do
def test_cli_refuses_bad_input_with_a_message(server: LiveServer, tmp_path: Path) -> None:
    user = _name("cli-bad")
    server.cli("users", "create", user)
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("tokens", "create", _name("ghost"), "--role", "read"), 1, "No user named"),
        (("tokens", "create", user, "--role", "read", "--value", "not-a-token"), 1, "must start with 'hf_'"),
        (("tokens", "create", user, "--role", "admin"), 2, "'admin' is not one of"),
        (("orgs", "add-member", user, user, "--role", "read"), 1, "No organization named"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"users": [{"fullname": "No Name"}]}))
    cases += [(("seed", str(broken)), 1, "not valid JSON"), (("seed", str(nameless)), 1, "error:")]
    for args, code, message in cases:
        result = server.cli(*args, check=False)
        assert (result.returncode, message in result.stderr) == (code, True), (args, result.stderr)
