"""Request ids and the access log.

Every response carries ``X-Request-Id``. The client names each request itself: huggingface_hub
sends ``X-Amzn-Trace-Id`` on every call (a fresh UUID, or the caller's own ``X-Request-Id``,
``utils/_http.py:hf_request_event_hook``) and prints the response's ``X-Request-Id`` in its error
messages. So the id the client sent is echoed back, and it names the request in the server's log
line and error body too: one id ties a user's traceback to the server's log. A value that could
smuggle anything into a header or a log line (too long, other characters) is replaced by a fresh id.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.datastructures import Headers

from modelyard.services.xet import CAS_PATH

#: Header names the client's id is taken from, in order (huggingface_hub sends the second one).
CLIENT_HEADERS = ("x-request-id", "x-amzn-trace-id")

#: What a client's id may look like: UUIDs, AWS trace ids (``Root=1-5759e988-bd86...;Sampled=1``)
#: and similar tokens; no spaces, quotes, control or non-ASCII characters.
ACCEPTED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:;=+/@-]{0,199}")

#: Path segments that are credentials (self-authorising LFS and xorb URLs): never logged.
_SECRET_SEGMENT = re.compile(rf"^(/_lfs/[a-z]+/|{re.escape(CAS_PATH)}/fetch/)[^/]+")

access_log = logging.getLogger("modelyard.access")


def request_id(headers: Headers) -> str:
    """The client's id for this request if it sent an acceptable one, else a fresh one."""
    for name in CLIENT_HEADERS:
        value = headers.get(name)
        if value is not None:
            return value if ACCEPTED.fullmatch(value) else fresh()
    return fresh()


def fresh() -> str:
    return str(uuid.uuid4())


def loggable_path(path: str) -> str:
    """``path`` with the tokens of self-authorising URLs masked."""
    return _SECRET_SEGMENT.sub(r"\1<token>", path)


def log_request(rid: str, client: str, method: str, path: str, status: int, seconds: float) -> None:
    """One line per request: who, what, the answer, how long, and the request id."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            '%s "%s %s" %d %.1fms request_id=%s', client, method, loggable_path(path), status, seconds * 1000, rid
        )


def enable_access_log() -> None:
    """Send access lines to stderr (once per process; uvicorn's own access log stays off)."""
    if not access_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
