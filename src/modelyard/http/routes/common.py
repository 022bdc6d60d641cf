"""Pieces shared by the route modules: path patterns, JSON, dates, entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import InvalidInputError
from modelyard.ids import PLURALS, URL_PREFIXES, RepoType
from modelyard.services.files import FileEntry
from modelyard.versioning.objects import CommitInfo

TYPES = r"(?P<types>models|datasets|spaces)"
REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
API_REPO = rf"/api/{TYPES}/{REPO}"
PREFIX = r"(?P<prefix>datasets/|spaces/|models/)?"
REV = r"(?P<rev>refs/(?:pr|convert)/[^/]+|[^/]+)"


def repo_type(params: dict[str, str]) -> RepoType:
    if "types" in params:
        return PLURALS[params["types"]]
    prefix = params.get("prefix", "").rstrip("/")
    return {"datasets": "dataset", "spaces": "space"}.get(prefix, "model")  # type: ignore[return-value]


def repo_id(params: dict[str, str]) -> str:
    return f"{params['ns']}/{params['name']}"


def repo_url(base: str, rtype: str, rid: str) -> str:
    return f"{base}/{URL_PREFIXES[rtype]}{rid}"  # type: ignore[index]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type=media_type)


def iso(dt: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a trailing ``Z``, as the clients require."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


async def json_body(request: Any, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        if required:
            raise InvalidInputError("A JSON body is required")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"Malformed JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("The JSON body must be an object")
    return data


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def entry_json(entry: FileEntry, last_commit: CommitInfo | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "directory" if entry.is_dir else "file",
        "oid": entry.oid,
        "size": entry.size,
        "path": entry.path,
    }
    if entry.lfs_sha256 is not None:
        out["lfs"] = {"oid": entry.lfs_sha256, "size": entry.lfs_size, "pointerSize": entry.pointer_size}
    if entry.xet_hash is not None:
        out["xetHash"] = entry.xet_hash
    if last_commit is not None:
        out["lastCommit"] = {"id": last_commit.oid, "title": last_commit.title, "date": iso(last_commit.date)}
    return out


def link_next(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}


T = TypeVar("T")


async def iterate(pieces: Iterator[T]) -> AsyncIterator[T]:
    """Drive a blocking iterator of non-empty pieces from the thread pool, one piece per hop."""
    while True:
        piece = await run_in_threadpool(next, pieces, None)
        if piece is None:
            return
        yield piece
