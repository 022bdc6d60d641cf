"""A private S3 bucket's front door for tests: checks presigned URLs as S3 does, then hands the
request to moto.

moto's server is a real S3 HTTP endpoint but does not check presigned URLs at all (any signature,
any expiry is served: moto 5.2 only compares a few query values with headers). So clients reach
the store through this gateway, which verifies each request's AWS Signature Version 4 query
authentication from the specification (canonical request, string to sign, derived key;
AWS docs "Authenticating Requests: Using Query Parameters"), refuses expired URLs and unsigned
requests with 403 like a private bucket, and forwards what passes to moto, streaming the answer.
It also counts the body bytes it sends, so a test can tell where a download's bytes came from.
The hub itself talks to moto directly (``MODELYARD_S3_ENDPOINT_URL``); only the URLs it signs for
clients name the gateway (``MODELYARD_S3_PUBLIC_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

from tests.support.threaded import serving

#: Secret keys the gateway knows (moto's test credentials).
SECRETS = {"testing": "testing"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Gateway:
    url: str
    sent: int = 0  # body bytes sent to clients
    received: int = 0  # body bytes received from clients (uploads)
    requests: list[tuple[str, str, str | None, int]] = field(default_factory=list)  # method, path, Range, status
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def check_presigned(method: str, raw_path: str, headers: dict[str, str], now: datetime) -> str | None:
    """Why the request's query signature is not acceptable, or None when it is."""
    path, _, query = raw_path.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
              "X-Amz-Signature")
    if any(n not in params for n in needed):
        return "AccessDenied: not signed"
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        return "AuthorizationQueryParametersError: algorithm"
    try:
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        return "AuthorizationQueryParametersError: date or expiry"
    if now > signed_at + timedelta(seconds=expires):
        return "AccessDenied: Request has expired"
    akid, day, region, service, terminal = (params["X-Amz-Credential"].split("/") + [""] * 5)[:5]
    secret = SECRETS.get(akid)
    if secret is None or terminal != "aws4_request":
        return "InvalidAccessKeyId"
    names = params["X-Amz-SignedHeaders"].split(";")
    lowered = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    if any(n not in lowered for n in names):
        return "SignatureDoesNotMatch: a signed header is missing"
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical = "\n".join([
        method, path, canonical_query, "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names),
        "UNSIGNED-PAYLOAD",
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), day), region), service), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        return "SignatureDoesNotMatch"
    return None


def _handler(gateway: Gateway, backend: str) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(backend)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _refuse(self, reason: str) -> None:
            body = f"<Error><Code>{reason.split(':')[0]}</Code><Message>{reason}</Message></Error>".encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self._note(403)

        def _note(self, status: int) -> None:
            with gateway.lock:
                gateway.requests.append((self.command, self.path.partition("?")[0], self.headers.get("Range"), status))

        def _serve(self) -> None:
            headers = {k: v for k, v in self.headers.items()}
            why = check_presigned(self.command, self.path, headers, datetime.now(UTC))
            if why is not None:
                self._refuse(why)
                return
            length = int(self.headers.get("Content-Length", "0") or 0)
            with gateway.lock:
                gateway.received += length
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                forward = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in forward.items():
                    conn.putheader(name, value)
                conn.endheaders()
                left = length
                while left:  # the body streams through, a MiB at a time
                    chunk = self.rfile.read(min(left, 1024 * 1024))
                    if not chunk:
                        break
                    conn.send(chunk)
                    left -= len(chunk)
                answer = conn.getresponse()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.end_headers()
                while chunk := answer.read(1024 * 1024):
                    self.wfile.write(chunk)
                    with gateway.lock:
                        gateway.sent += len(chunk)
                self._note(answer.status)
            finally:
                conn.close()

        do_GET = do_HEAD = do_PUT = _serve

    return Handler


@contextmanager
def s3_gateway(backend: str) -> Iterator[Gateway]:
    """A verifying gateway to the S3 server at ``backend`` on a free loopback port."""
    gateway = Gateway("")
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _handler(gateway, backend))) as server:
        gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield gateway
