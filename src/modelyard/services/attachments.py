"""Attachments of discussion comments (``HfApi.upload_attachment``): images, videos, audio.

Uploaded as raw bytes to ``POST /uploads`` by an authenticated caller with a write token, bounded
in size, only for the media types the client sends; stored content-addressed in the blob store
(``attachments/ab/cd/<sha256>``) and served back at ``/uploads/<sha256>.<ext>`` with the type of
its extension, ``nosniff`` and a sandboxing CSP. Nothing a browser would run (HTML, SVG, scripts)
is taken, so no user bytes become active content on the hub's origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.errors import InvalidInputError, NotFoundError
from modelyard.services.auth import Principal, require_writer
from modelyard.services.hub import Hub
from modelyard.storage.base import BlobWriter

#: Largest attachment accepted.
MAX_ATTACHMENT = 20 * 1024 * 1024

#: The media types ``upload_attachment`` sends, by the extension their URL carries.
TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
    "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "mp3": "audio/mpeg", "wav": "audio/wav",
}
EXTENSIONS = {media: ext for ext, media in TYPES.items()}
NAME = re.compile(r"([0-9a-f]{64})\.([a-z0-9]{2,5})")


class UnsupportedMediaTypeError(InvalidInputError):
    """An attachment of a type the hub does not take (anything but images, video and audio)."""


@dataclass(frozen=True)
class Attachment:
    key: str
    media_type: str
    size: int


def _key(sha256: str) -> str:
    return f"attachments/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


def check_upload(hub: Hub, principal: Principal | None, content_type: str | None) -> str:
    """Before the body: the caller is authenticated with a write token and the type is taken;
    returns the file extension for its URL."""
    require_writer(hub, principal)
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in EXTENSIONS:
        raise UnsupportedMediaTypeError(
            f"Attachments must be one of {', '.join(sorted(EXTENSIONS))}, not {media or 'untyped'!r}")
    return EXTENSIONS[media]


def writer(hub: Hub) -> BlobWriter:
    return hub.blobs.writer(max_size=MAX_ATTACHMENT)


def finish(hub: Hub, blob: BlobWriter, ext: str) -> str:
    """Publish a received attachment; returns its name (``<sha256>.<ext>``)."""
    written = blob.digest()
    if written.size == 0:
        blob.abort()
        raise InvalidInputError("An attachment cannot be empty")
    blob.commit(_key(written.sha256))
    return f"{written.sha256}.{ext}"


def find(hub: Hub, name: str) -> Attachment:
    """An attachment by the name in its URL (404 if there is none)."""
    m = NAME.fullmatch(name)
    if m is None or m.group(2) not in TYPES:
        raise NotFoundError("No such attachment")
    key = _key(m.group(1))
    size = hub.blobs.size(key)
    if size is None:
        raise NotFoundError("No such attachment")
    return Attachment(key, TYPES[m.group(2)], size)


def pieces(hub: Hub, found: Attachment) -> Iterator[bytes]:
    return hub.blobs.read(found.key)
