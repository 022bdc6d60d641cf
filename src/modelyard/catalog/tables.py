"""Every table modelyard keeps. Migrations in ``migrations/`` must match this metadata."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
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
    # argon2id (services/sessions.py); None: the account cannot sign in with a password
    Column("password_hash", Text, nullable=True),
)

#: Browser sessions (services/sessions.py): the cookie's sha256 only, and the session's CSRF
#: token that every form posted in it must carry.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_web_sessions_account_id", "account_id"),
)

members = Table(
    "members",
    metadata,
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), nullable=False),  # read | write | admin
)

# Resource groups (services/groups.py): within an org, a set of repos with members of its own.
# A private repo in a group is seen only by the group's members and the org's admins.
resource_groups = Table(
    "resource_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", String(24), nullable=False, unique=True),  # the id clients see: 24 hex digits, as on the Hub
    Column("org_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(96), nullable=False),
    Column("name_lower", String(96), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("org_id", "name_lower"),
)

resource_group_members = Table(
    "resource_group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("resource_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(12), nullable=False),  # read | contributor | write | admin
    Index("ix_resource_group_members_user_id", "user_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(8), nullable=False),  # read | write | fine (fine-grained: ``scopes``)
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
    Column("scopes", Text, nullable=True),  # JSON: what a fine-grained token may do (services/auth.py)
    Column("expires_at", DateTime, nullable=True),  # refused from then on
)

repos = Table(
    "repos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(8), nullable=False),
    Column("namespace", String(96), nullable=False),
    Column("name", String(96), nullable=False),
    Column("key", String(200), nullable=False),  # lower("namespace/name")
    # Random and never reused (SQLite reuses ``id`` after a delete): what signed URLs and Xet
    # tokens are bound to, so that one cannot outlive its repo and reach the next one.
    Column("uid", String(32), nullable=False, server_default=""),
    # Bumped by every ref change: gc releases a repo's files only if no ref moved since it
    # computed what the refs reach (services/gc.py).
    Column("refs_version", BigInteger, nullable=False, server_default="0"),
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
    # Facts extracted from the files of the default branch (JSON), see services/indexer.py.
    Column("num_parameters", BigInteger, nullable=True),
    Column("safetensors", Text, nullable=True),
    Column("gguf", Text, nullable=True),
    Column("config", Text, nullable=True),
    Column("transformers_info", Text, nullable=True),
    Column("card_errors", Text, nullable=True),
    Column("indexed_commit", String(40), nullable=True),
    # Catalog change sequence numbers: pagination snapshots (catalog/search.py).
    Column("created_seq", BigInteger, nullable=False, default=0, server_default="0"),
    Column("change_seq", BigInteger, nullable=False, default=0, server_default="0"),
    # The resource group the repo is in (None: none), and who created it (a group's contributors
    # write the repos they created). No foreign keys: added to a populated table by a plain ADD
    # COLUMN (see migration 0019); services/groups.py refuses to delete a group that has repos.
    Column("resource_group_id", Integer, nullable=True),
    Column("creator_id", Integer, nullable=True),
    # The upstream hub this repo mirrors (services/mirror.py); None for the hub's own repos.
    Column("upstream", String(512), nullable=True),
    UniqueConstraint("type", "key"),
    Index("ix_repos_type_last_modified", "type", "last_modified"),
    Index("ix_repos_type_created_at", "type", "created_at"),
    Index("ix_repos_type_downloads", "type", "downloads"),
    Index("ix_repos_type_likes", "type", "likes"),
    Index("ix_repos_type_trending_score", "type", "trending_score"),
    Index("ix_repos_change_seq", "change_seq"),
    Index("ix_repos_uid", "uid", unique=True),
    Index("ix_repos_resource_group_id", "resource_group_id"),
)

# Mirrored repos (services/mirror.py): when their refs were last compared with the upstream's,
# and what the last sync met. ``pins``: commits a client resolved by id, kept against gc even when
# no ref reaches them any more (pinned commits never go back upstream).
mirror_repos = Table(
    "mirror_repos",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("upstream_type", String(8), nullable=False),
    Column("upstream_id", String(200), nullable=False),
    Column("refs_checked_at", DateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # JSON list of the revisions whose files every sync fetches (``modelyard mirror``); None: on demand only
    Column("revisions", Text, nullable=True),
)

mirror_pins = Table(
    "mirror_pins",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("oid", String(40), primary_key=True),
)

# Old names of moved repos (rename or transfer): reads of an old name are redirected to the repo
# it points at, until a repo takes that name. Rows point at the repo itself, never at a name, so
# moving again cannot make a chain or a loop; ``repo_uid`` keeps a row from following a reused id.
repo_redirects = Table(
    "repo_redirects",
    metadata,
    Column("type", String(8), primary_key=True),
    Column("key", String(200), primary_key=True),  # lower("namespace/name") of the old name
    Column("namespace", String(96), nullable=False),  # the old name as it was written
    Column("name", String(96), nullable=False),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("repo_uid", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_repo_redirects_repo_id", "repo_id"),
)

repo_relations = Table(
    "repo_relations",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("base_key", String(200), primary_key=True),  # lower("namespace/name") of the base model
    Column("base_id", String(200), nullable=False),  # as written in the card
    Column("relation", String(16), nullable=False),  # adapter | merge | quantized | finetune
    Index("ix_repo_relations_base_key", "base_key"),
)

eval_results = Table(
    "eval_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("task_type", String(128), nullable=False),
    Column("dataset_type", String(256), nullable=False),
    Column("dataset_name", String(256), nullable=True),
    Column("dataset_config", String(256), nullable=True),
    Column("dataset_split", String(128), nullable=True),
    Column("metric_type", String(128), nullable=False),
    Column("metric_name", String(256), nullable=True),
    Column("metric_value", Float, nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Index("ix_eval_results_board", "task_type", "dataset_type", "metric_type", "metric_value"),
    Index("ix_eval_results_repo_id", "repo_id"),
)

likes = Table(
    "likes",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_likes_repo_id", "repo_id"),
)

# -- collections and follows (catalog/collections.py, catalog/people.py) --------------------------

collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    # The Hub's 24-hex object id: the stable end of the slug (``owner/title-slug-<oid>``).
    Column("oid", String(24), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(256), nullable=False),
    Column("title_key", String(256), nullable=False),  # the title's slug: one collection per title per owner
    Column("description", Text, nullable=True),
    Column("private", Boolean, nullable=False, default=False),
    Column("theme", String(16), nullable=False),
    Column("position", Integer, nullable=False),  # in the owner's list of collections
    Column("upvotes", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("owner_id", "title_key"),
)

collection_items = Table(
    "collection_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("oid", String(24), nullable=False, unique=True),  # the item's ``_id``
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("item_type", String(16), nullable=False),  # model | dataset | space | collection
    # What the item points at; deleting that repo or collection deletes the item with it.
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=True),
    Column("target_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=True),
    Column("item_key", String(32), nullable=False),  # "repo:<id>" | "collection:<id>": no duplicates
    Column("position", Integer, nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("collection_id", "item_key"),
    Index("ix_collection_items_repo_id", "repo_id"),
    Index("ix_collection_items_target_id", "target_id"),
)

#: Requests for access to a gated repo (``services/gating.py``): one per user and repo, its
#: status moved by the repo's writers; ``fields`` is the JSON of the card's form as submitted.
repo_access_requests = Table(
    "repo_access_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(8), nullable=False),  # pending | accepted | rejected
    Column("fields", Text, nullable=True),
    Column("rejection_reason", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("repo_id", "user_id"),
    Index("ix_repo_access_requests_user_id", "user_id"),
)

follows = Table(
    "follows",
    metadata,
    Column("follower_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("followed_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_follows_followed_id", "followed_id"),
)

download_days = Table(
    "download_days",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

download_marks = Table(
    "download_marks",
    metadata,
    # One row per (repo, client, time window) that counted a download: a client counts once per
    # period, however many requests it sends (services/tallies.py).
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("client", String(32), primary_key=True),
    Column("period", BigInteger, primary_key=True),
    Index("ix_download_marks_period", "period"),
)

events = Table(
    "events",
    metadata,
    # What happened to a repo (a ref moved, the repo was created or renamed), recorded in the
    # same transaction; the work that follows runs as jobs keyed by the event (services/jobs.py).
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # ref | repo | config | discussion | ...
    Column("ref", String(300), nullable=True),
    Column("old", String(40), nullable=True),
    Column("new", String(40), nullable=True),
    Column("actor_id", Integer, nullable=True),
    # What else the event's jobs need, as JSON (a discussion's number and the action, say).
    Column("data", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("done_at", DateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", DateTime, nullable=False),  # when the sweeper may enqueue it again
    Index("ix_events_pending", "done_at", "next_attempt_at"),
    Index("ix_events_repo_id", "repo_id"),
)

repo_sort_log = Table(
    "repo_sort_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the change that replaced these values
    Column("last_modified", DateTime, nullable=False),
    Column("downloads", BigInteger, nullable=False),
    Column("likes", Integer, nullable=False),
    Column("trending_score", Float, nullable=False),
    Column("at", DateTime, nullable=False),  # when the change happened; old rows are pruned
    Index("ix_repo_sort_log_repo_id_seq", "repo_id", "seq"),
    Index("ix_repo_sort_log_at", "at"),
)

catalog_counter = Table(
    "catalog_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
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

#: Large files a repository's owner permanently deleted (``lfs-files/batch``): the pointers stay in
#: history, the bytes are gone for this repository; ``/resolve`` answers 410 for them while the
#: repository does not hold the object again (a new upload of the same bytes brings it back).
repo_purged_lfs = Table(
    "repo_purged_lfs",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("purged_at", DateTime, nullable=False),
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
    # Pull requests: the branch they merge into (refs/heads/main) and, once merged, the commit
    # that brought their changes onto it.
    Column("base_ref", String(300), nullable=True),
    Column("merge_commit", String(40), nullable=True),
    UniqueConstraint("repo_id", "num"),
)

# What happened in a discussion or pull request, in order: comment, status-change, commit,
# title-change. ``data`` is JSON: a comment's latest text (raw and rendered html), hidden flag
# and edit stamp; a status; a commit's subject and oid; a title's from and to.
discussion_events = Table(
    "discussion_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("discussion_id", Integer, ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("author_id", Integer, ForeignKey("accounts.id"), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_discussion_events_discussion_id_id", "discussion_id", "id"),
)

# The earlier versions of an edited comment (the latest lives in its event's data).
discussion_comment_edits = Table(
    "discussion_comment_edits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("discussion_events.id", ondelete="CASCADE"), nullable=False),
    Column("discussion_id", Integer, ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", Integer, ForeignKey("accounts.id"), nullable=True),
    Column("raw", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_discussion_comment_edits_discussion_id", "discussion_id"),
    Index("ix_discussion_comment_edits_event_id", "event_id"),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

# -- Xet storage (see docs/xet.md) ------------------------------------------------------------------

xet_xorbs = Table(
    "xet_xorbs",
    metadata,
    Column("hash", String(64), primary_key=True),  # Xet hash string
    Column("num_chunks", Integer, nullable=False),
    Column("unpacked_size", BigInteger, nullable=False),
    Column("stored_size", BigInteger, nullable=False),  # bytes of the body in the blob store
    Column("chunks", LargeBinary, nullable=False),  # packed index: (hash, end offset, size) per chunk
    Column("created_at", DateTime, nullable=False),
)

xet_shards = Table(
    "xet_shards",
    metadata,
    Column("hash", String(64), primary_key=True),  # sha256 of the uploaded body
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

xet_files = Table(
    "xet_files",
    metadata,
    Column("hash", String(64), primary_key=True),  # Xet file hash string
    Column("sha256", String(64), nullable=False),  # verified by reading the file back at upload
    Column("size", BigInteger, nullable=False),
    Column("terms", LargeBinary, nullable=False),  # packed (xorb, chunk start, chunk end, size)
    Column("shard", String(64), ForeignKey("xet_shards.hash"), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_xet_files_sha256", "sha256"),
    Index("ix_xet_files_shard", "shard"),
)

xet_file_xorbs = Table(
    "xet_file_xorbs",
    metadata,
    Column("file_hash", String(64), ForeignKey("xet_files.hash", ondelete="CASCADE"), primary_key=True),
    Column("xorb_hash", String(64), ForeignKey("xet_xorbs.hash"), primary_key=True),
    Index("ix_xet_file_xorbs_xorb_hash", "xorb_hash"),
)

repo_xet_files = Table(
    "repo_xet_files",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("file_hash", String(64), ForeignKey("xet_files.hash"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("pushed_at", DateTime, nullable=False),
    Index("ix_repo_xet_files_file_hash", "file_hash"),
)

# Buckets (services/buckets.py): a bucket is a ``repos`` row of type ``bucket`` (its owner,
# visibility, resource group, uid and access checks are a repo's) whose files are a mutable map
# from paths to Xet files, without git history. Each file's Xet file is also held by the bucket
# in ``repo_xet_files`` (what the CAS reads and gc keep by).
bucket_files = Table(
    "bucket_files",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("xet_hash", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", BigInteger, nullable=True),  # the client's, in ms since the epoch
    Column("content_type", String(255), nullable=True),
    Column("uploaded_at", DateTime, nullable=False),
    Index("ix_bucket_files_xet_hash", "xet_hash"),
)

xet_dedup_chunks = Table(
    "xet_dedup_chunks",
    metadata,
    Column("chunk_hash", String(64), primary_key=True),
    Column("xorb_hash", String(64), ForeignKey("xet_xorbs.hash", ondelete="CASCADE"), nullable=False),
    Index("ix_xet_dedup_chunks_xorb_hash", "xorb_hash"),
)

# Webhooks: a user's subscription to the events of watched repos, users and orgs
# (services/webhooks.py). ``uid`` is the id the API shows (24 hex digits, like the Hub's).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", String(24), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(256), nullable=True),
    Column("domains", String(64), nullable=False),  # JSON list: repo, discussion
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_webhooks_owner_id", "owner_id"),
)

# What a webhook watches, by name as the Hub does: kind model|dataset|space (name "ns/repo"),
# user or org; ``name_key`` is the lower-cased name the fan-out matches on.
webhook_watches = Table(
    "webhook_watches",
    metadata,
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("name_key", String(200), primary_key=True),
    Column("name", String(200), nullable=False),
    Index("ix_webhook_watches_kind_name_key", "kind", "name_key"),
)

# One POST of one event to one webhook, durable until it succeeds or is given up. No foreign key
# to the repo or the event: deliveries of a deleted repo's last events still go out. Unique per
# (event, webhook) so a job that runs twice never sends an event twice.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_key", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON body, built when the event was handled
    Column("status", String(10), nullable=False),  # pending | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    # A sender that claimed the delivery holds it until then; past it, any sender may take it.
    Column("lease_until", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    UniqueConstraint("event_key", "webhook_id"),
    Index("ix_webhook_deliveries_webhook_id_status_id", "webhook_id", "status", "id"),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

# Every attempt of a delivery: the delivery log the API shows.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery_id", "delivery_id"),
)

# What loading a file would run (services/scans.py): one row per content and extension class,
# shared by every repo and revision holding that content. ``key`` is ``sha256:<hex>|<ext>`` for a
# large file (its LFS object) or ``git:<oid>|<ext>`` for a regular one.
file_scans = Table(
    "file_scans",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("status", String(10), nullable=False),  # queued | safe | caution | unsafe | error
    Column("report", Text, nullable=True),  # JSON: imports, messages, code layers
    Column("rules", String(128), nullable=True),  # the scanners and rules that made the report
    Column("path", Text, nullable=False),  # a path the content was committed under (its name)
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=True),  # where the bytes are: an LFS object ...
    Column("oid", String(40), nullable=True),  # ... or a git blob
    Column("xet_hash", String(64), nullable=True),  # (an LFS object uploaded through Xet: its xorbs)
    Column("queued_at", DateTime, nullable=False),
    Column("scanned_at", DateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    # A queued scan whose job was lost is queued again by the sweeper once this has passed.
    Column("lease_until", DateTime, nullable=True),
    Index("ix_file_scans_status_lease_until", "status", "lease_until"),
)

# The audit log (services/audit.py): security-relevant actions, appended in the transaction of
# the action itself and never changed. ``owner_id`` is the account (org or user) whose log shows
# the entry; the names are copied, so an entry outlives the accounts and repos it names.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("action", String(64), nullable=False),
    Column("owner_id", Integer, nullable=True),  # no foreign key: the log outlives the account
    Column("actor_id", Integer, nullable=True),
    Column("actor", String(96), nullable=False),  # a user name, or "cli" / "system"
    Column("subject", Text, nullable=False),  # what was acted on: "model:ns/name", a token or member name
    Column("details", Text, nullable=False),  # JSON
    Column("address", String(64), nullable=False),
    Index("ix_audit_events_owner_id_id", "owner_id", "id"),
    Index("ix_audit_events_at", "at"),
)

# A person's identity at an OpenID provider, linked to the hub user it signs in as (services/oidc.py).
external_identities = Table(
    "external_identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issuer", String(512), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("issuer", "subject"),
    Index("ix_external_identities_account_id", "account_id"),
)
