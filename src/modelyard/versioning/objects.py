"""Encoding and hashing of git objects, delegated to dulwich."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tree

from modelyard.ids import Oid

BLOB, TREE, COMMIT = Blob.type_num, Tree.type_num, Commit.type_num
FILE_MODE = 0o100644
DIR_MODE = 0o040000


class ObjectReader(Protocol):
    """Looks up git objects by id; raises KeyError for a missing one."""

    def get(self, oid: Oid) -> ShaFile: ...


@dataclass(frozen=True)
class RawObject:
    """A git object as it is stored: its id, type number and raw (uncompressed) body."""

    oid: Oid
    type_num: int
    data: bytes


def raw(obj: ShaFile) -> RawObject:
    return RawObject(Oid(obj.id.decode()), obj.type_num, obj.as_raw_string())


def parse(type_num: int, data: bytes, oid: str) -> ShaFile:
    return ShaFile.from_raw_string(type_num, data, sha=ObjectID(oid.encode()))


def make_blob(data: bytes) -> Blob:
    return Blob.from_string(data)


@dataclass(frozen=True)
class Signature:
    name: str
    email: str

    def encode(self) -> bytes:
        name = self.name.replace("<", "").replace(">", "").replace("\n", " ")
        email = self.email.replace("<", "").replace(">", "").replace("\n", " ")
        return f"{name} <{email}>".encode()


def make_commit(
    tree: Oid,
    parents: list[Oid],
    author: Signature,
    message: str,
    when: datetime | None = None,
) -> Commit:
    when = when or datetime.now(UTC)
    commit = Commit()
    commit.tree = ObjectID(tree.encode())
    commit.parents = [ObjectID(p.encode()) for p in parents]
    commit.author = commit.committer = author.encode()
    commit.author_time = commit.commit_time = int(when.timestamp())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message.encode("utf-8")
    return commit


@dataclass(frozen=True)
class CommitInfo:
    """The parts of a commit object the API serves."""

    oid: Oid
    tree: Oid
    parents: tuple[Oid, ...]
    author_name: str
    author_email: str
    date: datetime
    title: str
    message: str


def commit_info(commit: Commit) -> CommitInfo:
    author = commit.author.decode("utf-8", "replace")
    name, _, rest = author.partition(" <")
    message = commit.message.decode("utf-8", "replace")
    title, _, body = message.partition("\n")
    return CommitInfo(
        oid=Oid(commit.id.decode()),
        tree=Oid(commit.tree.decode()),
        parents=tuple(Oid(p.decode()) for p in commit.parents),
        author_name=name,
        author_email=rest.rstrip(">"),
        date=datetime.fromtimestamp(commit.commit_time, UTC),
        title=title.strip(),
        message=body.strip(),
    )
