"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph).

A writer hashes the bytes as they stream in and spools them, in memory up to ``SPOOL_LIMIT``
and in a local temporary file beyond, then uploads them under their final key only at
``commit``: a half-sent blob is never visible in the bucket, and memory stays bounded whatever
the blob's size. boto errors stop here: a missing key reads as ``None`` or BlobNotFoundError,
a window past the end as no bytes, and anything else as BlobStoreError.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from modelyard.storage.base import BlobNotFoundError, BlobStoreError, BlobWriter, HashingSink, WrittenBlob

MiB = 1024 * 1024
READ_CHUNK = MiB
#: Blobs up to this size stay in memory and go up in one PUT; larger ones spool to disk and go
#: up in parts read from the file, so no more than a few parts are ever in memory.
SPOOL_LIMIT = 8 * MiB
TRANSFER = TransferConfig(multipart_threshold=SPOOL_LIMIT, multipart_chunksize=8 * MiB, max_concurrency=4)
#: Codes S3 and its clones answer for a key (HEAD has no body, so only "404") that is not there.
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def vendor_errors(action: str) -> Iterator[None]:
    """Turn what boto raises into BlobStoreError (callers handle the expected codes first)."""
    try:
        yield
    except ClientError as exc:
        raise BlobStoreError(f"S3 {action} failed: {_code(exc) or exc}", _code(exc)) from exc
    except (BotoCoreError, Boto3Error) as exc:
        raise BlobStoreError(f"S3 {action} failed: {exc}") from exc


class S3BlobWriter:
    """Hashes and spools a blob; ``commit`` uploads it whole, so the bucket never sees a part."""

    def __init__(self, store: S3BlobStore, max_size: int | None, digests: bool = True) -> None:
        self._store = store
        self._sink = HashingSink(max_size, digests)
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None  # a named file once past SPOOL_LIMIT
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError("write after commit or abort")
        self._sink.update(data)  # raises before an over-limit byte is kept
        if self._file is None:
            if len(self._buffer) + len(data) <= SPOOL_LIMIT:
                self._buffer += data
                return
            self._file = tempfile.NamedTemporaryFile(prefix="modelyard-s3-")  # noqa: SIM115
            self._file.write(self._buffer)
            self._buffer = bytearray()
        self._file.write(data)

    def digest(self) -> WrittenBlob:
        return self._sink.result()

    def commit(self, key: str) -> None:
        if self._done:
            raise ValueError("commit after commit or abort")
        try:
            if self._store.exists(key):
                return  # content-addressed: the bytes there are these bytes
            if self._file is None:
                self._store.put_small(key, bytes(self._buffer))
            else:
                self._file.flush()
                self._store.put_file(key, Path(self._file.name))
        finally:
            self.abort()

    def abort(self) -> None:
        self._done = True
        self._buffer = bytearray()
        if self._file is not None:
            self._file.close()  # deletes it
            self._file = None


class S3BlobStore:
    """Blobs under ``prefix/`` in ``bucket``; the bucket must exist, nothing else is created."""

    def __init__(
        self, bucket: str, prefix: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
        public_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        # Server handlers run in a thread pool: let each thread keep its connection.
        config = Config(max_pool_connections=32, retries={"mode": "standard"})
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        # Presigned URLs name the host clients reach the store at (it is part of what is signed),
        # and always use Signature Version 4: it can bind a Range header (V2 cannot).
        self._signer: Any = boto3.client(
            "s3", endpoint_url=public_endpoint_url or endpoint_url, region_name=region,
            config=Config(signature_version="s3v4"),
        )

    def key(self, key: str) -> str:
        return self.prefix + key

    def writer(self, max_size: int | None = None, digests: bool = True) -> BlobWriter:
        return S3BlobWriter(self, max_size, digests)

    def put_small(self, key: str, data: bytes) -> None:
        """One PUT (botocore adds its own checksum of the body)."""
        with vendor_errors("upload"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        """Upload a spooled file, in parts when large; parts are read from disk as they go."""
        with vendor_errors("upload"):
            self.client.upload_file(str(path), self.bucket, self.key(key), Config=TRANSFER)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(key))
        except ClientError as exc:
            if _code(exc) in MISSING:
                return None
            raise BlobStoreError(f"S3 head failed: {_code(exc)}", _code(exc)) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 head failed: {exc}") from exc
        return int(head["ContentLength"])

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        extra: dict[str, str] = {}
        if start > 0 or end is not None:  # a Range on an empty object would be answered 416
            extra["Range"] = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(key), **extra)
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise BlobNotFoundError(key) from exc
            if _code(exc) == "InvalidRange":
                return  # the window starts at or past the end: no bytes
            raise BlobStoreError(f"S3 read failed: {_code(exc)}", _code(exc)) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 read failed: {exc}") from exc
        body = obj["Body"]
        try:
            with vendor_errors("read"):
                while chunk := body.read(READ_CHUNK):
                    yield chunk
        finally:
            body.close()

    def local_path(self, key: str) -> Path | None:
        return None

    def signed_url(self, key: str, ttl: int, *, window: tuple[int, int] | None = None,
                   filename: str | None = None, media_type: str | None = None) -> str | None:
        """A SigV4 presigned GET (computed locally: no request to the store)."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self.key(key)}
        if window is not None:
            params["Range"] = f"bytes={window[0]}-{window[1] - 1}"  # a signed header: only this range
        if filename is not None:
            params["ResponseContentDisposition"] = f"inline; filename*=UTF-8''{quote(filename)}"
        if media_type is not None:
            params["ResponseContentType"] = media_type
        with vendor_errors("presign"):
            return str(self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl))

    def signed_put_url(self, key: str, ttl: int, size: int) -> str | None:
        """A SigV4 presigned PUT of exactly ``size`` bytes (Content-Length is a signed header)."""
        params = {"Bucket": self.bucket, "Key": self.key(key), "ContentLength": size}
        with vendor_errors("presign"):
            return str(self._signer.generate_presigned_url("put_object", Params=params, ExpiresIn=ttl))

    def copy(self, source: str, key: str) -> None:
        """A copy inside the bucket (in parts when large): the bytes never leave the store."""
        if self.exists(key):
            return  # content-addressed: the bytes there are these bytes
        with vendor_errors("copy"):
            self.client.copy({"Bucket": self.bucket, "Key": self.key(source)}, self.bucket, self.key(key),
                             Config=TRANSFER)

    def direct_parts(self) -> S3Parts:
        return S3Parts(self)

    def delete(self, key: str) -> None:
        with vendor_errors("delete"):  # S3 answers 204 for a missing key too
            self.client.delete_object(Bucket=self.bucket, Key=self.key(key))

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with vendor_errors("list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix)):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]


class S3Parts:
    """S3 multipart uploads whose parts clients PUT to presigned URLs."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store

    def start(self, key: str) -> str:
        with vendor_errors("multipart start"):
            answer = self._store.client.create_multipart_upload(Bucket=self._store.bucket, Key=self._store.key(key))
        return str(answer["UploadId"])

    def part_url(self, key: str, upload_id: str, part: int, ttl: int, size: int) -> str:
        params = {"Bucket": self._store.bucket, "Key": self._store.key(key), "UploadId": upload_id, "PartNumber": part,
                  "ContentLength": size}
        with vendor_errors("presign"):
            return str(self._store._signer.generate_presigned_url("upload_part", Params=params, ExpiresIn=ttl))

    def finish(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
        with vendor_errors("multipart completion"):
            self._store.client.complete_multipart_upload(
                Bucket=self._store.bucket, Key=self._store.key(key), UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )

    def abort_expired(self, prefix: str, expired: Callable[[str], bool]) -> int:
        store, aborted = self._store, 0
        paginator = store.client.get_paginator("list_multipart_uploads")
        with vendor_errors("multipart listing"):
            for page in paginator.paginate(Bucket=store.bucket, Prefix=store.key(prefix)):
                for upload in page.get("Uploads", []):
                    if expired(upload["Key"][len(store.prefix):]):
                        store.client.abort_multipart_upload(
                            Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                        aborted += 1
        return aborted
