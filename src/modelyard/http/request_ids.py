"""Request ids and the access log.

Every response carries ``X-Request-Id``. The client names each request itself: huggingface_hub
sends ``X-Amzn-Trace-Id`` on every call (a fresh UUID, or the caller's own ``X-Request-Id``,
``utils/_http.py:hf_request_event_hook``) and prints the response's ``X-Request-Id`` in its error
messages. So the id the client sent is echoed back, and it names the request in the server's log
line and error body too: one id ties a user's traceback to the server's log. A value that could
smuggle anything into a header or a log line (too long, other characters) is replaced by a fresh id.
"""

from __future__ import annotations

import json
import logging
import re
import time
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
        shown = loggable_path(path)
        ms = round(seconds * 1000, 1)
        access_log.info(
            '%s "%s %s" %d %.1fms request_id=%s', client, method, shown, status, ms, rid,
            extra={"fields": {"request_id": rid, "client": client, "method": method, "path": shown,
                              "status": status, "ms": ms}},
        )


class JsonFormatter(logging.Formatter):
    """A JSON object per line: time, level, logger, message, the record's ``fields`` (an access
    line's request id, method, path, status, milliseconds) and a traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")


def configure_logging(log_format: str, access: bool) -> None:
    """The hub's own log lines (``modelyard.*``: access lines, errors, jobs) on stderr in
    ``log_format`` (``text`` or ``json``), once per process."""
    root = logging.getLogger("modelyard")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)  # warnings and errors; access lines below pass their own level
        root.propagate = False
    access_log.setLevel(logging.INFO if access else logging.WARNING)
