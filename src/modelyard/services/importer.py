"""``modelyard import``: commit a local folder, large files into LFS storage."""

from __future__ import annotations

from pathlib import Path

from modelyard.errors import RepoNotFoundError
from modelyard.ids import Oid, validate_path
from modelyard.services.auth import principal_for
from modelyard.services.commits import AddFile, AddLfsFile, CommitRequest, Operation, create_commit
from modelyard.services.hub import Hub
from modelyard.services.lfs import finish_upload
from modelyard.services.repos import create_repo, find_repo
from modelyard.versioning.lfs import DEFAULT_GITATTRIBUTES, lfs_patterns, matches_lfs

CHUNK = 1024 * 1024


def import_folder(
    hub: Hub, directory: Path, repo_id: str, repo_type: str, private: bool, message: str | None, user: str,
) -> Oid:
    principal = principal_for(hub, user)
    namespace, name = repo_id.split("/", 1) if "/" in repo_id else (None, repo_id)
    try:
        with hub.db.read() as conn:
            repo = find_repo(conn, principal, repo_type, f"{namespace or user}/{name}")
    except RepoNotFoundError:
        repo = create_repo(hub, principal, repo_type, namespace, name, private, lambda t, r: r)
    patterns = lfs_patterns(DEFAULT_GITATTRIBUTES)
    ops: list[Operation] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel.startswith(".git/") or "/.git/" in rel:
            continue
        validate_path(rel)
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(512)
        if size >= hub.settings.lfs_threshold or matches_lfs(rel, patterns) or b"\x00" in head:
            writer = hub.blobs.writer()
            with open(path, "rb") as f:
                while data := f.read(CHUNK):
                    writer.write(data)
            digest = writer.digest()
            finish_upload(hub, writer, repo.id, digest.sha256, digest.size)
            ops.append(AddLfsFile(rel, digest.sha256, digest.size))
        else:
            ops.append(AddFile(rel, path.read_bytes()))
    req = CommitRequest(message or f"Import {directory.name}", operations=ops)
    return create_commit(hub, principal, repo_type, repo.repo_id, "main", req).oid
