"""Settings: the only reader of the environment.

Built once (by the CLI or the app factory) and passed explicitly; nothing reads the environment
at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    # -- bounds on what one request may ask for (docs/security.md) --
    max_json_body: int = Field(default=1 * MB, description="Largest JSON request body (API calls)")
    max_commit_operations: int = Field(default=100_000, description="Most operations in one commit")
    max_lfs_file_size: int = Field(
        default=500 * 1024 * MB, description="Largest file an LFS batch request may declare"
    )
    max_batch_objects: int = Field(default=1000, description="Most objects in one LFS batch request")
    max_multipart_parts: int = Field(
        default=10_000, description="Most multipart part URLs one LFS batch answer hands out"
    )
    git_allow_force_push: bool = Field(
        default=True, description="git pushes may rewrite a branch's history (non-fast-forward), as on the Hub"
    )
    git_threads: int = Field(
        default=4, description="Low-priority threads per process for git clones, fetches and pushes"
    )
    git_clone_cache: bool = Field(
        default=True, description="Answer fresh clones with a stored pack of the repo's state (made by git)"
    )
    git_max_push_size: int = Field(default=2048 * MB, description="Largest git push (its pack, as sent)")
    git_max_object_size: int = Field(
        default=64 * MB, description="Largest git object a push may hold (files over the regular-file limit need LFS)"
    )
    git_max_push_inflated: int = Field(
        default=4096 * MB, description="Most bytes a pushed pack may inflate to (refuses zip bombs)"
    )
    git_max_push_objects: int = Field(default=2_000_000, description="Most objects in one git push")
    git_max_fetch_request: int = Field(
        default=64 * MB, description="Largest git fetch negotiation (the wants and haves a client sends)"
    )
    heavy_threads: int = Field(
        default=2, description="Threads per process for CPU-heavy parsing (YAML, large JSON bodies)"
    )
    bulk_threads: int = Field(
        default=2,
        description="Low-priority threads per process for long upload work (multipart completion, shard checks)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers when no public URL is set "
        "(default: localhost, 127.0.0.1, ::1 and --host)",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="Hex HMAC key for signed URLs and Xet tokens (same on every server)"
    )
    signing_key_file: Path | None = Field(
        default=None, description="File holding the signing key; default <data_dir>/signing.key (0600)"
    )
    download_count_period: int = Field(
        default=3600, description="A client counts at most one download per repo in this many seconds"
    )
    tally_interval: float = Field(
        default=2.0, description="Seconds between folds of download counts and token stamps"
    )
    # -- the background job queue (services/jobs.py) --
    queue_url: str | None = Field(
        default=None,
        description="Job queue: sqlite:///path, postgresql://... or redis://...; default: beside the database",
    )
    job_threads: int = Field(default=1, description="Threads per server process running background jobs (0: none)")
    job_poll_interval: float = Field(default=0.5, description="Longest wait of an idle job thread before it polls")
    job_sweep_interval: float = Field(default=30.0, description="Seconds between sweeps for lost jobs")
    job_lease: float = Field(
        default=300.0, description="Seconds a job may run (or wait) before its event is enqueued again"
    )
    # -- single sign-on with OpenID Connect (services/oidc.py, docs/security.md) --
    oidc_issuer: str | None = Field(default=None, description="OpenID provider's issuer URL (sign-in with it on)")
    oidc_client_id: str | None = Field(default=None, description="This hub's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(default=None, description="This hub's client secret at the provider")
    oidc_name: str = Field(default="single sign-on", description="The provider's name on the sign-in page")
    oidc_scopes: str = Field(default="openid profile email groups", description="Scopes asked of the provider")
    oidc_username_claim: str = Field(default="preferred_username", description="Claim that names the hub user")
    oidc_groups_claim: str = Field(default="groups", description="Claim that lists the user's groups")
    oidc_group_roles: dict[str, str] = Field(
        default_factory=dict,
        description='Groups to organization roles, JSON: {"ml-team": "acme:write"}; memberships follow each sign-in',
    )
    oidc_create_users: bool = Field(default=True, description="Create a hub user at a person's first sign-in")
    # -- rate limits (services/ratelimit.py, docs/security.md) --
    rate_limit_api: str = Field(default="1000/minute", description="Requests to /api routes per token or address")
    rate_limit_resolve: str = Field(default="5000/minute", description="File downloads (/resolve) per token or address")
    rate_limit_uploads: str = Field(
        default="2000/minute", description="Upload requests (LFS, Xet, commits, git pushes) per token or address"
    )
    rate_limit_storage: str = Field(
        default="memory://", description="Where counts are kept: memory:// (one process) or redis://host:port/db"
    )
    # -- scanning what is uploaded (services/scans.py, docs/security.md) --
    scan_files: bool = Field(default=True, description="Scan every file committed (pickles, archives, Keras, headers)")
    scan_timeout: float = Field(default=60.0, gt=0, description="Seconds one file's scan may take")
    scan_memory: int = Field(
        default=2 * 1024**3, ge=256 * 1024**2, description="Address space of the scanner's sandbox process, bytes"
    )
    scan_read_budget: int = Field(
        default=1024**3, gt=0, description="Bytes of one file a scan may read (pickle streams are read whole)"
    )
    scan_refuse_unsafe: bool = Field(
        default=False, description="Refuse commits that add a file the scanners flag unsafe (scanned before it lands)"
    )
    secrets_refuse: bool = Field(
        default=False, description="Refuse commits whose text files hold what looks like a token or private key"
    )
    # -- webhooks (services/webhooks.py, services/webhook_sender.py) --
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks post to loopback, link-local and private addresses (refused by default)",
    )
    webhook_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to a webhook target")
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds one webhook delivery attempt may take")
    webhook_max_attempts: int = Field(default=8, ge=1, description="Attempts per delivery before it is given up")
    webhook_retry_delay: float = Field(
        default=1.0, gt=0, description="Seconds before a failed delivery's first retry (doubled each time)"
    )
    webhook_retry_cap: float = Field(default=600.0, gt=0, description="Longest wait between two delivery attempts")
    webhook_poll_interval: float = Field(
        default=2.0, gt=0, description="Seconds between looks for due or orphaned webhook deliveries"
    )
    # -- web sign-in (services/sessions.py) --
    allow_signup: bool = Field(default=False, description="Let anyone create a user account at /join")
    session_lifetime: float = Field(
        default=14 * 24 * 3600.0, gt=0, description="Seconds a browser session lasts after signing in"
    )
    access_log: bool = Field(
        default=True, description="One line per request on stderr, with its X-Request-Id"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines on stderr as text or as one JSON object per line"
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics")
    shutdown_timeout: int = Field(
        default=30, gt=0, description="Seconds a server stopping on SIGTERM gives in-flight requests to finish"
    )
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_public_endpoint_url: str | None = Field(
        default=None, description="The S3 endpoint as clients reach it, when not MODELYARD_S3_ENDPOINT_URL "
        "(presigned URLs name it)",
    )
    direct_downloads: bool = Field(
        default=True, description="With S3 storage, answer LFS downloads and Xet xorb ranges with a redirect to a "
        "presigned URL of the store, so the bytes never pass through the hub (off: the hub sends them, for "
        "stores that clients cannot reach)",
    )
    direct_uploads: bool = Field(
        default=True, description="With S3 storage, LFS uploads below the multipart threshold go straight to the "
        "store by a presigned PUT; the hub reads the object back to check its sha256 before it becomes visible "
        "(off: the bytes pass through the hub)",
    )
    download_url_ttl: int = Field(
        default=3600, gt=0, description="Seconds a presigned download URL of the store lives"
    )
    # -- an upstream hub this one mirrors on demand (services/mirror.py, docs/operations.md) --
    upstream_url: str | None = Field(
        default=None, description="A Hub-compatible hub (another modelyard, or the public Hub) whose repos this "
        "hub serves on demand, with their commit ids, when they are not here"
    )
    upstream_token: SecretStr | None = Field(default=None, description="Access token sent to the upstream hub")
    upstream_allow: str = Field(
        default="*,datasets:*,spaces:*", description="Which upstream repos may be mirrored: comma-separated "
        "patterns of ids (fnmatch; models by default, 'datasets:org/*' or 'spaces:org/*' for the other types), "
        "e.g. 'sentence-transformers/*,google/*'",
    )
    upstream_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a mirrored repo's branches and tags are served before the upstream is "
        "asked again (commit ids never go back upstream)",
    )
    upstream_connect_timeout: float = Field(
        default=3.0, gt=0, description="Seconds to connect to the upstream; an unreachable upstream answers 503"
    )
    upstream_timeout: float = Field(
        default=60.0, gt=0, description="Seconds the upstream may stall one read before the transfer fails"
    )
    upstream_retry_after: float = Field(
        default=15.0, ge=0, description="After the upstream could not be reached, seconds it is not asked again"
    )
    upstream_sync_interval: float = Field(
        default=0.0, ge=0, description="Seconds between syncs of every mirrored repo with its upstream (0: on "
        "demand only)",
    )
    # -- what one connection may cost the server (http/protocol.py) --
    max_header_bytes: int = Field(
        default=64 * 1024, gt=0, description="Largest request line + header block in bytes (else 431)"
    )
    max_headers: int = Field(default=100, gt=0, description="Most header fields per request (else 431)")
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a connection has to send a request's headers (else 408, closed)"
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a request body may stall while the server waits for it (else closed)"
    )
    max_connections: int = Field(
        default=1000, gt=0, description="Open connections per worker process; requests beyond get 503"
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelyard.db').resolve()}"

    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing.key"

    def host_allowed(self, host: str) -> bool:
        """Whether a ``Host`` header (``name[:port]``) names this server (no public URL set)."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        allowed = {h.lower() for h in self.allowed_hosts} or {"localhost", "127.0.0.1", "::1"}
        if not self.allowed_hosts and self.host not in ("0.0.0.0", "::", ""):
            allowed.add(self.host.lower())
        return name in allowed or "*" in allowed

    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "blobs").resolve().as_uri()
