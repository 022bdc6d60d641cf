"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph).

A writer spools to a local temporary file while hashing, then uploads it under its final key,
so a half-sent blob is never visible in the bucket.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.storage.base import BlobWriter, HashingSink, WrittenBlob

READ_CHUNK = 1024 * 1024


class S3BlobWriter:
    def __init__(self, store: S3BlobStore, max_size: int | None) -> None:
        self._store = store
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in commit/abort
        self._sink = HashingSink(max_size)

    def write(self, data: bytes) -> None:
        self._sink.update(data)
        self._file.write(data)

    def digest(self) -> WrittenBlob:
        return self._sink.result()

    def commit(self, key: str) -> None:
        try:
            if not self._store.exists(key):
                self._file.seek(0)
                self._store.client.upload_fileobj(self._file, self._store.bucket, self._store.key(key))
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


class S3BlobStore:
    def __init__(
        self, bucket: str, prefix: str, *, endpoint_url: str | None = None, region: str = "us-east-1"
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def key(self, key: str) -> str:
        return self.prefix + key

    def writer(self, max_size: int | None = None) -> BlobWriter:
        return S3BlobWriter(self, max_size)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(key))
        except ClientError as exc:  # NoSuchKey / 404 is "absent"; anything else is real
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        obj = self.client.get_object(Bucket=self.bucket, Key=self.key(key), Range=byte_range)
        body = obj["Body"]
        try:
            while chunk := body.read(READ_CHUNK):
                yield chunk
        finally:
            body.close()

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(key))

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix)):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]
