"""OpenID providers for the sign-in tests: the real ``oidc-provider`` (npm) run by node, and a
hostile one that answers the flow correctly but hands out the ID tokens a test asks for (another
issuer, another audience, a wrong nonce, a forged signature, an expired token)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.server import free_port, wait_for_port
from tests.support.threaded import serving

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".venv" / "oidc"  # `make` installs oidc-provider there
CLIENT_ID = "modelyard"


@dataclass
class RealProvider:
    issuer: str
    proc: subprocess.Popen[bytes]


@contextmanager
def real_provider(redirect_uri: str, secret: str, groups: dict[str, list[str]]) -> Iterator[RealProvider]:
    """oidc-provider on a free loopback port (its script runs beside its node_modules)."""
    script = NODE_MODULES / "provider.mjs"
    shutil.copyfile(Path(__file__).parent / "oidc" / "provider.mjs", script)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIRECT_URI": redirect_uri, "CLIENT_SECRET": secret,
           "GROUPS": json.dumps(groups)}
    proc = subprocess.Popen(["node", str(script)], cwd=NODE_MODULES, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(proc, port, "oidc-provider")
        yield RealProvider(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class HostileProvider:
    """Discovery, JWKS, an authorize endpoint that sends the browser straight back with a code,
    and a token endpoint whose ID token ``tamper`` shapes (``mode``)."""

    port: int = field(default_factory=free_port)
    mode: str = "good"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    other: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, str] = field(default_factory=dict)  # code -> nonce

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "hostile-1", "iat": now,
                                  "exp": now + 300, "nonce": nonce, "preferred_username": "mallory"}
        key = self.key
        if self.mode == "issuer":
            claims["iss"] = "http://127.0.0.1:1"
        elif self.mode == "audience":
            claims["aud"] = "another-client"
        elif self.mode == "nonce":
            claims["nonce"] = "a-nonce-of-another-sign-in"
        elif self.mode == "signature":
            key = self.other  # same kid, another key: a forgery
        elif self.mode == "expired":
            claims["exp"], claims["iat"] = now - 3600, now - 7200
        elif self.mode == "none":
            header = {"alg": "none"}
            import base64

            def part(value: dict[str, Any]) -> str:
                return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

            return f"{part(header)}.{part(claims)}."
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


@contextmanager
def hostile_provider() -> Iterator[HostileProvider]:
    provider = HostileProvider()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, value: Any) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            url = urlparse(self.path)
            if url.path == "/.well-known/openid-configuration":
                base = provider.issuer
                self._json({"issuer": base, "authorization_endpoint": f"{base}/authorize",
                            "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks"})
            elif url.path == "/jwks":
                self._json({"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                code = uuid.uuid4().hex
                provider.codes[code] = q["nonce"]
                self.send_response(302)
                self.send_header("Location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            nonce = provider.codes.pop(form.get("code", ""), None)
            if urlparse(self.path).path != "/token" or nonce is None:
                self.send_error(400)
                return
            self._json({"access_token": "x", "token_type": "Bearer", "id_token": provider.id_token(nonce)})

    with serving(ThreadingHTTPServer(("127.0.0.1", provider.port), Handler)):
        yield provider
