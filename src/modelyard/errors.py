"""Domain error roots.

No HTTP in here: ``http/errors.py`` maps each class to a status and an ``X-Error-Code``.
Leaf errors that only one module raises live beside their raiser.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error modelyard raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(HubError):
    """Something the caller named does not exist (or may not be seen)."""


class RepoNotFoundError(NotFoundError):
    """The repository does not exist, or the caller may not read it."""


class RepoMovedError(HubError):
    """A repo was renamed or transferred: a read of its old id is redirected to ``repo_id``.

    Raised only to a caller who may read the repo (anyone else gets ``RepoNotFoundError``, so the
    new name never leaks); ``location`` is filled in by the HTTP layer, which knows the URL.
    """

    def __init__(self, repo_id: str) -> None:
        super().__init__(f"Repository moved to {repo_id}")
        self.repo_id = repo_id
        self.location: str | None = None


class RevisionNotFoundError(NotFoundError):
    """The revision does not exist in an existing repository."""

    def __init__(self, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.commit = commit


class EntryNotFoundError(NotFoundError):
    """A path does not exist at a resolved revision (``commit`` is that revision)."""

    def __init__(self, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.commit = commit


class ConflictError(HubError):
    """The request conflicts with the current state (exists already, stale parent)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class StaleParentError(ConflictError):
    """``parentCommit`` is not the head of the branch any more."""


class InvalidInputError(HubError):
    """The request is malformed or names something invalid."""


class UnsafePathError(InvalidInputError):
    """A path that is not plain relative names (``..``, ``.``, empty segments, a leading '/',
    ``.git`` and its look-alikes, control characters, backslashes, bidi controls)."""


class RefusedContentError(InvalidInputError):
    """A commit adds content this hub's operator refuses: a file the scanners flag unsafe, or
    text that holds a secret (``MODELYARD_SCAN_REFUSE_UNSAFE``, ``MODELYARD_SECRETS_REFUSE``)."""


class RangeNotSatisfiableError(InvalidInputError):
    """A byte range lies outside the file."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class PayloadTooLargeError(InvalidInputError):
    """A body or a file exceeds a configured limit."""


class AuthenticationError(HubError):
    """The presented credentials are unknown, revoked or malformed."""


class PermissionDeniedError(HubError):
    """The caller is known but may not do this."""


class UpstreamUnavailableError(HubError):
    """The upstream hub a mirrored repo comes from could not be reached, or failed, for something
    not held here (503: the clients then try their own cache)."""


class QuotaExceededError(HubError):
    """A storage or rate quota is exhausted."""


class RateLimitedError(QuotaExceededError):
    """Too many requests from one token or address: ``headers`` say when to come back."""

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers
