"""Content-addressed blob storage behind one small protocol (local folder, S3, memory)."""

from __future__ import annotations

from modelyard.storage.base import (
    BlobNotFoundError,
    BlobStore,
    BlobStoreError,
    BlobWriter,
    WrittenBlob,
    open_store,
)

__all__ = ["BlobNotFoundError", "BlobStore", "BlobStoreError", "BlobWriter", "WrittenBlob", "open_store"]
