"""Xet bad input: every malformed or unauthorised CAS request is refused and stores nothing.

Payloads are built by hand (tests/support/xet.py) because hf_xet never sends them. A valid
hand-built upload is committed and downloaded too, to show the refusals are not blanket ones.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
from huggingface_hub import HfApi

from modelyard.services.xet import xorb_key
from modelyard.xet.hashing import hash_to_str, hmac_hash, str_to_hash
from modelyard.xet.shard import Term, parse_shard
from modelyard.xet.xorb import MAX_XORB_BODY, Compression, serialize_chunk
from tests.support.server import TOKENS, LiveServer
from tests.support.xet import Cas, Payload, cas_token, mint, payload, xet_token


def commit_lfs_file(server: LiveServer, repo: str, path: str, p: Payload) -> httpx.Response:
    """The commit call huggingface_hub makes after a Xet upload: an ``lfsFile`` line with the sha256."""
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content="\n".join(json.dumps(x) for x in [
            {"key": "header", "value": {"summary": f"add {path}"}},
            {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": p.sha256, "size": len(p.data)}},
        ]),
        headers={"Authorization": f"Bearer {TOKENS['alice']}", "Content-Type": "application/x-ndjson"},
    )


def stored(server: LiveServer, xorb_hash: str) -> bool:
    return (server.data_dir / "blobs" / xorb_key(xorb_hash)).exists()


def claims(token: str) -> dict[str, object]:
    body = token.split(".", 1)[0]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def test_token_routes_check_access(server: LiveServer, api: HfApi, repo: str, repo_name: str) -> None:
    ok = xet_token(server, repo, "write", TOKENS["alice"])
    assert ok.status_code == 200 and ok.json()["casUrl"] == f"{server.url}/xet"
    assert ok.json()["exp"] > time.time() + 600
    # create_pr=True sends the literal revision "None".
    assert xet_token(server, repo, "write", TOKENS["alice"], "None", "?create_pr=1").status_code == 200
    assert xet_token(server, repo, "write", None).status_code == 401
    assert xet_token(server, repo, "write", TOKENS["alice_read"]).status_code == 403
    assert xet_token(server, repo, "write", TOKENS["bob"]).status_code == 403  # not bob's namespace
    assert xet_token(server, repo, "read", None).status_code == 200  # public repo
    private = api.create_repo(f"{repo_name}-p", private=True).repo_id
    hidden = xet_token(server, private, "read", TOKENS["bob"])
    assert hidden.status_code == 404 and hidden.headers["x-error-code"] == "RepoNotFound"
    assert xet_token(server, "alice/does-not-exist", "read", TOKENS["alice"]).status_code == 404


def test_valid_hand_built_upload_commits_and_downloads(server: LiveServer, api: HfApi, repo: str,
                                                       cas: Cas) -> None:
    p = payload(bytes(range(256)) * 1000 + b"end")
    first = cas.xorb(p.xorb_hash, p.xorb)
    assert first.status_code == 200 and first.json() == {"was_inserted": True}
    assert cas.xorb(p.xorb_hash, p.xorb).json() == {"was_inserted": False}
    assert cas.shard(p.shard()).json()["result"] == 1
    assert cas.shard(p.shard()).json()["result"] == 0
    commit = commit_lfs_file(server, repo, "h.bin", p)
    assert commit.status_code == 200, commit.text
    assert httpx.get(f"{server.url}/{repo}/resolve/main/h.bin").content == p.data
    # git-lfs clients (batch API) get it too, rebuilt from the xorb.
    batch = httpx.post(f"{server.url}/{repo}.git/info/lfs/objects/batch",
                       json={"operation": "download", "objects": [{"oid": p.sha256, "size": len(p.data)}]},
                       headers={"Authorization": f"Bearer {TOKENS['alice']}"}).json()
    href = batch["objects"][0]["actions"]["download"]["href"]
    assert httpx.get(href).content == p.data
    # V1 and V2 reconstructions of a range; the fetch URLs authorise themselves, within their range.
    v1 = cas.reconstruction(p.file_hash, "bytes=70000-140000").json()
    assert v1["offset_into_first_range"] == 70000 - 65536
    assert v1["terms"] == [{"hash": p.xorb_hash, "unpacked_length": 65536 * 2, "range": {"start": 1, "end": 3}}]
    [fetch] = v1["fetch_info"][p.xorb_hash]
    lo, hi = fetch["url_range"]["start"], fetch["url_range"]["end"]
    assert (lo, hi) == (p.index.chunks[1].start, p.index.chunks[2].end - 1)
    got = httpx.get(fetch["url"], headers={"Range": f"bytes={lo}-{hi}"})
    assert got.status_code == 206 and got.content == p.xorb[lo : hi + 1]
    assert httpx.get(fetch["url"], headers={"Range": f"bytes={lo}-{hi + 1}"}).status_code == 403
    assert httpx.get(fetch["url"] + "x").status_code == 403  # tampered signature
    v2 = cas.reconstruction(p.file_hash, "bytes=0-10", version=2).json()
    assert v2["xorbs"][p.xorb_hash][0]["ranges"][0]["chunks"] == {"start": 0, "end": 1}
    assert cas.reconstruction(p.file_hash, f"bytes={len(p.data)}-").status_code == 416
    assert cas.reconstruction(p.file_hash, "bytes=0-999999999").json()["terms"][0]["range"]["end"] == 4
    assert cas.reconstruction("zz" * 32).status_code == 400


def test_bad_xorbs_are_refused_and_not_stored(server: LiveServer, cas: Cas) -> None:
    p = payload(b"\x01\x02" * 100_000)
    other = payload(b"something else entirely" * 5000)
    cases = {
        "content does not hash to its name": (other.xorb_hash, p.xorb, 400),
        "truncated": (p.xorb_hash, p.xorb[:-7], 400),
        "trailing garbage": (p.xorb_hash, p.xorb + b"\x00\x01", 400),
        "empty": (p.xorb_hash, b"", 400),
        "bad hash string": ("not-a-hash", p.xorb, 400),
    }
    # An unknown compression scheme (7) in the first chunk header.
    unknown = bytearray(p.xorb)
    unknown[4] = 7
    cases["unknown compression"] = (p.xorb_hash, bytes(unknown), 400)
    # A chunk that decompresses to less than its header says.
    lying = bytearray(serialize_chunk(bytes(1000), Compression.LZ4))
    lying[5:8] = (1001).to_bytes(3, "little")
    cases["wrong uncompressed size"] = (p.xorb_hash, bytes(lying), 400)
    for what, (name, body, status) in cases.items():
        r = cas.xorb(name, body)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.json()["error"], what
    r = cas.xorb(p.xorb_hash, b"\x00" * (MAX_XORB_BODY + 1))
    assert r.status_code == 413
    assert cas.xorb(p.xorb_hash, p.xorb, prefix="elsewhere").status_code == 400
    assert not stored(server, p.xorb_hash) and not stored(server, other.xorb_hash)
    # Nothing was recorded either: a shard naming it is refused.
    assert cas.shard(p.shard()).status_code == 400


def test_bad_shards_are_refused(server: LiveServer, api: HfApi, repo: str, cas: Cas) -> None:
    p = payload(b"shard test " * 30_000)
    missing = payload(b"never uploaded " * 1000)
    assert cas.xorb(p.xorb_hash, p.xorb).status_code == 200
    whole = p.file.terms[0]
    n = len(p.index.chunks)
    bad = {
        "references a xorb the server does not have": missing.shard(),
        "term past the xorb's last chunk": p.shard(terms=(Term(whole.xorb, 0, n + 1, whole.size),)),
        "empty chunk range": p.shard(terms=(Term(whole.xorb, 2, 2, 0),)),
        "unpacked size disagrees with the chunks": p.shard(terms=(Term(whole.xorb, 0, n, whole.size - 1),)),
        "verification hash wrong": p.shard(verification=(bytes(32),)),
        "no verification entries": p.shard(verification=None),
        "file hash wrong": p.shard(hash=bytes(31) + b"\x01"),
        "sha256 lies": p.shard(sha256=bytes(31) + b"\x01"),
        "no sha256": p.shard(sha256=None),
        "truncated": p.shard()[:-20],
        "not a shard": b"\x00" * 200,
        "trailing bytes": p.shard() + b"\x00" * 48,
    }
    # The CAS section must describe the stored xorb: shift one chunk's offset.
    body = bytearray(p.shard())
    parsed = parse_shard(bytes(body))
    assert parsed.xorbs[0].chunks[1].offset == 65536
    pos = bytes(body).index(p.index.chunks[1].hash) + 32
    body[pos : pos + 4] = (65535).to_bytes(4, "little")
    bad["inconsistent chunk offsets in the xorb section"] = bytes(body)
    for what, shard in bad.items():
        r = cas.shard(shard)
        assert r.status_code == 400, (what, r.status_code, r.text)
    # None of them made the file known: committing it fails, and reading it is 404.
    refused = commit_lfs_file(server, repo, "x.bin", p)
    assert refused.status_code == 400 and "never uploaded" in refused.json()["error"]
    assert cas.reconstruction(p.file_hash).status_code == 404


def test_tokens_are_checked_on_every_cas_call(server: LiveServer, api: HfApi, repo: str, repo_name: str,
                                             cas: Cas) -> None:
    p = payload(b"scoped " * 20_000)
    cas.upload(p)
    read = Cas(server, cas_token(server, repo, "read", TOKENS["alice_read"]))
    assert read.reconstruction(p.file_hash).status_code == 200
    # A read token cannot write.
    q = payload(b"read tokens cannot write" * 1000)
    r = read.xorb(q.xorb_hash, q.xorb)
    assert r.status_code == 403 and not stored(server, q.xorb_hash)
    assert read.shard(p.shard()).status_code == 403
    # A token for another repository cannot read this one's files.
    other_repo = api.create_repo(f"{repo_name}-other").repo_id
    other = Cas(server, cas_token(server, other_repo, "write", TOKENS["alice"]))
    assert other.reconstruction(p.file_hash).status_code == 404
    # Expired (genuinely signed) and forged tokens: 401.
    token = cas.headers["Authorization"].split()[1]
    expired = mint(server, {**claims(token), "exp": int(time.time()) - 5})
    assert Cas(server, expired).reconstruction(p.file_hash).status_code == 401
    assert Cas(server, expired).xorb(q.xorb_hash, q.xorb).status_code == 401
    body, mac = token.split(".", 1)
    forged_claims = base64.urlsafe_b64encode(
        json.dumps({**claims(token), "exp": int(time.time()) + 10**6}).encode()
    ).decode().rstrip("=")
    for forged in (f"{forged_claims}.{mac}", f"{body}.{mac[:-2]}AA", "garbage", "a.b.c"):
        assert Cas(server, forged).reconstruction(p.file_hash).status_code == 401, forged
    assert httpx.get(f"{server.url}/xet/v1/reconstructions/{p.file_hash}").status_code == 401
    # A signed URL of another kind (an LFS upload URL's token) is not a Xet token.
    lfs_kind = mint(server, {**claims(token), "k": "put"})
    assert Cas(server, lfs_kind).reconstruction(p.file_hash).status_code == 401
    assert not stored(server, q.xorb_hash)


def test_fallback_routes_and_global_dedup(server: LiveServer, cas: Cas) -> None:
    p = payload(b"dedup me " * 40_000)
    cas.upload(p)
    headers = cas.headers
    # Upload grants and the streaming shard API: exactly 404, which makes hf_xet fall back.
    grant = httpx.post(f"{cas.base}/v1/xorb-grants/default/{p.xorb_hash}", headers=headers,
                       json={"length": len(p.xorb), "checksum": {"algo": "crc64nvme", "value": "1"}})
    assert grant.status_code == 404
    assert httpx.post(f"{cas.base}/v2/shards", headers=headers, content=p.shard()).status_code == 404
    assert httpx.post(f"{server.url}/v1/telemetry", headers=headers, json={"event": "x"}).status_code == 200
    # Global dedup: a file's first chunk is offered, as a shard whose chunk hashes are HMAC'd.
    first = p.index.chunks[0].hash
    for prefix in ("default", "default-merkledb"):
        r = httpx.get(f"{cas.base}/v1/chunks/{prefix}/{hash_to_str(first)}", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        shard = parse_shard(r.content)
        key = shard.footer["hmac_key"]
        assert isinstance(key, bytes) and key != bytes(32)
        assert int(shard.footer["expiry"]) > time.time() + 3600  # type: ignore[call-overload]
        [xorb] = shard.xorbs
        assert hash_to_str(xorb.hash) == p.xorb_hash and xorb.bytes_on_disk == len(p.xorb)
        assert [c.hash for c in xorb.chunks] == [hmac_hash(c.hash, key) for c in p.index.chunks]
        assert first not in r.content  # the clear chunk hashes never leave the server
    unknown = hash_to_str(str_to_hash("ab" * 32))
    assert httpx.get(f"{cas.base}/v1/chunks/default/{unknown}", headers=headers).status_code == 404
    assert httpx.get(f"{cas.base}/v1/chunks/default/{hash_to_str(first)}").status_code == 401


def test_reconstruction_scoped_to_the_tokens_repo(server: LiveServer, api: HfApi, repo_name: str,
                                                  tmp_path: Path) -> None:
    """A private repo's file is not readable with a token for a public repo that never got it."""
    private = api.create_repo(f"{repo_name}-secret", private=True).repo_id
    public = api.create_repo(f"{repo_name}-public").repo_id
    p = payload(b"secret weights " * 10_000)
    Cas(server, cas_token(server, private, "write", TOKENS["alice"])).upload(p)
    outsider = Cas(server, cas_token(server, public, "read", TOKENS["carol"]))
    assert outsider.reconstruction(p.file_hash).status_code == 404
    assert xet_token(server, private, "read", TOKENS["carol"]).status_code == 404
