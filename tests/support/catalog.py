"""Fast seeding of a large catalog straight into the database (test set-up only).

Creating 10,000 repos through the API would take minutes; these rows are what `create_repo`
writes (the repo, its main ref pointing at a real initial commit, the commit it owns), so the
server then serves and commits to them like any other repo.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from modelyard.catalog import search as search_q
from modelyard.catalog.database import Database
from modelyard.catalog.tables import accounts, git_objects, refs, repo_commits, repos
from modelyard.versioning.lfs import DEFAULT_GITATTRIBUTES
from modelyard.versioning.objects import Signature, make_blob, make_commit, raw
from modelyard.versioning.trees import TreeEditor


class _NoObjects:
    def get(self, oid: str) -> object:
        raise KeyError(oid)


def bulk_create_repos(database_url: str, namespace: str, names: list[str]) -> None:
    db = Database(database_url)
    blob = make_blob(DEFAULT_GITATTRIBUTES)
    editor = TreeEditor(_NoObjects(), None)  # type: ignore[arg-type]
    editor.put_file(".gitattributes", blob.id.decode())  # type: ignore[arg-type]
    tree, trees = editor.write()
    commit = raw(make_commit(tree, [], Signature("system", "system@modelyard.local"), "initial commit"))
    objs = [raw(blob), *trees, commit]
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    try:
        with db.write() as conn:
            conn.execute(db.insert_ignore(git_objects), [
                {"oid": o.oid, "type": o.type_num, "size": len(o.data), "data": o.data,
                 "lfs_sha256": None, "lfs_size": None} for o in objs
            ])
            owner = conn.execute(select(accounts.c.id).where(accounts.c.name_lower == namespace.lower())).scalar_one()
            first = search_q.next_seq(conn)
            for _ in range(len(names) - 1):
                search_q.next_seq(conn)
            rows = [{
                "uid": uuid.uuid4().hex, "type": "model", "namespace": namespace, "name": name,
                "key": f"{namespace}/{name}".lower(),
                "owner_id": owner, "private": False, "created_at": base + timedelta(seconds=i),
                "last_modified": base + timedelta(seconds=i), "used_storage": len(DEFAULT_GITATTRIBUTES),
                "downloads": 0, "downloads_all_time": 0, "likes": 0, "trending_score": 0.0, "tags": "[]",
                "created_seq": first + i, "change_seq": first + i,
            } for i, name in enumerate(names)]
            conn.execute(insert(repos), rows)
            ids = dict(conn.execute(
                select(repos.c.name, repos.c.id).where(repos.c.key.in_([r["key"] for r in rows]))
            ).all())
            conn.execute(insert(refs), [{"repo_id": ids[n], "name": "refs/heads/main", "target": commit.oid}
                                        for n in names])
            conn.execute(insert(repo_commits), [{"repo_id": ids[n], "oid": commit.oid, "created_at": base}
                                                for n in names])
            conn.execute(update(repos).where(repos.c.id.in_(list(ids.values()))).values(indexed_commit=commit.oid))
            for name in names:  # what the indexer would write for a repo with only .gitattributes
                search_q.set_search_text(db, conn, ids[name], f"{namespace} {name} {namespace}/{name}", "")
    finally:
        db.dispose()
