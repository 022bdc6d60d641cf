"""The download path's cost in statements, and its survival of connections the database closed
(SQLite and PostgreSQL).

``HEAD``/``GET /resolve`` is the request every client sends most: it runs one statement for the
repo, its access and the branch, one more for a large file's Xet and purge facts, and one for a
token (``Database.quick``: no transaction around them on PostgreSQL, so no BEGIN and ROLLBACK
round trips). Statements are counted on every engine of an in-process ``Hub`` opened on the live
server's database, after one warm-up call (trees and object sizes come from the process's cache).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from huggingface_hub import HfApi
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

from modelyard.catalog.database import Database
from modelyard.config import Settings
from modelyard.errors import RepoNotFoundError, RevisionNotFoundError
from modelyard.services.auth import authenticate
from modelyard.services.files import resolve_file
from modelyard.services.gating import GatedRepoAnonymousError
from modelyard.services.hub import Hub
from modelyard.services.lfs_files import EntryPurgedError
from tests.integration.conftest import BACKENDS
from tests.support.server import PG_ADMIN_URL, TOKENS, LiveServer, seeded_hub

REPO = "alice/download-path"


@pytest.fixture(scope="module", params=BACKENDS)
def hosted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"dl-{request.param}")) as hub, hub.running() as live:
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        api.create_repo(REPO)
        api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=REPO)
        api.upload_file(path_or_fileobj=os.urandom(1 << 20), path_in_repo="model.bin", repo_id=REPO)
        api.create_tag(REPO, tag="v1")
        yield live


@pytest.fixture
def hub(hosted: LiveServer) -> Iterator[Hub]:
    opened = Hub(Settings(data_dir=hosted.data_dir, database_url=hosted.database_url))
    try:
        yield opened
    finally:
        opened.close()


def engines(db: Database) -> list[Engine]:
    return [db._read, db._write] + ([] if db.is_sqlite else [db._quick])


def count_statements(db: Database) -> list[str]:
    """Statements sent from now on (SQLite's BEGIN, which the hub sends itself, is not a round
    trip to a server: it is left out; on PostgreSQL the short path sends none)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if not (db.is_sqlite and sql == "BEGIN"):
            seen.append(sql)

    for engine in engines(db):
        event.listen(engine, "before_cursor_execute", note)
    return seen


@pytest.mark.parametrize(("revision", "path", "expected"), [
    ("main", "config.json", 1),  # repo, access and branch in one statement; the bytes from the cache
    ("v1", "model.bin", 1),  # a tag, and the large file's Xet and purge facts (guessed right)
    ("main", "model.bin", 1),
])
def test_statements_per_resolve(hub: Hub, revision: str, path: str, expected: int) -> None:
    """What a HEAD costs (``with_bytes=False``); a GET of a regular file reads its bytes too."""
    resolve_file(hub, None, "model", REPO, revision, path)  # warm: trees and sizes cached
    seen = count_statements(hub.db)
    resolved = resolve_file(hub, None, "model", REPO, revision, path, with_bytes=False)
    assert resolved.entry.path == path and resolved.inline is None
    assert len(seen) == expected, seen
    if path == "config.json":
        assert resolve_file(hub, None, "model", REPO, revision, path).inline == b'{"a": 1}'
        assert len(seen) == expected + 2, seen  # and a GET reads the bytes


def test_a_wrong_guess_costs_one_more_statement(hosted: LiveServer, hub: Hub) -> None:
    """The guess of a large file's facts is checked against the commit the branch resolves to:
    after a commit that changes the file, the facts are asked for again, and they are right."""
    api = HfApi(endpoint=hosted.url, token=TOKENS["alice"])
    rid = api.create_repo("alice/download-path-moving").repo_id
    api.upload_file(path_or_fileobj=os.urandom(4096), path_in_repo="w.bin", repo_id=rid)
    first = resolve_file(hub, None, "model", rid, "main", "w.bin")
    api.upload_file(path_or_fileobj=os.urandom(4096), path_in_repo="w.bin", repo_id=rid)
    seen = count_statements(hub.db)
    second = resolve_file(hub, None, "model", rid, "main", "w.bin", with_bytes=False)
    assert second.commit != first.commit and second.entry.lfs_sha256 != first.entry.lfs_sha256
    assert second.blob_key is not None and second.blob_key.endswith(second.entry.lfs_sha256 or "-")
    catalog = [sql for sql in seen if "FROM git_objects" not in sql]  # the new commit's objects, read once
    assert len(catalog) == 2, catalog
    seen.clear()
    assert resolve_file(hub, None, "model", rid, "main", "w.bin", with_bytes=False) == second
    assert len(seen) == 1, seen


def test_a_commit_id_revision_needs_one_more(hosted: LiveServer, hub: Hub) -> None:
    commit = HfApi(endpoint=hosted.url).model_info(REPO).sha
    assert commit is not None
    resolve_file(hub, None, "model", REPO, commit, "config.json")
    seen = count_statements(hub.db)
    assert resolve_file(hub, None, "model", REPO, commit, "config.json", with_bytes=False).commit == commit
    assert len(seen) == 2, seen


def test_unknown_revisions_are_revisions_not_found(hub: Hub) -> None:
    """A revision no ref or commit has (NUL included: PostgreSQL refuses it in a query) is a
    missing revision of a repo that exists, not a missing repo."""
    for revision in ("no-such-branch", "main\x00x", "deadbeef"):
        with pytest.raises(RevisionNotFoundError):
            resolve_file(hub, None, "model", REPO, revision, "config.json")
    with pytest.raises(RepoNotFoundError):
        resolve_file(hub, None, "model", "alice/no-such-repo\x00", "main", "config.json")


def test_a_token_costs_one_statement(hub: Hub) -> None:
    seen = count_statements(hub.db)
    principal = authenticate(hub, TOKENS["alice"])
    assert principal is not None and principal.name == "alice"
    assert len(seen) == 1, seen
    if not hub.db.is_sqlite:  # and no transaction around it: psycopg sends no BEGIN in autocommit
        assert hub.db.quick(lambda conn: conn.connection.dbapi_connection.autocommit) is True  # type: ignore[union-attr]


def test_the_rules_still_hold_on_the_short_path(hosted: LiveServer, hub: Hub) -> None:
    """Private, gated and purged answers come from the same statements."""
    api = HfApi(endpoint=hosted.url, token=TOKENS["alice"])
    private = api.create_repo("alice/download-path-private", private=True).repo_id
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=private)
    with pytest.raises(RepoNotFoundError):
        resolve_file(hub, None, "model", private, "main", "config.json")
    alice = authenticate(hub, TOKENS["alice"])
    assert resolve_file(hub, alice, "model", private, "main", "config.json").entry.size == 2

    gated = api.create_repo("alice/download-path-gated").repo_id
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=gated)
    api.update_repo_settings(gated, gated="auto")
    with pytest.raises(GatedRepoAnonymousError):
        resolve_file(hub, None, "model", gated, "main", "config.json")

    purged = api.create_repo("alice/download-path-purged").repo_id
    api.upload_file(path_or_fileobj=os.urandom(4096), path_in_repo="w.bin", repo_id=purged)
    old = resolve_file(hub, None, "model", purged, "main", "w.bin")
    resolve_file(hub, None, "model", purged, old.commit, "w.bin")  # the guess for this revision, unpurged
    api.delete_file("w.bin", repo_id=purged)
    api.permanently_delete_lfs_files(purged, list(api.list_lfs_files(purged)), rewrite_history=False)
    with pytest.raises(EntryPurgedError):  # the guessed facts come fresh with the statement
        resolve_file(hub, None, "model", purged, old.commit, "w.bin")
    r = httpx.head(f"{hosted.url}/{purged}/resolve/{old.commit}/w.bin")
    assert r.status_code == 410 and r.headers["X-Error-Code"] == "EntryNotFound"


def test_connections_the_server_closed_are_replaced(hosted: LiveServer, hub: Hub) -> None:
    """PostgreSQL restarted or a proxy dropped idle connections: the next download still works
    (the short path pings no connection before use; it runs the statement again on a new one)."""
    if hosted.database_url is None:
        pytest.skip("PostgreSQL only: SQLite has no server to close connections")
    resolve_file(hub, None, "model", REPO, "main", "model.bin")
    database = hosted.database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid() AND backend_type = 'client backend' AND application_name = ''", (database,)
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    assert resolve_file(hub, None, "model", REPO, "main", "model.bin").entry.size == 1 << 20
    assert authenticate(hub, TOKENS["alice"]) is not None
    # the live server's own connections were closed as well: its next requests still succeed
    for _ in range(3):
        assert httpx.head(f"{hosted.url}/{REPO}/resolve/main/model.bin").status_code == 200


def test_other_errors_are_not_retried(hub: Hub) -> None:
    calls: list[int] = []

    def failing(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        hub.db.quick(failing)
    assert calls == [1]
