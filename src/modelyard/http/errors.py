"""The one table from domain errors to HTTP status and ``X-Error-Code``."""

from __future__ import annotations

import json

from starlette.responses import Response

from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    EntryNotFoundError,
    HubError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RangeNotSatisfiableError,
    RateLimitedError,
    RefusedContentError,
    RepoMovedError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StaleParentError,
    UnsafePathError,
    UpstreamUnavailableError,
)
from modelyard.services.attachments import UnsupportedMediaTypeError
from modelyard.services.contributions import PullRequestClosedError
from modelyard.services.discussions import DiscussionNotFoundError, ThreadStateError
from modelyard.services.gating import GatedRepoAnonymousError, GatedRepoError
from modelyard.services.lfs_files import EntryPurgedError
from modelyard.services.merges import MergeConflictError


class MethodNotAllowedError(HubError):
    """The path exists, the method does not (an HTTP-level answer, so it lives here)."""


#: (error class, status, X-Error-Code). Looked up along the exception's MRO, so the most
#: specific class wins. The first three codes are the ones the Hub clients map to exceptions.
ERROR_TABLE: dict[type[HubError], tuple[int, str]] = {
    RepoNotFoundError: (404, "RepoNotFound"),
    # A gated repo's files: 401 to the anonymous, 403 to the logged-in (the client raises GatedRepoError).
    GatedRepoAnonymousError: (401, "GatedRepo"),
    GatedRepoError: (403, "GatedRepo"),
    RevisionNotFoundError: (404, "RevisionNotFound"),
    # 410 Gone, with the code that makes the client raise RemoteEntryNotFoundError (our message in it).
    EntryPurgedError: (410, "EntryNotFound"),
    EntryNotFoundError: (404, "EntryNotFound"),
    DiscussionNotFoundError: (404, "DiscussionNotFound"),
    NotFoundError: (404, "NotFound"),
    RepoMovedError: (307, "RepoMoved"),  # not an error to the clients: a redirect (error_response)
    StaleParentError: (412, "PreconditionFailed"),
    MergeConflictError: (409, "MergeConflict"),
    ThreadStateError: (409, "DiscussionStateConflict"),
    PullRequestClosedError: (409, "DiscussionStateConflict"),
    UnsupportedMediaTypeError: (415, "UnsupportedMediaType"),
    ConflictError: (409, "Conflict"),
    RangeNotSatisfiableError: (416, "RangeNotSatisfiable"),
    PayloadTooLargeError: (413, "PayloadTooLarge"),
    UnsafePathError: (422, "UnprocessableEntity"),
    RefusedContentError: (422, "UnprocessableEntity"),
    MethodNotAllowedError: (405, "MethodNotAllowed"),
    InvalidInputError: (400, "BadRequest"),
    AuthenticationError: (401, "Unauthorized"),
    PermissionDeniedError: (403, "Forbidden"),
    UpstreamUnavailableError: (503, "UpstreamUnavailable"),
    RateLimitedError: (429, "RateLimited"),
    QuotaExceededError: (429, "QuotaExceeded"),
    HubError: (500, "InternalError"),
}


def status_for(exc: HubError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "InternalError"


def header_safe(message: str) -> str:
    """Header values must be latin-1 and single-line."""
    flat = "".join(c if c.isprintable() else "?" for c in " ".join(message.split()))
    return flat.encode("latin-1", "replace").decode("latin-1")[:1000]


def error_response(exc: HubError, head: bool = False, request_id: str | None = None) -> Response:
    """The single error envelope: JSON ``{"error": msg}`` plus the headers the clients read
    (``requestId`` names the request in the server's log; the client reads ``X-Request-Id``)."""
    status, code = status_for(exc)
    if isinstance(exc, RepoMovedError):
        return moved_response(exc, status, head)
    headers = {"X-Error-Code": code, "X-Error-Message": header_safe(exc.message)}
    commit = getattr(exc, "commit", None)
    if commit:
        headers["X-Repo-Commit"] = commit
    if isinstance(exc, RangeNotSatisfiableError):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, RateLimitedError):
        headers.update(exc.headers)
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="modelyard", charset="UTF-8"'
    body: dict[str, object] = {"error": exc.message, "message": exc.message}
    url = getattr(exc, "url", None)
    if url:
        body["url"] = url
    slug = getattr(exc, "slug", None)  # a collection that exists already: create_collection(exists_ok) reads it
    if slug:
        body["slug"] = slug
    if request_id is not None:
        body["requestId"] = request_id
    content = b"" if head else json.dumps(body).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def moved_response(exc: RepoMovedError, status: int, head: bool) -> Response:
    """A read of a moved repo's old id: a 307 to the same URL with the current id, as the Hub
    answers (the clients follow it, keeping the method and body). No error headers: the clients
    take the 3xx as the way on, never as a failure."""
    assert exc.location is not None, "the HTTP layer sets where a moved repo is"
    content = b"" if head else f"Temporary Redirect. Redirecting to {exc.location}".encode()
    return Response(content, status_code=status, headers={"Location": exc.location}, media_type="text/plain")
