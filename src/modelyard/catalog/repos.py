"""Repositories and their catalog columns."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from modelyard.catalog.database import Database
from modelyard.catalog.lfs_files import download_fact_columns
from modelyard.catalog.tables import refs, repo_lfs_objects, repo_xet_files, repos


@dataclass(frozen=True)
class RepoHead:
    """What access checks and the download path need of a repo: a narrow row, nothing parsed."""

    id: int
    type: str
    namespace: str
    name: str
    owner_id: int
    private: bool
    gated: str | None
    #: the resource group the repo is in (services/groups.py), and who created it
    resource_group_id: int | None = field(default=None, kw_only=True)
    creator_id: int | None = field(default=None, kw_only=True)
    #: the upstream hub this repo mirrors (services/mirror.py); None for the hub's own repos
    upstream: str | None = field(default=None, kw_only=True)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Repo(RepoHead):
    created_at: datetime
    last_modified: datetime
    used_storage: int
    downloads: int
    downloads_all_time: int
    likes: int
    trending_score: float
    card_data: dict[str, Any] | None
    tags: list[str]
    library_name: str | None
    pipeline_tag: str | None
    num_parameters: int | None = None
    safetensors: dict[str, Any] | None = None
    gguf: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    transformers_info: dict[str, Any] | None = None
    card_errors: list[str] | None = None
    indexed_commit: str | None = None
    uid: str = ""  # never reused, unlike ``id`` (see tables.repos)


def _repo(row: Any) -> Repo:
    return Repo(
        id=row.id,
        type=row.type,
        namespace=row.namespace,
        name=row.name,
        owner_id=row.owner_id,
        private=bool(row.private),
        gated=row.gated,
        created_at=row.created_at,
        last_modified=row.last_modified,
        used_storage=row.used_storage,
        downloads=row.downloads,
        downloads_all_time=row.downloads_all_time,
        likes=row.likes,
        trending_score=row.trending_score,
        card_data=json.loads(row.card_data) if row.card_data else None,
        tags=json.loads(row.tags or "[]"),
        library_name=row.library_name,
        pipeline_tag=row.pipeline_tag,
        num_parameters=row.num_parameters,
        safetensors=_load(row.safetensors),
        gguf=_load(row.gguf),
        config=_load(row.config),
        transformers_info=_load(row.transformers_info),
        card_errors=_load(row.card_errors),
        indexed_commit=row.indexed_commit,
        uid=row.uid,
        resource_group_id=row.resource_group_id,
        creator_id=row.creator_id,
        upstream=row.upstream,
    )


def _load(value: str | None) -> Any:
    return json.loads(value) if value else None


def repo_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}".lower()


def get(conn: Connection, repo_type: str, namespace: str, name: str) -> Repo | None:
    if "\x00" in namespace or "\x00" in name:  # never stored; PostgreSQL refuses NUL in a query
        return None
    row = conn.execute(_BY_KEY, {"type": repo_type, "key": repo_key(namespace, name)}).first()
    return None if row is None else _repo(row)


# Built once: every request looks a repo up, and building the statement costs more than running it.
_BY_KEY = select(repos).where(repos.c.type == bindparam("type"), repos.c.key == bindparam("key"))


@dataclass(frozen=True)
class HeadAndRefs:
    repo: RepoHead
    targets: list[str | None]  # of the refs asked for, in their order
    #: for the large file ``sha256`` asked about: its Xet hash in this repo (None: LFS only),
    #: and whether the repo's owner purged it (``lfs_files.download_facts``)
    xet_hash: str | None
    purged: bool


def head_and_refs(
    conn: Connection, repo_type: str, namespace: str, name: str, ref_names: tuple[str, ...], sha256: str = ""
) -> HeadAndRefs | None:
    """A repo's narrow row, the targets of up to two of its refs and the download facts of a
    large file, in one statement (the download path's one round trip to the database)."""
    if "\x00" in namespace or "\x00" in name:  # never stored; PostgreSQL refuses NUL in a query
        return None
    names = (*("" if "\x00" in r else r for r in ref_names), "", "")[:2]  # "": no ref has that name
    row = conn.execute(_HEAD_AND_REFS, {"type": repo_type, "key": repo_key(namespace, name),
                                        "ref0": names[0], "ref1": names[1], "sha256": sha256}).first()
    if row is None:
        return None
    head = RepoHead(id=row.id, type=row.type, namespace=row.namespace, name=row.name, owner_id=row.owner_id,
                    private=bool(row.private), gated=row.gated, resource_group_id=row.resource_group_id,
                    creator_id=row.creator_id, upstream=row.upstream)
    return HeadAndRefs(head, [row.target0, row.target1][: len(ref_names)],
                       None if row.xet is None else str(row.xet), bool(row.purged))


def _ref_target(param: str, label: str) -> Any:
    return (
        select(refs.c.target).where(refs.c.repo_id == repos.c.id, refs.c.name == bindparam(param))
        .scalar_subquery().label(label)
    )


_HEAD_AND_REFS = select(
    repos.c.id, repos.c.type, repos.c.namespace, repos.c.name, repos.c.owner_id, repos.c.private, repos.c.gated,
    repos.c.resource_group_id, repos.c.creator_id, repos.c.upstream, _ref_target("ref0", "target0"),
    _ref_target("ref1", "target1"),
    *download_fact_columns(repos.c.id, bindparam("sha256")),
).where(repos.c.type == bindparam("type"), repos.c.key == bindparam("key"))


def get_by_id(conn: Connection, repo_id: int) -> Repo | None:
    row = conn.execute(select(repos).where(repos.c.id == repo_id)).first()
    return None if row is None else _repo(row)


def create(
    conn: Connection,
    *,
    repo_type: str,
    namespace: str,
    name: str,
    owner_id: int,
    private: bool,
    now: datetime,
    created_seq: int,
    creator_id: int | None = None,
    resource_group_id: int | None = None,
    upstream: str | None = None,
) -> int:
    result = conn.execute(
        insert(repos).values(
            uid=secrets.token_hex(16),
            type=repo_type,
            namespace=namespace,
            name=name,
            key=repo_key(namespace, name),
            owner_id=owner_id,
            private=private,
            created_at=now,
            last_modified=now,
            used_storage=0,
            downloads=0,
            downloads_all_time=0,
            likes=0,
            trending_score=0.0,
            tags="[]",
            created_seq=created_seq,
            change_seq=created_seq,
            creator_id=creator_id,
            resource_group_id=resource_group_id,
            upstream=upstream,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def bump_refs_version(conn: Connection, repo_id: int) -> None:
    """Tell gc that what the repo holds changed (a bucket's files: services/buckets.py)."""
    conn.execute(update(repos).where(repos.c.id == repo_id).values(refs_version=repos.c.refs_version + 1))


def delete_repo(conn: Connection, repo_id: int) -> None:
    conn.execute(delete(repos).where(repos.c.id == repo_id))


def update_repo(conn: Connection, repo_id: int, **values: Any) -> None:
    if "namespace" in values and "name" in values:
        values["key"] = repo_key(values["namespace"], values["name"])
    conn.execute(update(repos).where(repos.c.id == repo_id).values(**values))


def has_lfs_object(conn: Connection, repo_id: int, sha256: str) -> int | None:
    """The size of a large file this repo holds (uploaded by LFS or through Xet), or None."""
    row = conn.execute(
        select(repo_lfs_objects.c.size).where(
            repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.sha256 == sha256
        )
    ).first()
    if row is None:
        row = conn.execute(
            select(repo_xet_files.c.size).where(repo_xet_files.c.repo_id == repo_id, repo_xet_files.c.sha256 == sha256)
        ).first()
    return None if row is None else int(row.size)


def add_lfs_object(db: Database, conn: Connection, repo_id: int, sha256: str, size: int, now: datetime) -> None:
    conn.execute(
        db.insert_ignore(repo_lfs_objects),
        [{"repo_id": repo_id, "sha256": sha256, "size": size, "pushed_at": now}],
    )


def by_ids(conn: Connection, repo_ids: list[int]) -> dict[int, Repo]:
    """Many repos by id in one statement (the items of a page of collections)."""
    if not repo_ids:
        return {}
    return {row.id: _repo(row) for row in conn.execute(select(repos).where(repos.c.id.in_(set(repo_ids))))}
