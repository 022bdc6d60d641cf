"""Hardening findings 3, 8 and 17: signed LFS URLs and Xet grants are re-checked on every use.

3. Grants were bound to the numeric repo id, which SQLite hands out again after a delete: a
   grant for a deleted repo then acted on whichever repo got its id next (another tenant's).
8. Grants outlived the token that obtained them, the repo turning private, and the repo itself.
17. Global Xet dedup answered for chunks held only in private repos the caller cannot read.

Each test first shows the grant working, then changes one thing and checks the refusal (exact
status and ``X-Error-Code``), that nothing was stored by a refused upload, and that a caller who
keeps access is unaffected. Payloads are built here from ``modelyard.xet`` only (not with
``tests/support/xet.py``), so that this module also runs against the code before the fix.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from modelyard.xet.hashing import file_hash, hash_to_str, verification_hash
from modelyard.xet.shard import FileRecord, Term, XorbChunkEntry, XorbRecord, build_upload_shard, parse_shard
from modelyard.xet.xorb import Compression, serialize_xorb
from tests.support.server import TOKENS, LiveServer

CHUNK = 64 * 1024


# -- hand-built Xet payloads and a minimal CAS client --------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One file in one xorb: the bodies to upload and the names to check."""

    data: bytes = field(repr=False)
    xorb: bytes = field(repr=False)
    xorb_hash: str
    first_chunk: str
    file: FileRecord = field(repr=False)
    xorb_record: XorbRecord = field(repr=False)

    @property
    def file_hash(self) -> str:
        return hash_to_str(self.file.hash)

    def shard(self) -> bytes:
        return build_upload_shard([self.file], [self.xorb_record])


def payload(label: str, size: int = 3 * CHUNK + 1000) -> Payload:
    """A file of ``size`` pseudo-random bytes, distinct per ``label`` (xorbs are global)."""
    data = random.Random(label).randbytes(size)
    body, index = serialize_xorb([data[i : i + CHUNK] for i in range(0, len(data), CHUNK)], Compression.LZ4)
    term = Term(index.hash(), 0, len(index.chunks), len(data))
    record = FileRecord(file_hash([(c.hash, c.size) for c in index.chunks]), (term,),
                        (verification_hash([c.hash for c in index.chunks]),), hashlib.sha256(data).digest())
    entries, offset = [], 0
    for c in index.chunks:
        entries.append(XorbChunkEntry(c.hash, offset, c.size))
        offset += c.size
    return Payload(data, body, hash_to_str(index.hash()), hash_to_str(index.chunks[0].hash), record,
                   XorbRecord(index.hash(), tuple(entries)))


class Cas:
    """The CAS of a live server, as the holder of one Xet token sees it."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.base = f"{server.url}/xet"
        self.headers = {"Authorization": f"Bearer {token}"}

    def xorb(self, p: Payload) -> httpx.Response:
        return httpx.post(f"{self.base}/v1/xorbs/default/{p.xorb_hash}", content=p.xorb, headers=self.headers,
                          timeout=60)

    def shard(self, p: Payload) -> httpx.Response:
        return httpx.post(f"{self.base}/v1/shards", content=p.shard(), headers=self.headers, timeout=60)

    def reconstruction(self, file: str) -> httpx.Response:
        return httpx.get(f"{self.base}/v1/reconstructions/{file}", headers=self.headers, timeout=60)

    def dedup(self, chunk: str) -> httpx.Response:
        return httpx.get(f"{self.base}/v1/chunks/default/{chunk}", headers=self.headers, timeout=60)

    def upload(self, p: Payload) -> None:
        r = self.xorb(p)
        assert r.status_code == 200, r.text
        r = self.shard(p)
        assert r.status_code == 200, r.text

    def fetch_url(self, p: Payload) -> str:
        """The signed URL of the (whole) xorb range that a reconstruction of ``p`` hands out."""
        r = self.reconstruction(p.file_hash)
        assert r.status_code == 200, r.text
        [entry] = r.json()["fetch_info"][p.xorb_hash]
        return str(entry["url"])


def cas(server: LiveServer, repo_id: str, mode: str, hf_token: str | None) -> Cas:
    """A CAS client holding a fresh Xet ``mode`` token for ``repo_id``, obtained with ``hf_token``."""
    headers = {"Authorization": f"Bearer {hf_token}"} if hf_token else {}
    r = httpx.get(f"{server.url}/api/models/{repo_id}/xet-{mode}-token/main", headers=headers)
    assert r.status_code == 200, r.text
    return Cas(server, str(r.json()["accessToken"]))


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=60)


def xorb_stored(server: LiveServer, xorb_hash: str) -> bool:
    return (server.data_dir / "blobs" / "xet" / "xorbs" / xorb_hash[:2] / xorb_hash[2:4] / xorb_hash).exists()


# -- repos, accounts, LFS ------------------------------------------------------------------------


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def create_repo(server: LiveServer, token: str, repo_id: str, private: bool) -> int:
    """Create ``repo_id``; its numeric id (the response's ``id``, 24 hex digits)."""
    r = httpx.post(f"{server.url}/api/repos/create", headers=auth(token),
                   json={"name": repo_id, "private": private, "type": "model"})
    assert r.status_code == 200, r.text
    return int(r.json()["id"], 16)


def delete_repo(server: LiveServer, token: str, repo_id: str) -> None:
    org, name = repo_id.split("/")
    r = httpx.request("DELETE", f"{server.url}/api/repos/delete", headers=auth(token),
                      json={"name": name, "organization": org, "type": "model"})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{server.url}/api/models/{repo_id}", headers=auth(token)).status_code == 404


def set_private(server: LiveServer, token: str, repo_id: str, private: bool) -> None:
    r = httpx.put(f"{server.url}/api/models/{repo_id}/settings", headers=auth(token), json={"private": private})
    assert r.status_code == 200, r.text


def new_user(server: LiveServer, name: str, *tokens: str) -> dict[str, str]:
    """A user of its own, with write tokens named ``tokens`` (what these tests may revoke)."""
    server.cli("users", "create", name)
    return {t: server.cli("tokens", "create", name, "--role", "write", "--name", t).stdout.strip() for t in tokens}


def revoke(server: LiveServer, user: str, token_name: str) -> None:
    out = server.cli("tokens", "revoke", user, "--name", token_name).stdout
    assert "Revoked 1 token" in out, out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_batch(server: LiveServer, repo_id: str, operation: str, objects: list[bytes],
              token: str | None) -> list[dict[str, Any]]:
    r = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", headers=auth(token), json={
        "operation": operation, "transfers": ["basic"], "hash_algo": "sha256",
        "objects": [{"oid": sha(o), "size": len(o)} for o in objects],
    })
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["objects"]
    return found


def lfs_upload_url(server: LiveServer, repo_id: str, data: bytes, token: str) -> str:
    [obj] = lfs_batch(server, repo_id, "upload", [data], token)
    return str(obj["actions"]["upload"]["href"])


def lfs_download_url(server: LiveServer, repo_id: str, data: bytes, token: str | None) -> str:
    [obj] = lfs_batch(server, repo_id, "download", [data], token)
    assert "actions" in obj, obj
    return str(obj["actions"]["download"]["href"])


def lfs_put(server: LiveServer, repo_id: str, data: bytes, token: str) -> None:
    r = httpx.put(lfs_upload_url(server, repo_id, data, token), content=data, timeout=60)
    assert r.status_code == 200, r.text


def lfs_held(server: LiveServer, repo_id: str, data: bytes, token: str | None) -> bool:
    """Whether the repo holds the object, as the batch API answers a download."""
    [obj] = lfs_batch(server, repo_id, "download", [data], token)
    return "actions" in obj


def lfs_stored(server: LiveServer, data: bytes) -> bool:
    h = sha(data)
    return (server.data_dir / "blobs" / "lfs" / h[:2] / h[2:4] / h).exists()


def refused(r: httpx.Response, status: int, code: str | None = None) -> bool:
    """``r`` is exactly this refusal (and carries no file bytes)."""
    ok = r.status_code == status and (code is None or r.headers.get("x-error-code") == code)
    return ok and r.headers.get("content-type", "").startswith("application/json")


def tree(server: LiveServer, repo_id: str, token: str | None) -> list[Any]:
    r = httpx.get(f"{server.url}/api/models/{repo_id}/tree/main", headers=auth(token))
    assert r.status_code == 200, r.text
    entries: list[Any] = r.json()
    return entries


@pytest.fixture(scope="module")
def server(quiet: LiveServer) -> LiveServer:
    return quiet


# -- finding 3: a repo id handed out again ------------------------------------------------------


def test_xet_tokens_of_a_deleted_repo_do_not_act_on_the_repo_that_reuses_its_id(server: LiveServer) -> None:
    """bob's Xet read and write tokens for his deleted repo neither read nor write the private
    repo that alice creates next, although SQLite gives it the same numeric id."""
    bob = TOKENS["bob"]
    old_id = create_repo(server, bob, "bob/tmp2", private=False)
    bob_read = cas(server, "bob/tmp2", "read", bob)
    bob_write = cas(server, "bob/tmp2", "write", bob)
    own = payload("bob's own file")
    bob_write.upload(own)
    assert bob_read.reconstruction(own.file_hash).status_code == 200  # the tokens work
    delete_repo(server, bob, "bob/tmp2")

    alice = TOKENS["alice"]
    assert create_repo(server, alice, "acme/reuse-victim", private=True) == old_id  # the id is reused
    fresh_tree = tree(server, "acme/reuse-victim", alice)
    secret = payload("alice's private weights")
    cas(server, "acme/reuse-victim", "write", alice).upload(secret)
    alice_read = cas(server, "acme/reuse-victim", "read", alice)
    assert alice_read.reconstruction(secret.file_hash).status_code == 200
    # The new repo did not inherit the deleted one's file either.
    assert refused(alice_read.reconstruction(own.file_hash), 404)

    # bob's old read token: alice's private file stays unreadable, and so does his own old file.
    assert refused(bob_read.reconstruction(secret.file_hash), 404, "RepoNotFound")
    assert refused(bob_read.reconstruction(own.file_hash), 404, "RepoNotFound")
    assert refused(bob_read.dedup(secret.first_chunk), 404, "RepoNotFound")
    # bob's old write token: neither a xorb nor a shard lands in alice's repo.
    intruder = payload("bob's intrusion")
    assert refused(bob_write.xorb(intruder), 404, "RepoNotFound")
    assert not xorb_stored(server, intruder.xorb_hash)
    assert refused(bob_write.shard(own), 404, "RepoNotFound")  # a shard of stored xorbs, too
    assert refused(alice_read.reconstruction(own.file_hash), 404)
    assert refused(alice_read.reconstruction(intruder.file_hash), 404)
    assert tree(server, "acme/reuse-victim", alice) == fresh_tree


def test_lfs_urls_of_a_deleted_repo_do_not_act_on_the_repo_that_reuses_its_id(server: LiveServer) -> None:
    """An LFS download URL and an unused upload URL of bob's deleted repo neither serve his
    object nor store one into the private repo that alice creates next with the same id."""
    bob, alice = TOKENS["bob"], TOKENS["alice"]
    old_id = create_repo(server, bob, "bob/tmp3", private=False)
    held = b"bob's LFS object " * 5000
    lfs_put(server, "bob/tmp3", held, bob)
    download = lfs_download_url(server, "bob/tmp3", held, bob)
    planted = b"planted by bob " * 5000
    upload = lfs_upload_url(server, "bob/tmp3", planted, bob)
    assert fetch(download).content == held  # works before the delete
    delete_repo(server, bob, "bob/tmp3")
    assert create_repo(server, alice, "acme/reuse-victim-lfs", private=True) == old_id
    fresh_tree = tree(server, "acme/reuse-victim-lfs", alice)

    assert refused(fetch(download), 404, "RepoNotFound")
    r = httpx.put(upload, content=planted, timeout=60)
    assert refused(r, 404, "RepoNotFound")
    assert not lfs_stored(server, planted)
    assert not lfs_held(server, "acme/reuse-victim-lfs", planted, alice)
    assert not lfs_held(server, "acme/reuse-victim-lfs", held, alice)
    assert tree(server, "acme/reuse-victim-lfs", alice) == fresh_tree


# -- finding 8: grants die with the repo's visibility, the repo, and their token ------------------


def test_lfs_download_urls_die_when_the_repo_turns_private_and_when_it_is_deleted(server: LiveServer) -> None:
    """An anonymous download URL of a public repo stops working when the repo turns private (a
    member's URL keeps working), and every URL stops when the repo is deleted."""
    alice, carol = TOKENS["alice"], TOKENS["carol"]  # carol: read member of acme
    create_repo(server, alice, "acme/lfs-flip", private=False)
    data = b"public for now " * 7000
    lfs_put(server, "acme/lfs-flip", data, alice)
    anonymous = lfs_download_url(server, "acme/lfs-flip", data, None)
    member = lfs_download_url(server, "acme/lfs-flip", data, carol)
    assert fetch(anonymous).content == data and fetch(member).content == data

    set_private(server, alice, "acme/lfs-flip", True)
    assert refused(fetch(anonymous), 404, "RepoNotFound")
    assert fetch(member).content == data  # carol still may read it
    set_private(server, alice, "acme/lfs-flip", False)
    assert fetch(anonymous).content == data  # the grant follows the repo as it is now

    delete_repo(server, alice, "acme/lfs-flip")
    assert lfs_stored(server, data)  # the bytes are still on disk (until gc): only the grant stops them
    assert refused(fetch(anonymous), 404, "RepoNotFound")
    assert refused(fetch(member), 404, "RepoNotFound")


def test_lfs_upload_url_dies_with_its_token(server: LiveServer) -> None:
    """A basic upload URL stops working when the token that obtained it is revoked; nothing is
    stored. The user's other token is unaffected."""
    tokens = new_user(server, "dave", "lfs-revoked", "lfs-kept")
    create_repo(server, tokens["lfs-kept"], "dave/lfs-up", private=False)
    fresh_tree = tree(server, "dave/lfs-up", None)
    first, second = b"first object " * 6000, b"second object " * 6000
    [a, b] = lfs_batch(server, "dave/lfs-up", "upload", [first, second], tokens["lfs-revoked"])
    first_url, second_url = a["actions"]["upload"]["href"], b["actions"]["upload"]["href"]
    assert httpx.put(first_url, content=first, timeout=60).status_code == 200  # works before
    assert lfs_held(server, "dave/lfs-up", first, None)
    download = lfs_download_url(server, "dave/lfs-up", first, tokens["lfs-revoked"])
    assert fetch(download).content == first

    revoke(server, "dave", "lfs-revoked")
    r = httpx.put(second_url, content=second, timeout=60)
    assert refused(r, 401, "Unauthorized")
    assert not lfs_stored(server, second)
    assert not lfs_held(server, "dave/lfs-up", second, None)
    assert tree(server, "dave/lfs-up", None) == fresh_tree
    # The revoked token's download URL dies too; the kept token works as before.
    assert refused(fetch(download), 401, "Unauthorized")
    lfs_put(server, "dave/lfs-up", second, tokens["lfs-kept"])
    assert fetch(lfs_download_url(server, "dave/lfs-up", second, tokens["lfs-kept"])).content == second


def test_xet_read_grants_die_when_the_repo_turns_private(server: LiveServer) -> None:
    """An anonymous Xet read token and the xorb fetch URLs it got stop working when the repo
    turns private; a member's keep working; after a delete nobody's do."""
    alice, carol = TOKENS["alice"], TOKENS["carol"]
    create_repo(server, alice, "acme/xet-flip", private=False)
    p = payload("public, then private")
    cas(server, "acme/xet-flip", "write", alice).upload(p)
    anonymous = cas(server, "acme/xet-flip", "read", None)
    member = cas(server, "acme/xet-flip", "read", carol)
    anonymous_url, member_url = anonymous.fetch_url(p), member.fetch_url(p)
    assert fetch(anonymous_url).content == p.xorb and fetch(member_url).content == p.xorb

    set_private(server, alice, "acme/xet-flip", True)
    assert refused(anonymous.reconstruction(p.file_hash), 404, "RepoNotFound")
    assert refused(fetch(anonymous_url), 404, "RepoNotFound")
    assert member.reconstruction(p.file_hash).status_code == 200
    assert fetch(member_url).content == p.xorb

    delete_repo(server, alice, "acme/xet-flip")
    assert xorb_stored(server, p.xorb_hash)  # still on disk until gc: only the grant stops it
    assert refused(member.reconstruction(p.file_hash), 404, "RepoNotFound")
    assert refused(fetch(member_url), 404, "RepoNotFound")
    assert fetch(member_url + "x").status_code == 403  # a bad signature is still a 403


def test_xet_grants_die_with_their_token(server: LiveServer) -> None:
    """Xet read and write tokens and fetch URLs obtained with a Hub token stop working when it is
    revoked: no read, no xorb, no shard. The user's other token is unaffected."""
    tokens = new_user(server, "erin", "xet-revoked", "xet-kept")
    create_repo(server, tokens["xet-kept"], "erin/xet-rev", private=True)
    read = cas(server, "erin/xet-rev", "read", tokens["xet-revoked"])
    write = cas(server, "erin/xet-rev", "write", tokens["xet-revoked"])
    p = payload("erin's first file")
    write.upload(p)  # works before
    url = read.fetch_url(p)
    assert fetch(url).content == p.xorb
    late = payload("erin's second file")
    assert write.xorb(late).status_code == 200  # its shard comes after the revocation
    fresh = payload("after the revocation")

    revoke(server, "erin", "xet-revoked")
    assert refused(read.reconstruction(p.file_hash), 401, "Unauthorized")
    assert refused(fetch(url), 401, "Unauthorized")
    assert refused(read.dedup(p.first_chunk), 401, "Unauthorized")
    assert refused(write.xorb(fresh), 401, "Unauthorized")
    assert not xorb_stored(server, fresh.xorb_hash)
    assert refused(write.shard(late), 401, "Unauthorized")
    # Nothing changed: the shard's file is not in the repo; the kept token sees exactly that.
    kept_read = cas(server, "erin/xet-rev", "read", tokens["xet-kept"])
    assert kept_read.reconstruction(p.file_hash).status_code == 200
    assert refused(kept_read.reconstruction(late.file_hash), 404, "NotFound")
    assert refused(kept_read.reconstruction(fresh.file_hash), 404, "NotFound")
    assert fetch(kept_read.fetch_url(p)).content == p.xorb
    kept_write = cas(server, "erin/xet-rev", "write", tokens["xet-kept"])
    kept_write.upload(late)
    assert kept_read.reconstruction(late.file_hash).status_code == 200


# -- finding 17: global dedup answers only for readable repos -------------------------------------


def test_global_dedup_answers_only_for_chunks_in_readable_repos(server: LiveServer) -> None:
    """A file's first chunk, held only by a private repo of org vault, is not confirmed to bob
    (no member); alice (member) gets the answer; once a public repo holds it, bob does too."""
    alice, bob = TOKENS["alice"], TOKENS["bob"]
    create_repo(server, alice, "vault/dedup-secret", private=True)
    p = payload("vault-only content")
    cas(server, "vault/dedup-secret", "write", alice).upload(p)
    create_repo(server, bob, "bob/dedup-probe", private=False)
    prober = cas(server, "bob/dedup-probe", "read", bob)

    assert refused(prober.dedup(p.first_chunk), 404, "NotFound")
    member = cas(server, "vault/dedup-secret", "read", alice).dedup(p.first_chunk)
    assert member.status_code == 200
    assert [hash_to_str(x.hash) for x in parse_shard(member.content).xorbs] == [p.xorb_hash]
    # alice also gets it through a token for another repo: what counts is who she is.
    create_repo(server, alice, "acme/dedup-public", private=False)
    assert cas(server, "acme/dedup-public", "read", alice).dedup(p.first_chunk).status_code == 200
    assert refused(prober.dedup(p.first_chunk), 404, "NotFound")

    cas(server, "acme/dedup-public", "write", alice).upload(p)  # the same content, now public too
    answer = prober.dedup(p.first_chunk)
    assert answer.status_code == 200
    assert [hash_to_str(x.hash) for x in parse_shard(answer.content).xorbs] == [p.xorb_hash]
