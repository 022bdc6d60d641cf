"""Pieces shared by the route modules: path patterns, JSON, dates, entries."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    RepoMovedError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelyard.http.app import REPO as REPO  # re-exported for the route modules
from modelyard.ids import PLURALS, URL_PREFIXES, RepoType, is_commit_id
from modelyard.services import mirror as mirror_svc
from modelyard.services import repos as repos_svc
from modelyard.services.files import CommitInfo, FileEntry

if TYPE_CHECKING:
    from modelyard.http.app import Ctx

TYPES = r"(?P<types>models|datasets|spaces)"
API_REPO = rf"/api/{TYPES}/{REPO}"
PREFIX = r"(?P<prefix>datasets/|spaces/|models/)?"
REV = r"(?P<rev>refs/(?:pr|convert)/[^/]+|[^/]+)"


def repo_type(params: dict[str, str]) -> RepoType:
    if "types" in params:
        return PLURALS[params["types"]]
    prefix = params.get("prefix", "").rstrip("/")
    return {"datasets": "dataset", "spaces": "space"}.get(prefix, "model")  # type: ignore[return-value]


def repo_id(params: dict[str, str]) -> str:
    """``namespace/name``, or the bare name of a route matched without a namespace. A bare name
    that decodes to ``ns/name`` (``ns%2Fname``) names nothing: it must not reach that repo."""
    if "ns" in params:
        return f"{params['ns']}/{params['name']}"
    return params["name"] if "/" not in params["name"] else ""


def repo_url(base: str, rtype: str, rid: str) -> str:
    return f"{base}/{URL_PREFIXES[rtype]}{rid}"  # type: ignore[index]


def moved(ctx: Ctx, new_id: str) -> RepoMovedError:
    """The redirect of a request naming a moved repo's old id: the same URL (query included)
    with the repo's current id in place of the old one. Path-only, as the Hub sends it: the
    clients resolve it against the URL they called, so it stays on their origin whatever host
    name they used (HEAD /resolve follows only same-origin redirects); the path keeps the prefix
    of the public URL, for a hub served under one."""
    m = ctx.match
    assert m is not None and "ns" in m.re.groupindex, "only routes that name a repo redirect"
    namespace, name = new_id.split("/")
    path = f"{m.string[: m.start('ns')]}{quote(namespace, safe='')}/{quote(name, safe='')}{m.string[m.end('name'):]}"
    query = ctx.request.url.query
    error = RepoMovedError(new_id)
    prefix = urlsplit(ctx.base_url()).path.rstrip("/")
    error.location = f"{prefix}{path}" + (f"?{query}" if query else "")
    return error


def follows_moves(handler: Callable[[Ctx], Awaitable[Response]]) -> Callable[[Ctx], Awaitable[Response]]:
    """Mark a read route: where a repo is not found under the id in the URL but was moved from
    it, and the caller may read it, the answer is a 307 to the repo's current id. Write routes
    are not marked: a write never lands in a repo the URL did not name."""

    @functools.wraps(handler)
    async def read(ctx: Ctx) -> Response:
        mirroring = ctx.hub.settings.upstream_url is not None
        rev = ctx.params.get("rev")
        if mirroring and not (rev and is_commit_id(rev)):  # a mirror's branches follow the upstream's
            await ctx.call(mirror_svc.before_read, repo_type(ctx.params), repo_id(ctx.params), rev)
        try:
            return await handler(ctx)
        except RepoNotFoundError as missing:
            new_id = await ctx.call(repos_svc.moved_to, repo_type(ctx.params), repo_id(ctx.params))
            if new_id is not None:
                raise moved(ctx, new_id) from None
            if mirroring and await ctx.call(mirror_svc.materialize, repo_type(ctx.params), repo_id(ctx.params)):
                return await handler(ctx)
            raise missing
        except RevisionNotFoundError:
            if mirroring and await ctx.call(mirror_svc.after_missing_revision, repo_type(ctx.params),
                                            repo_id(ctx.params)):
                return await handler(ctx)
            raise

    return read


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type=media_type)


def iso(dt: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a trailing ``Z``, as the clients require."""
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"  # C, unlike strftime


#: JSON bodies up to this size are parsed on the event loop (microseconds); larger ones in the
#: pool for CPU-heavy work.
INLINE_JSON = 64 * 1024


def declared_length(ctx: Ctx) -> int | None:
    """The ``Content-Length`` the client declared (None for a chunked body)."""
    declared = ctx.request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 18:
        raise PayloadTooLargeError("Invalid or absurd Content-Length")
    return int(declared)


async def bounded_stream(ctx: Ctx, limit: int, what: str) -> AsyncIterator[bytes]:
    """The body's pieces as they arrive, refused (413) as soon as it is declared or found to
    pass ``limit`` bytes: the one place every route's body limit is applied."""
    declared = declared_length(ctx)
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(f"The {what} may hold at most {limit} bytes")
    size = 0
    async for chunk in ctx.request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The {what} may hold at most {limit} bytes")
        yield chunk


async def read_body(ctx: Ctx, limit: int, what: str = "request body") -> bytes:
    """The whole body, bounded by ``limit`` (``bounded_stream``)."""
    return b"".join([chunk async for chunk in bounded_stream(ctx, limit, what)])


def decode_json(raw: bytes, what: str) -> Any:
    """``json.loads``, with every way a client's bytes can fail as a 400 naming ``what``."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"Malformed {what}: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInputError(f"Malformed {what}: nested too deeply") from exc


def parse_json_object(raw: bytes) -> dict[str, Any]:
    data = decode_json(raw, "JSON body")
    if not isinstance(data, dict):
        raise InvalidInputError("The JSON body must be an object")
    return data


async def json_body(ctx: Ctx, required: bool = True, limit: int | None = None) -> dict[str, Any]:
    """The JSON object in the body, bounded by ``max_json_body`` (or ``limit``); read it only after
    the request has been authorised as far as the URL and headers allow."""
    raw = await read_body(ctx, limit or ctx.hub.settings.max_json_body, "JSON body")
    if not raw:
        if required:
            raise InvalidInputError("A JSON body is required")
        return {}
    if len(raw) <= INLINE_JSON:
        return parse_json_object(raw)
    return await ctx.heavy(parse_json_object, raw)


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def entry_json(
    entry: FileEntry, last_commit: CommitInfo | None = None, security: dict[str, Any] | None = None
) -> dict[str, Any]:
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
    if security is not None:
        out["securityFileStatus"] = security
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
