"""Schemathesis hooks (``SCHEMATHESIS_HOOKS``): git's request body media type, which it does not
know, sent as the bytes it generated."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-git-upload-pack-request")
def git_request(ctx: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"data": value}
    data = getattr(value, "data", None)  # schemathesis' own wrapper of binary strings
    if isinstance(data, bytes):
        return {"data": data}
    return {"data": (value if isinstance(value, str) else json.dumps(value)).encode()}
