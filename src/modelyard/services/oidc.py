"""Signing in to the web hub through an OpenID Connect provider (the company's identity provider).

The authorization code flow with PKCE (Authlib builds the request and the code challenge;
joserfc checks the ID token): ``start`` sends the browser to the provider with a fresh
``state``, ``nonce`` and code verifier, kept in a short-lived cookie signed with the hub's key;
``finish`` takes the provider's answer, checks ``state``, exchanges the code at the token
endpoint (client secret, code verifier), and accepts the ID token only if its signature verifies
against the provider's published keys and its issuer, audience (and ``azp``), expiry and
``nonce`` are the ones expected. The person is then the hub user linked to that issuer and
subject (made at the first sign-in from the username claim, when ``MODELYARD_OIDC_CREATE_USERS``),
their organization roles follow their groups (``MODELYARD_OIDC_GROUP_ROLES``), and a browser
session opens. Local accounts and their passwords keep working beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import identities as identities_q
from modelyard.catalog import people as people_q
from modelyard.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from modelyard.ids import validate_account_name
from modelyard.services.accounts import create_user
from modelyard.services.audit import record
from modelyard.services.hub import Hub, utcnow
from modelyard.services.sessions import WebSession, open_session

#: Seconds a browser has to come back from the provider.
FLOW_LIFETIME = 600
#: Seconds the provider's configuration and keys are kept.
DISCOVERY_TTL = 600
HTTP_TIMEOUT = 10.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CLOCK_SKEW = 60


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_cache: dict[str, tuple[float, Any]] = {}


def enabled(hub: Hub) -> bool:
    s = hub.settings
    return bool(s.oidc_issuer and s.oidc_client_id and s.oidc_client_secret)


def _fetch_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AuthenticationError(f"The identity provider could not be reached ({url}): {exc}") from exc
    if not isinstance(data, dict):
        raise AuthenticationError(f"The identity provider sent something else than JSON at {url}")
    return data


def provider(hub: Hub) -> Provider:
    """The provider's configuration (``/.well-known/openid-configuration``), kept for a while.
    Its issuer must be exactly the configured one (a different one is another provider)."""
    issuer = (hub.settings.oidc_issuer or "").rstrip("/")
    found = _cache.get("provider:" + issuer)
    if found is not None and found[0] > time.monotonic():
        return found[1]  # type: ignore[no-any-return]
    conf = _fetch_json(f"{issuer}/.well-known/openid-configuration")
    if str(conf.get("issuer", "")).rstrip("/") != issuer:
        raise AuthenticationError(f"The identity provider at {issuer} calls itself {conf.get('issuer')!r}")
    try:
        made = Provider(str(conf["issuer"]), str(conf["authorization_endpoint"]), str(conf["token_endpoint"]),
                        str(conf["jwks_uri"]))
    except KeyError as exc:
        raise AuthenticationError(f"The identity provider's configuration lacks {exc}") from exc
    _cache["provider:" + issuer] = (time.monotonic() + DISCOVERY_TTL, made)
    return made


def _keys(found: Provider, fresh: bool = False) -> KeySet:
    cached = _cache.get("jwks:" + found.jwks_uri)
    if cached is not None and cached[0] > time.monotonic() and not fresh:
        return cached[1]  # type: ignore[no-any-return]
    try:
        keys = KeySet.import_key_set(_fetch_json(found.jwks_uri))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise AuthenticationError(f"The identity provider's keys could not be read: {exc}") from exc
    _cache["jwks:" + found.jwks_uri] = (time.monotonic() + DISCOVERY_TTL, keys)
    return keys


# -- the flow ---------------------------------------------------------------------------------


def _sign(hub: Hub, data: dict[str, Any]) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(hub.signing_key(), b"oidc-flow." + raw.encode(), hashlib.sha256).hexdigest()
    return f"{raw}.{mac}"


def _unsign(hub: Hub, value: str | None) -> dict[str, Any]:
    if not value or "." not in value or len(value) > 4096:
        raise AuthenticationError("The sign-in took too long or did not start here: try again")
    raw, mac = value.rsplit(".", 1)
    expected = hmac.new(hub.signing_key(), b"oidc-flow." + raw.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        raise AuthenticationError("The sign-in did not start here: try again")
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    if data.get("exp", 0) < time.time():
        raise AuthenticationError("The sign-in took too long: try again")
    return data


def start(hub: Hub, redirect_uri: str, next_path: str) -> tuple[str, str]:
    """Where to send the browser, and the flow cookie to set."""
    if not enabled(hub):
        raise NotFoundError("Single sign-on is not set up on this hub")
    found = provider(hub)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    query = urlencode({
        "response_type": "code", "client_id": hub.settings.oidc_client_id, "redirect_uri": redirect_uri,
        "scope": hub.settings.oidc_scopes, "state": state, "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
    })
    cookie = _sign(hub, {"state": state, "nonce": nonce, "verifier": verifier, "next": next_path,
                         "exp": int(time.time()) + FLOW_LIFETIME})
    separator = "&" if "?" in found.authorization_endpoint else "?"
    return f"{found.authorization_endpoint}{separator}{query}", cookie


def finish(hub: Hub, cookie: str | None, params: dict[str, str], redirect_uri: str) -> tuple[WebSession, str]:
    """The provider sent the browser back: a session for the person, and where to go next."""
    if not enabled(hub):
        raise NotFoundError("Single sign-on is not set up on this hub")
    flow = _unsign(hub, cookie)
    if "error" in params:
        reason = params.get("error_description") or params["error"]
        raise AuthenticationError(f"The identity provider refused: {reason}")
    if not hmac.compare_digest(str(params.get("state", "")), str(flow["state"])):
        raise AuthenticationError("The sign-in answer does not belong to this browser's sign-in (state)")
    code = params.get("code")
    if not code:
        raise AuthenticationError("The identity provider sent no authorization code")
    found = provider(hub)
    settings = hub.settings
    assert settings.oidc_client_secret is not None and settings.oidc_client_id is not None
    try:
        response = httpx.post(found.token_endpoint, timeout=HTTP_TIMEOUT, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": flow["verifier"],
        }, auth=(settings.oidc_client_id, settings.oidc_client_secret.get_secret_value()))
        tokens = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AuthenticationError(f"The identity provider's token endpoint failed: {exc}") from exc
    if response.status_code != 200 or not isinstance(tokens, dict) or not tokens.get("id_token"):
        raise AuthenticationError(f"The identity provider refused the code: {str(tokens)[:200]}")
    claims = verify_id_token(hub, found, str(tokens["id_token"]), str(flow["nonce"]))
    return sign_in(hub, found.issuer, claims), str(flow.get("next") or "/")


def verify_id_token(hub: Hub, found: Provider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims, once its signature (the provider's published keys), issuer,
    audience, authorized party, expiry and nonce are the expected ones."""
    client_id = hub.settings.oidc_client_id
    try:
        try:
            token = jwt.decode(id_token, _keys(found), algorithms=ALGORITHMS)
        except JoseError:
            token = jwt.decode(id_token, _keys(found, fresh=True), algorithms=ALGORITHMS)  # keys rotated?
    except (JoseError, ValueError) as exc:
        raise AuthenticationError(f"The ID token's signature does not verify: {exc}") from exc
    claims: dict[str, Any] = dict(token.claims)
    now = time.time()
    if claims.get("iss") != found.issuer:
        raise AuthenticationError(f"The ID token was issued by {claims.get('iss')!r}, not {found.issuer!r}")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise AuthenticationError("The ID token was issued to another client (audience)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise AuthenticationError("The ID token names another authorized party (azp)")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] + CLOCK_SKEW < now:
        raise AuthenticationError("The ID token has expired")
    if isinstance(claims.get("iat"), int | float) and claims["iat"] - CLOCK_SKEW > now:
        raise AuthenticationError("The ID token was issued in the future")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise AuthenticationError("The ID token does not answer this sign-in (nonce)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AuthenticationError("The ID token names no subject")
    return claims


# -- who the person is --------------------------------------------------------------------------

_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _username(hub: Hub, claims: dict[str, Any]) -> str:
    raw = claims.get(hub.settings.oidc_username_claim) or str(claims.get("email", "")).split("@")[0]
    name = _NAME_CHARS.sub("-", str(raw)).strip("-.")[:64]
    try:
        validate_account_name(name, "user name")
    except InvalidInputError as exc:
        raise AuthenticationError(f"The identity provider's user name {raw!r} cannot name a hub user") from exc
    return name


def _group_roles(hub: Hub, claims: dict[str, Any]) -> dict[str, str | None]:
    """``org -> role`` for every org the mapping manages (None: not a member by any group)."""
    groups = claims.get(hub.settings.oidc_groups_claim) or []
    groups = set(groups) if isinstance(groups, list) else set()
    rank = {"read": 0, "write": 1, "admin": 2}
    roles: dict[str, str | None] = {}
    for group, target in hub.settings.oidc_group_roles.items():
        org, _, role = target.partition(":")
        if role not in rank:
            raise AuthenticationError(f"MODELYARD_OIDC_GROUP_ROLES: {target!r} is not 'org:read|write|admin'")
        current = roles.get(org)
        if group in groups and (current is None or rank[role] > rank[current]):
            roles[org] = role
        else:
            roles.setdefault(org, None)
    return roles


def sign_in(hub: Hub, issuer: str, claims: dict[str, Any]) -> WebSession:
    subject = str(claims["sub"])
    with hub.db.read() as conn:
        account_id = identities_q.account_for(conn, issuer, subject)
    if account_id is None:
        if not hub.settings.oidc_create_users:
            raise AuthenticationError("No hub user is linked to this identity: ask an administrator")
        name = _username(hub, claims)
        try:  # a new user, never an existing local account (that would hand it to whoever owns the name there)
            user = create_user(hub, name, str(claims.get("name") or name), claims.get("email") or None,
                               actor_name="oidc")
        except ConflictError as exc:
            raise AuthenticationError(f"The user name {name!r} is taken on this hub by another account") from exc
        with hub.db.write() as conn:
            identities_q.link(conn, issuer, subject, user.id, utcnow())
        account_id = user.id
    with hub.db.write() as conn:
        account = accounts_q.by_id(conn, account_id)
        assert account is not None
        for org_name, role in _group_roles(hub, claims).items():
            org = accounts_q.by_name(conn, org_name)
            if org is None or org.kind != "org":
                continue
            members = {p.id: p.role for p in people_q.org_members(conn, org.id)}
            if role is not None and members.get(account.id) != role:
                accounts_q.set_member(conn, org.id, account.id, role)
                record(conn, "org.member_role_set", org.id, None, f"user:{account.name}",
                       {"role": role, "was": members.get(account.id), "via": "oidc"}, actor_name="oidc")
            elif role is None and account.id in members:
                accounts_q.remove_member(conn, org.id, account.id)
                record(conn, "org.member_removed", org.id, None, f"user:{account.name}",
                       {"role": members[account.id], "via": "oidc"}, actor_name="oidc")
    return open_session(hub, account, via="oidc")
