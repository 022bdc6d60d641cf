"""Settings: the only reader of the environment.

Built once (by the CLI or the app factory) and passed explicitly; nothing reads the environment
at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of a modelyard server, read from ``MODELYARD_*`` variables or arguments."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", frozen=True, extra="forbid")

    data_dir: Path = Field(default=Path("data"), description="Folder for SQLite and blobs")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/modelyard.db"
    )
    storage_url: str | None = Field(
        default=None, description="Blob store URL (file:///path or s3://bucket/prefix)"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = Field(default=8, description="Worker threads per process for blocking calls")
    public_url: str | None = Field(
        default=None, description="Base URL for absolute links; default: the host the client called"
    )
    trust_proxy_headers: bool = Field(
        default=False, description="Honour X-Forwarded-Proto / X-Forwarded-Host"
    )
    max_regular_file_size: int = Field(
        default=10 * MB, description="Largest file accepted inline in a commit (else use LFS)"
    )
    lfs_threshold: int = Field(
        default=10 * MB, description="preupload answers 'lfs' for files at least this large"
    )
    multipart_threshold: int = Field(
        default=5 * 1024 * MB, description="LFS uploads at least this large use multipart"
    )
    multipart_chunk_size: int = Field(default=512 * MB, description="Part size for multipart")
    upload_url_ttl: int = Field(default=24 * 3600, description="Seconds an LFS upload URL lives")
    max_commit_body: int = Field(default=1024 * MB, description="Largest NDJSON commit body")
    xet_token_ttl: int = Field(default=3600, description="Seconds a Xet CAS access token lives")
    xet_url_ttl: int = Field(default=3600, description="Seconds a signed xorb range URL lives")
    xet_dedup_key_ttl: int = Field(
        default=7 * 24 * 3600, description="Seconds a client may use a global dedup answer"
    )
    gc_grace_period: int = Field(
        default=24 * 3600, description="gc keeps unreferenced uploads younger than this (seconds)"
    )
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelyard.db').resolve()}"

    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "blobs").resolve().as_uri()
