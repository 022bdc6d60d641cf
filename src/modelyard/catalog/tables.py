"""Every table modelyard keeps. Migrations in ``migrations/`` must match this metadata."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(96), nullable=False),
    Column("name_lower", String(96), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # user | org
    Column("fullname", String(256), nullable=False, default=""),
    Column("email", String(256), nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("default_private", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), nullable=False),  # read | write | admin
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(8), nullable=False),  # read | write
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
)

repos = Table(
    "repos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(8), nullable=False),
    Column("namespace", String(96), nullable=False),
    Column("name", String(96), nullable=False),
    Column("key", String(200), nullable=False),  # lower("namespace/name")
    Column("owner_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("private", Boolean, nullable=False, default=False),
    Column("gated", String(8), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Column("used_storage", BigInteger, nullable=False, default=0),
    Column("downloads", BigInteger, nullable=False, default=0),
    Column("downloads_all_time", BigInteger, nullable=False, default=0),
    Column("likes", Integer, nullable=False, default=0),
    Column("trending_score", Float, nullable=False, default=0.0),
    Column("card_data", Text, nullable=True),  # JSON of the README YAML
    Column("tags", Text, nullable=False, default="[]"),  # JSON list
    Column("library_name", String(64), nullable=True),
    Column("pipeline_tag", String(64), nullable=True),
    UniqueConstraint("type", "key"),
    Index("ix_repos_type_last_modified", "type", "last_modified"),
)

repo_tags = Table(
    "repo_tags",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(256), primary_key=True),
    Index("ix_repo_tags_tag", "tag"),
)

refs = Table(
    "refs",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(300), primary_key=True),  # refs/heads/main, refs/tags/v1, refs/pr/1
    Column("target", String(40), nullable=False),
)

git_objects = Table(
    "git_objects",
    metadata,
    Column("oid", String(40), primary_key=True),
    Column("type", SmallInteger, nullable=False),
    Column("size", BigInteger, nullable=False),  # size of the raw body
    Column("lfs_sha256", String(64), nullable=True),  # blobs that are LFS pointers
    Column("lfs_size", BigInteger, nullable=True),
    Column("data", LargeBinary, nullable=False),
)

repo_commits = Table(
    "repo_commits",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("oid", String(40), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

lfs_objects = Table(
    "lfs_objects",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

repo_lfs_objects = Table(
    "repo_lfs_objects",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), ForeignKey("lfs_objects.sha256"), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("pushed_at", DateTime, nullable=False),
)

multipart_uploads = Table(
    "multipart_uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunk_size", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

discussions = Table(
    "discussions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("num", Integer, nullable=False),
    Column("title", String(512), nullable=False),
    Column("is_pull_request", Boolean, nullable=False),
    Column("status", String(8), nullable=False),
    Column("author_id", Integer, ForeignKey("accounts.id"), nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("repo_id", "num"),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)
