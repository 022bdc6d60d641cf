"""``modelyard fsck``: clean on a healthy hub; names every kind of damage and exits non-zero.

One healthy hub per backend is built through the real client, then copied for each test (files
copied, PostgreSQL database cloned from it as a template) and damaged directly in the database
or the blob folder, as a crashed disk or a careless operator would.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.hf_api import RepoFile, RepoFolder
from sqlalchemy import Engine, create_engine, text

from tests.integration.conftest import BACKENDS
from tests.support.server import PG_ADMIN_URL, TOKENS, LiveServer, seeded_hub

REPO = "alice/fsck-subject"
WEIGHTS = b"\x00\x01weights" + bytes(range(256)) * 512
CONFIG = b'{"hidden_size": 8, "for": "fsck"}\n'
EXTRA = b"\x00extra" * 1000


@dataclass(frozen=True)
class Pristine:
    """A healthy hub (server stopped) and the ids of the objects the tests damage."""

    hub: LiveServer
    head: str
    first_commit: str
    sub_tree: str
    other_tree: str
    config_blob: str
    weights_sha256: str
    extra_sha256: str


@pytest.fixture(scope="module", params=BACKENDS)
def pristine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"fsck-{request.param}")) as hub:
        hub.start()
        try:
            api = HfApi(endpoint=hub.url, token=TOKENS["alice"])
            api.create_repo(REPO)
            first = api.upload_file(path_or_fileobj=b"# fsck\n", path_in_repo="README.md", repo_id=REPO).oid
            api.create_tag(REPO, tag="v1", revision=first)
            api.create_branch(REPO, branch="dev", revision=first)
            head = api.create_commit(REPO, [
                CommitOperationAdd("sub/dir/config.json", CONFIG),
                CommitOperationAdd("other/notes.txt", b"notes\n"),
                CommitOperationAdd("weights.bin", WEIGHTS),
                CommitOperationAdd("extra.bin", EXTRA),
            ], commit_message="second").oid
            entries = {e.path: e for e in api.list_repo_tree(REPO, recursive=True)}
        finally:
            hub.stop()
        sub, other, config = entries["sub"], entries["other"], entries["sub/dir/config.json"]
        assert isinstance(sub, RepoFolder) and isinstance(other, RepoFolder) and isinstance(config, RepoFile)
        assert config.blob_id == hashlib.sha1(b"blob %d\x00" % len(CONFIG) + CONFIG).hexdigest()
        yield Pristine(hub, head, first, sub.tree_id, other.tree_id, config.blob_id,
                       hashlib.sha256(WEIGHTS).hexdigest(), hashlib.sha256(EXTRA).hexdigest())


@dataclass
class Copy:
    """A throwaway copy of the pristine hub: its CLI, its database, its blob folder."""

    hub: LiveServer
    engine: Engine

    def blob(self, sha256: str) -> Path:
        return self.hub.data_dir / "blobs" / "lfs" / sha256[:2] / sha256[2:4] / sha256

    def sql(self, statement: str, **params: object) -> int:
        with self.engine.begin() as conn:
            return conn.execute(text(statement), params).rowcount

    def fsck(self) -> subprocess.CompletedProcess[str]:
        return self.hub.cli("fsck", check=False)


@contextmanager
def _cloned_database(template_url: str) -> Iterator[str]:
    template = template_url.rsplit("/", 1)[1]
    name = f"modelyard_fsck_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield template_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def copy(pristine: Pristine, tmp_path: Path) -> Iterator[Copy]:
    data_dir = tmp_path / "hub"
    shutil.copytree(pristine.hub.data_dir, data_dir, ignore=shutil.ignore_patterns("*.log", "seed-*"))
    if pristine.hub.database_url is None:
        hub = LiveServer(data_dir, None, "sqlite")
        engine = create_engine(f"sqlite:///{data_dir / 'modelyard.db'}")
        yield Copy(hub, engine)
        engine.dispose()
        return
    with _cloned_database(pristine.hub.database_url) as url:
        engine = create_engine(url)
        yield Copy(LiveServer(data_dir, url, "postgresql"), engine)
        engine.dispose()


def assert_named(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """fsck failed, and one line of its report names every needle; that line is returned."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "problem(s) found" in result.stderr
    lines = [line for line in result.stdout.splitlines() if all(n in line for n in needles)]
    assert lines, f"no fsck line names {needles}:\n{result.stdout}"
    return lines[0]


def test_clean_hub_passes(copy: Copy) -> None:
    result = copy.fsck()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "fsck: no problems found"


def test_ref_pointing_at_missing_commit(copy: Copy) -> None:
    ghost = hashlib.sha1(b"no such commit").hexdigest()
    assert copy.sql("UPDATE refs SET target = :t WHERE name = 'refs/tags/v1'", t=ghost) == 1
    line = assert_named(copy.fsck(), f"model {REPO}", "refs/tags/v1", ghost)
    assert "missing" in line


def test_missing_tree_object(copy: Copy, pristine: Pristine) -> None:
    assert copy.sql("DELETE FROM git_objects WHERE oid = :o", o=pristine.sub_tree) == 1
    line = assert_named(copy.fsck(), f"model {REPO}", "refs/heads/main", pristine.sub_tree)
    assert "missing" in line and "sub" in line


def test_missing_blob_object(copy: Copy, pristine: Pristine) -> None:
    assert copy.sql("DELETE FROM git_objects WHERE oid = :o", o=pristine.config_blob) == 1
    line = assert_named(copy.fsck(), f"model {REPO}", pristine.config_blob)
    assert "missing" in line and "config.json" in line


def _delete(path: Path) -> None:
    path.unlink()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "expected"), [
    (_delete, "missing from storage"),
    (_flip_one_byte, "is corrupt"),
], ids=["missing", "corrupted"])
def test_damaged_lfs_object(copy: Copy, pristine: Pristine, damage: Callable[[Path], None], expected: str) -> None:
    blob = copy.blob(pristine.weights_sha256)
    assert blob.is_file()
    damage(blob)
    line = assert_named(copy.fsck(), f"model {REPO}", pristine.weights_sha256)
    assert expected in line and "weights.bin" in line


def test_every_problem_is_reported(copy: Copy, pristine: Pristine) -> None:
    """Five independent kinds of damage at once: one line each, none hiding another."""
    # 1. A commit only reachable as the parent of main's head (its branch and tag are dropped).
    assert copy.sql("DELETE FROM refs WHERE name IN ('refs/heads/dev', 'refs/tags/v1')") == 2
    assert copy.sql("DELETE FROM git_objects WHERE oid = :o", o=pristine.first_commit) == 1
    # 2. A blob whose stored bytes changed but kept their length: only hashing tells.
    damaged = CONFIG.replace(b"8", b"9")
    assert len(damaged) == len(CONFIG) and damaged != CONFIG
    assert copy.sql("UPDATE git_objects SET data = :d WHERE oid = :o", d=damaged, o=pristine.config_blob) == 1
    # 3. A tree that no longer parses.
    assert copy.sql("UPDATE git_objects SET data = :d WHERE oid = :o", d=b"not a tree", o=pristine.other_tree) == 1
    # 4. A truncated LFS object.
    blob = copy.blob(pristine.weights_sha256)
    blob.write_bytes(blob.read_bytes()[:-1])
    # 5. An LFS object the database forgot (its bytes are still in the store).
    assert copy.sql("DELETE FROM repo_lfs_objects WHERE sha256 = :s", s=pristine.extra_sha256) == 1
    assert copy.sql("DELETE FROM lfs_objects WHERE sha256 = :s", s=pristine.extra_sha256) == 1

    result = copy.fsck()
    assert "missing" in assert_named(result, "refs/heads/main", pristine.first_commit)
    assert "corrupt" in assert_named(result, "config.json", pristine.config_blob)
    assert "unreadable" in assert_named(result, pristine.other_tree)
    assert f"has {len(WEIGHTS) - 1} bytes, expected {len(WEIGHTS)}" in assert_named(
        result, "weights.bin", pristine.weights_sha256)
    assert "not recorded" in assert_named(result, "extra.bin", pristine.extra_sha256)
    assert len(result.stdout.splitlines()) == 5, result.stdout
    assert "5 problem(s) found" in result.stderr
