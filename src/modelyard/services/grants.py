"""Self-authorising grants: the signed claims inside LFS URLs, Xet tokens and xorb range URLs.

A grant names what it allows (its kind, the object, a byte range), until when, and on whose
behalf: the repository by its id *and* its never-reused ``uid``, and the access token that
obtained it (0 when it was obtained anonymously). It is re-checked on every use against the
database, so it dies with its repository, with its token's revocation, and with the caller's
access (a repo turned private, a membership removed) — not only at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import groups as groups_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog.repos import Repo
from modelyard.errors import AuthenticationError, RepoNotFoundError
from modelyard.services.auth import (
    REPO_NOT_FOUND,
    Principal,
    check_contribute,
    check_not_expired,
    check_read,
    check_write,
    principal_of,
)
from modelyard.services.gating import check_download
from modelyard.services.hub import Hub


def sign(hub: Hub, payload: dict[str, Any]) -> str:
    """``base64url(json).base64url(hmac-sha256)``: the claims, readable, and their signature."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(hub.signing_key(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_signature(hub: Hub, token: str, kind: str) -> dict[str, Any]:
    """The claims of a signed token of ``kind``: signature (constant time) and expiry checked."""
    try:
        body, mac_b64 = token.split(".", 1)
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
        expected = hmac.new(hub.signing_key(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        expires = float(payload.get("exp", 0))
    except (ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise AuthenticationError("Invalid or forged upload URL") from exc
    if payload.get("k") != kind:
        raise AuthenticationError("This URL is not for this kind of upload")
    if expires < time.time():
        raise AuthenticationError("This upload URL has expired; ask the batch API for a new one")
    return payload


def claims(principal: Principal | None, repo: Repo) -> dict[str, Any]:
    """What every grant on ``repo`` carries: the repo (id and uid) and the token behind it."""
    return {"r": repo.id, "g": repo.uid, "t": principal.token_id if principal is not None else 0}


@dataclass(frozen=True)
class Grant:
    """A checked grant: the repository, as it is now, and the caller on whose behalf it acts."""

    repo: Repo
    principal: Principal | None
    contributor: bool = False  # issued to a contributor, not a writer (a pull request's files)

    def claims(self) -> dict[str, Any]:
        found = claims(self.principal, self.repo)
        if self.contributor:
            found["c"] = 1
        return found


def check_grant(hub: Hub, payload: dict[str, Any], write: bool = False) -> Grant:
    """Re-check a verified token's claims now: the repo still exists (the same one), the token
    that obtained the grant is not revoked, and its owner may still read (or write) the repo."""
    try:
        repo_pk, uid, token_id = int(payload["r"]), str(payload["g"]), int(payload.get("t") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise AuthenticationError("This URL was issued by an older version: ask for a new one") from exc
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, repo_pk)
        if repo is None or not hmac.compare_digest(repo.uid.encode(), uid.encode()):
            raise RepoNotFoundError(REPO_NOT_FOUND)
        principal = None
        if token_id:
            found = accounts_q.token_with_account_by_id(conn, token_id)
            if found is None or found[0].revoked_at is not None:
                raise AuthenticationError("The token this URL was issued to has been revoked")
            check_not_expired(found[0])
            orgs = accounts_q.org_roles(conn, found[1].id)
            groups = groups_q.roles_of(conn, found[1].id)
            principal = principal_of(found[0], found[1], lambda: orgs, lambda: groups)
        check_read(principal, repo)
        if not write:  # a download URL or read token dies with the caller's access to a gated repo
            check_download(conn, principal, repo)
    if write and payload.get("c"):
        # Issued to a contributor (a pull request's files): they still need read access and a
        # write token; the commit decides which ref they may change.
        check_contribute(principal, repo)
    elif write:
        check_write(principal, repo)
    return Grant(repo, principal, bool(payload.get("c")))
