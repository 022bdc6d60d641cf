"""Air-gapped bundles: ``modelyard bundle export`` on hub A, carried as one file, ``bundle import``
on hubs with no network configuration (B on SQLite and on PostgreSQL; C for refusals).

A's repo has history on two branches and a tag, an LFS file (this process's client, Xet off), a
file the real default client uploaded through Xet, and a hand-made Xet file whose chunks sit in
one stored xorb between chunks of a file of another, private repo (dedup is global): the bundle
must carry the exported file's chunks and none of the private file's.
"""

from __future__ import annotations

import filecmp
import hashlib
import io
import json
import os
import random
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from modelyard.xet.hashing import chunk_hash, file_hash, hash_to_str, verification_hash
from modelyard.xet.shard import FileRecord, Term, XorbChunkEntry, XorbRecord, build_upload_shard, parse_shard
from modelyard.xet.xorb import parse_xorb, serialize_xorb, split_chunks
from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer, seeded_hub
from tests.support.xet import Cas, cas_token

CHUNK = 64 * 1024
ALICE = {"Authorization": f"Bearer {TOKENS['alice']}"}


def client_env(server: LiveServer, home: Path) -> dict[str, str]:
    """A default install's environment (Xet on) for a client subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELYARD_"))}
    env.update({"HF_ENDPOINT": server.url, "HF_HOME": str(home), "HF_TOKEN": TOKENS["alice"],
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    return env


def commit_pointer(server: LiveServer, repo_id: str, path: str, data: bytes) -> None:
    """The commit a client makes after uploading a file's xorbs and shard: an ``lfsFile`` line."""
    lines = [{"key": "header", "value": {"summary": f"add {path}"}},
             {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)}}]
    r = httpx.post(f"{server.url}/api/models/{repo_id}/commit/main", headers={**ALICE, "Content-Type":
                   "application/x-ndjson"}, content="\n".join(json.dumps(x) for x in lines))
    assert r.status_code == 200, r.text


def record(chunks: list[bytes], terms: list[Term], index_hashes: list[bytes]) -> FileRecord:
    data = b"".join(chunks)
    nodes = [(chunk_hash(c), len(c)) for c in chunks]
    return FileRecord(file_hash(nodes), tuple(terms),
                      tuple(verification_hash(index_hashes[t.start : t.end]) for t in terms),
                      hashlib.sha256(data).digest())


class Source:
    """Hub A and its repo, with what the tests compare against."""

    def __init__(self, hub: LiveServer, repo_id: str, private_id: str, shared: bytes, foreign: set[bytes]) -> None:
        self.hub = hub
        self.repo_id = repo_id
        self.private_id = private_id
        self.shared = shared  # the hand-made Xet file's bytes
        self.foreign = foreign  # chunk hashes of the private repo's file, in the same stored xorb
        self.api = HfApi(endpoint=hub.url, token=TOKENS["alice"])


def build_source(hub: LiveServer, tmp: Path) -> Source:
    api = HfApi(endpoint=hub.url, token=TOKENS["alice"])
    name = f"b-{uuid.uuid4().hex[:8]}"
    repo_id = api.create_repo(f"alice/{name}").repo_id
    rng = random.Random(5)
    api.create_commit(repo_id, [CommitOperationAdd("config.json", b'{"model_type": "bert"}'),
                                CommitOperationAdd("weights.safetensors", rng.randbytes(300_000))],
                      commit_message="weights (LFS)")
    api.create_branch(repo_id, branch="dev")
    api.create_commit(repo_id, [CommitOperationAdd("README.md", b"# dev\n"),
                                CommitOperationAdd("old.bin", rng.randbytes(50_000))],
                      commit_message="on dev", revision="dev")
    api.create_tag(repo_id, tag="v1")

    # A file uploaded by the real default client, through Xet.
    block = rng.randbytes(400_000)
    big = tmp / "model.bin"
    big.write_bytes(rng.randbytes(900_000) + block + block)
    run_client("xet_client.py", ["upload", repo_id, str(big), "model.bin"], client_env(hub, tmp / "home"))

    # One stored xorb: chunks p0 p1 | e0 e1 e2 | p2 of two files; e* are the exported repo's
    # shared.bin, p* a private repo's secret.bin.
    private_id = api.create_repo(f"alice/{name}-private", private=True).repo_id
    p = [rng.randbytes(CHUNK) for _ in range(3)]
    e = [rng.randbytes(CHUNK), rng.randbytes(CHUNK), rng.randbytes(1000)]
    body, index = serialize_xorb([p[0], p[1], *e, p[2]])
    hashes = [c.hash for c in index.chunks]
    xorb = index.hash()
    entries, offset = [], 0
    for c in index.chunks:
        entries.append(XorbChunkEntry(c.hash, offset, c.size))
        offset += c.size
    secret = record(p, [Term(xorb, 0, 2, 2 * CHUNK), Term(xorb, 5, 6, CHUNK)], hashes)
    shared = record(e, [Term(xorb, 2, 5, sum(map(len, e)))], hashes)
    private_cas = Cas(hub, cas_token(hub, private_id, "write", TOKENS["alice"]))
    assert private_cas.xorb(hash_to_str(xorb), body).status_code == 200
    r = private_cas.shard(build_upload_shard([secret], [XorbRecord(xorb, tuple(entries))]))
    assert r.status_code == 200, r.text
    commit_pointer(hub, private_id, "secret.bin", b"".join(p))
    r = Cas(hub, cas_token(hub, repo_id, "write", TOKENS["alice"])).shard(build_upload_shard([shared], []))
    assert r.status_code == 200, r.text
    commit_pointer(hub, repo_id, "shared.bin", b"".join(e))
    api.create_commit(repo_id, [CommitOperationAdd("notes.txt", b"more")], commit_message="notes")
    return Source(hub, repo_id, private_id, b"".join(e), {hashes[0], hashes[1], hashes[5]})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    with seeded_hub("sqlite", tmp_path_factory.mktemp("hub-a")) as hub, hub.running() as live:
        yield build_source(live, tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def bundle(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("carried") / "repos.bundle"
    done = source.hub.cli("bundle", "export", source.repo_id, "-o", str(out))
    assert done.stdout.startswith("Exported 1 repo(s)"), done.stdout
    assert f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}" in done.stdout
    assert not out.with_name(out.name + ".tmp").exists()
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def receiver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Hub B: freshly seeded, no upstream, nothing shared with A."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"hub-b-{request.param}")) as hub, \
            hub.running() as live:
        yield live


@pytest.fixture(scope="module")
def refuser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Hub C, for bundles that must be refused."""
    with seeded_hub("sqlite", tmp_path_factory.mktemp("hub-c")) as hub, hub.running() as live:
        yield live


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def state(api: HfApi, repo_id: str) -> dict[str, object]:
    refs = api.list_repo_refs(repo_id)
    return {
        "branches": sorted((b.name, b.target_commit) for b in refs.branches),
        "tags": sorted((t.name, t.target_commit) for t in refs.tags),
        "history": {b.name: [c.commit_id for c in api.list_repo_commits(repo_id, revision=b.name)]
                    for b in [*refs.branches, *refs.tags]},
        "xet": sorted((e.path, e.xet_hash) for e in api.list_repo_tree(repo_id, recursive=True, expand=False)
                      if getattr(e, "xet_hash", None)),
    }


def snapshot(api: HfApi, repo_id: str, revision: str, cache: Path) -> Path:
    return Path(snapshot_download(repo_id, revision=revision, endpoint=api.endpoint, token=api.token,
                                  cache_dir=cache))


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_bundle_carries_only_the_exported_files_chunks(source: Source, bundle: Path) -> None:
    found = members(bundle)
    manifest = json.loads(found.pop("manifest.json"))
    assert manifest["format"] == "modelyard-bundle" and manifest["version"] == 1
    assert manifest["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in found.items()}
    [entry] = manifest["repos"]
    assert entry["id"] == source.repo_id and entry["private"] is False
    assert {f["sha256"] for f in entry["lfs"]} | {f["sha256"] for f in entry["xet"]} == {
        e.lfs.sha256 for rev in ("main", "dev") for e in source.api.list_repo_tree(
            source.repo_id, revision=rev, recursive=True) if getattr(e, "lfs", None)}
    in_xorbs: set[bytes] = set()
    for name, body in found.items():
        if name.startswith("xorbs/"):
            index = parse_xorb(body)
            assert hash_to_str(index.hash()) == name.removeprefix("xorbs/")
            in_xorbs |= {c.hash for c in index.chunks}
    used: set[bytes] = set()
    for name, body in found.items():
        if name.startswith("shards/"):
            [rec] = parse_shard(body).files
            for term in rec.terms:  # each term is a whole xorb of the bundle
                index = parse_xorb(found[f"xorbs/{hash_to_str(term.xorb)}"])
                assert (term.start, term.end) == (0, len(index.chunks))
                used |= {c.hash for c in index.chunks}
    assert in_xorbs == used  # no chunk rides along that no exported file uses
    assert not in_xorbs & source.foreign  # the private repo's chunks stayed home
    shared_chunks = [chunk_hash(source.shared[i : i + CHUNK]) for i in range(0, len(source.shared), CHUNK)]
    assert set(shared_chunks) <= in_xorbs
    rebuilt = b"".join(bytes(plain) for name, body in sorted(found.items()) if name.startswith("xorbs/")
                       for _raw, plain in split_chunks(body) if chunk_hash(plain) in shared_chunks)
    assert hashlib.sha256(rebuilt).digest() == hashlib.sha256(source.shared).digest()


def test_import_gives_the_same_repo(source: Source, bundle: Path, receiver: LiveServer, refuser: LiveServer,
                                    tmp_path: Path) -> None:
    done = receiver.cli("bundle", "import", str(bundle))
    assert done.stdout.startswith("Imported 1 repo(s)"), done.stdout
    b_api = HfApi(endpoint=receiver.url, token=TOKENS["alice"])
    before = state(source.api, source.repo_id)
    assert state(b_api, source.repo_id) == before
    assert len(before["xet"]) == 2  # type: ignore[arg-type]
    for revision in ("main", "dev", "v1"):
        same_tree(snapshot(source.api, source.repo_id, revision, tmp_path / "a"),
                  snapshot(b_api, source.repo_id, revision, tmp_path / "b"))
    assert b_api.model_info(source.repo_id).private is False
    with pytest.raises(RepositoryNotFoundError):  # only what was exported came
        b_api.model_info(source.private_id)

    # Imported repos are read-only: the bundle is their source.
    with pytest.raises(HfHubHTTPError) as refused:
        b_api.create_commit(source.repo_id, [CommitOperationAdd("x.txt", b"x")], commit_message="local")
    assert refused.value.response.status_code == 403

    # The same bundle again changes nothing.
    again = receiver.cli("bundle", "import", str(bundle))
    assert "0 new commit(s), 0 ref(s) changed, 0 LFS object(s), 0 xorb(s)" in again.stdout, again.stdout
    assert state(b_api, source.repo_id) == before

    # What B holds, told to A: the next bundle leaves it all out, and still imports.
    held = tmp_path / "have.json"
    receiver.cli("bundle", "have", "-o", str(held))
    lean = tmp_path / "lean.bundle"
    source.hub.cli("bundle", "export", source.repo_id, "-o", str(lean), "--have", str(held))
    names = set(members(lean))
    assert not {n for n in names if n.startswith(("xorbs/", "lfs/"))}
    assert {n for n in names if n.startswith("shards/")} and len(lean.read_bytes()) < len(bundle.read_bytes()) / 3
    receiver.cli("bundle", "import", str(lean))
    assert state(b_api, source.repo_id) == before
    elsewhere = refuser.cli("bundle", "import", str(lean), check=False)  # a hub that lacks what it left out
    assert elsewhere.returncode == 1 and "is neither in the bundle nor on this hub" in elsewhere.stderr
    receiver.settle()
    assert receiver.cli("fsck").stdout.strip() == "fsck: no problems found"


def rewritten(original: Path, out: Path, change: dict[str, bytes | None],
              extra: dict[str, bytes] | None = None) -> Path:
    """The bundle with members replaced (or left out: None), the original manifest kept."""
    with tarfile.open(original, "r:") as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            replaced = change.get(member.name, data) if member.name in change else data
            if replaced is None:
                continue
            member.size = len(replaced)
            dst.addfile(member, io.BytesIO(replaced))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out


def flipped(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def test_bad_bundles_are_refused_and_nothing_is_created(source: Source, bundle: Path, refuser: LiveServer,
                                                        tmp_path: Path) -> None:
    found = members(bundle)
    manifest = json.loads(found["manifest.json"])
    xorb = next(n for n in found if n.startswith("xorbs/"))
    lfs = next(n for n in found if n.startswith("lfs/"))
    pack = next(n for n in found if n.startswith("git/"))
    cases = {
        "xorb": rewritten(bundle, tmp_path / "xorb.bundle", {xorb: flipped(found[xorb])}),
        "lfs": rewritten(bundle, tmp_path / "lfs.bundle", {lfs: flipped(found[lfs])}),
        "pack": rewritten(bundle, tmp_path / "pack.bundle", {pack: flipped(found[pack], 40)}),
        "missing": rewritten(bundle, tmp_path / "missing.bundle", {lfs: None}),
        "extra": rewritten(bundle, tmp_path / "extra.bundle", {}, {"lfs/" + "0" * 64: b"x"}),
        "version": rewritten(bundle, tmp_path / "v2.bundle",
                             {"manifest.json": json.dumps({**manifest, "version": 2}).encode()}),
        "not a tar": tmp_path / "junk.bundle",
        "absent": tmp_path / "nowhere.bundle",
    }
    cases["not a tar"].write_bytes(b"not a bundle at all" * 100)
    truncated = tmp_path / "truncated.bundle"
    truncated.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    cases["truncated"] = truncated
    expected = {"xorb": f"{xorb} does not match its sha256", "lfs": f"{lfs} does not match its sha256",
                "pack": f"{pack} does not match its sha256", "missing": f"lists a member the file lacks: {lfs}",
                "extra": "does not list the member lfs/" + "0" * 64, "version": "format version 2",
                "not a tar": "is not a bundle", "absent": "does not exist", "truncated": "truncated"}
    for case, path in cases.items():
        done = refuser.cli("bundle", "import", str(path), check=False)
        assert done.returncode == 1, (case, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and expected[case] in done.stderr, (case, done.stderr)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=refuser.url, token=TOKENS["alice"]).model_info(source.repo_id)


def test_a_bundle_true_to_its_manifest_but_false_in_a_file_leaves_nothing(source: Source, bundle: Path,
                                                                          refuser: LiveServer, tmp_path: Path) -> None:
    """Members and manifest agree (re-hashed), but a shard claims a wrong sha256 for its file, and
    the repo goes to a namespace the hub lacks: refused once its files are checked, and the repo
    row and org made for them are gone again."""
    found = members(bundle)
    manifest = json.loads(found.pop("manifest.json"))
    org = f"elsewhere-{uuid.uuid4().hex[:6]}"
    [entry] = manifest["repos"]
    name = entry["id"].split("/")[1]
    found[f"git/model/{org}/{name}.pack"] = found.pop(f"git/model/{entry['id']}.pack")
    entry["id"] = f"{org}/{name}"
    shard = next(n for n in found if n.startswith("shards/"))
    [rec] = parse_shard(found[shard]).files
    assert rec.sha256 is not None
    found[shard] = build_upload_shard([FileRecord(rec.hash, rec.terms, rec.verification, flipped(rec.sha256))], [])
    manifest["files"] = {n: hashlib.sha256(data).hexdigest() for n, data in found.items()}
    false = tmp_path / "false.bundle"
    with tarfile.open(false, "w", format=tarfile.PAX_FORMAT) as tar:
        for n, data in [*found.items(), ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    done = refuser.cli("bundle", "import", str(false), check=False)
    assert done.returncode == 1 and "the shard claims" in done.stderr, done.stderr
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=refuser.url, token=TOKENS["alice"]).model_info(f"{org}/{name}")
    assert httpx.get(f"{refuser.url}/api/organizations/{org}/overview").status_code == 404
    assert httpx.get(f"{refuser.url}/api/organizations/acme/overview").status_code == 200


def test_a_repo_of_the_hubs_own_is_replaced_only_with_force(source: Source, refuser: LiveServer,
                                                           tmp_path: Path) -> None:
    # The private repo, whose Xet file shares a stored xorb with the other repo's, goes this time.
    carried = tmp_path / "private.bundle"
    source.hub.cli("bundle", "export", source.private_id, "-o", str(carried))
    [entry] = json.loads(members(carried)["manifest.json"])["repos"]
    assert entry["private"] is True
    api = HfApi(endpoint=refuser.url, token=TOKENS["alice"])
    api.create_repo(source.private_id)  # the receiving hub's own (public) repo of that name
    own = api.list_repo_refs(source.private_id).branches
    done = refuser.cli("bundle", "import", str(carried), check=False)
    assert done.returncode == 1 and "--force" in done.stderr, done.stderr
    assert api.list_repo_refs(source.private_id).branches == own
    refuser.cli("bundle", "import", str(carried), "--force")
    assert state(api, source.private_id) == state(source.api, source.private_id)
    same_tree(snapshot(source.api, source.private_id, "main", tmp_path / "a"),
              snapshot(api, source.private_id, "main", tmp_path / "c"))
    assert api.model_info(source.private_id).private is True  # what the source keeps private stays so
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=refuser.url, token=TOKENS["bob"]).model_info(source.private_id)
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_branch(source.private_id, branch="local")
    assert refused.value.response.status_code == 403


def test_export_errors(source: Source, tmp_path: Path) -> None:
    out = tmp_path / "x.bundle"
    for args, message in [((f"alice/nope-{uuid.uuid4().hex[:6]}",), "There is no model"),
                          ((source.repo_id, source.repo_id), "named twice"),
                          ((source.repo_id, "--repo-type", "dataset"), "There is no dataset")]:
        done = source.hub.cli("bundle", "export", *args, "-o", str(out), check=False)
        assert done.returncode == 1 and done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())
    bad_have = tmp_path / "have.json"
    bad_have.write_text('{"xorbs": ["nope"]}')
    done = source.hub.cli("bundle", "export", source.repo_id, "-o", str(out), "--have", str(bad_have), check=False)
    assert done.returncode == 1 and "64-hex-digit" in done.stderr, done.stderr
    assert not out.exists()


def test_a_permanently_deleted_file_stays_deleted(source: Source, refuser: LiveServer, tmp_path: Path) -> None:
    api = source.api
    repo_id = api.create_repo(f"alice/purged-{uuid.uuid4().hex[:8]}").repo_id
    kept, gone = os.urandom(5000), os.urandom(6000)
    api.upload_file(path_or_fileobj=kept, path_in_repo="kept.bin", repo_id=repo_id)
    api.upload_file(path_or_fileobj=gone, path_in_repo="gone.bin", repo_id=repo_id)
    doomed = [f for f in api.list_lfs_files(repo_id) if f.filename == "gone.bin"]
    api.permanently_delete_lfs_files(repo_id, doomed, rewrite_history=False)
    carried = tmp_path / "purged.bundle"
    source.hub.cli("bundle", "export", repo_id, "-o", str(carried))
    assert not any(n == f"lfs/{hashlib.sha256(gone).hexdigest()}" for n in members(carried))
    refuser.cli("bundle", "import", str(carried))
    for path, status in (("kept.bin", 200), ("gone.bin", 410)):
        there = httpx.get(f"{source.hub.url}/{repo_id}/resolve/main/{path}", headers=ALICE, follow_redirects=True)
        here = httpx.get(f"{refuser.url}/{repo_id}/resolve/main/{path}", headers=ALICE, follow_redirects=True)
        assert here.status_code == there.status_code == status, path
        if status == 200:
            assert here.content == there.content == kept
        else:  # the same answer, naming the deleted object
            assert here.json()["error"] == there.json()["error"]
    refuser.settle()
    assert refuser.cli("fsck").stdout.strip() == "fsck: no problems found"


def test_a_newer_bundle_brings_the_repo_up_to_date(source: Source, refuser: LiveServer, tmp_path: Path) -> None:
    api = source.api
    repo_id = api.create_repo(f"alice/update-{uuid.uuid4().hex[:8]}").repo_id
    api.upload_file(path_or_fileobj=os.urandom(4000), path_in_repo="w.bin", repo_id=repo_id)
    api.create_branch(repo_id, branch="topic")
    first = tmp_path / "first.bundle"
    source.hub.cli("bundle", "export", repo_id, "-o", str(first))
    refuser.cli("bundle", "import", str(first))
    here = HfApi(endpoint=refuser.url, token=TOKENS["alice"])
    assert state(here, repo_id) == state(api, repo_id)

    # The source moves on: a new commit (with a new large file), a new tag, a branch deleted.
    api.upload_file(path_or_fileobj=os.urandom(4000), path_in_repo="w2.bin", repo_id=repo_id)
    api.delete_branch(repo_id, branch="topic")
    api.create_tag(repo_id, tag="v2")
    second = tmp_path / "second.bundle"
    source.hub.cli("bundle", "export", repo_id, "-o", str(second))
    done = refuser.cli("bundle", "import", str(second))
    assert "1 new commit(s), 3 ref(s) changed, 1 LFS object(s)" in done.stdout, done.stdout
    assert state(here, repo_id) == state(api, repo_id)
    same_tree(snapshot(api, repo_id, "v2", tmp_path / "a"), snapshot(here, repo_id, "v2", tmp_path / "c"))
