"""Who may change which ref: writers any branch, contributors their own pull requests.

Anyone who may read a repo may open a pull request on it (``create_commit(create_pr=True)``) and
push further commits to ``refs/pr/N`` while that pull request is theirs and still open; every
other ref needs write access. Checked before a commit's body is read, again inside its
transaction, and when a Xet write token is issued.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.catalog import discussions as discussions_q
from modelyard.catalog.repos import Repo
from modelyard.errors import ConflictError
from modelyard.services.auth import Principal, can_write, check_contribute, check_write
from modelyard.services.events import new_event
from modelyard.services.hub import Hub, utcnow
from modelyard.services.markdown import render

PR_REF = re.compile(r"refs/pr/([1-9][0-9]{0,8})")


class PullRequestClosedError(ConflictError):
    """Commits to a merged or closed pull request are refused."""


def pr_number(ref: str) -> int | None:
    """N of ``refs/pr/N``, else None."""
    m = PR_REF.fullmatch(ref)
    return int(m.group(1)) if m else None


def check_push(conn: Connection, principal: Principal | None, repo: Repo, ref: str, create_pr: bool) -> bool:
    """May the caller commit to ``ref`` (or open a pull request from it)? Raises the usual
    errors if not; True when they may only as a contributor (not a writer of the repo)."""
    num = pr_number(ref)
    if num is not None and not create_pr:
        found = discussions_q.author_of_pr(conn, repo.id, num)
        if found is not None and found[1] in ("merged", "closed"):
            raise PullRequestClosedError(f"Pull request #{num} is {found[1]}: it takes no more commits")
    else:
        found = None
    if can_write(principal, repo):
        return False
    contributor = check_contribute(principal, repo)
    if create_pr or (found is not None and found[0] == contributor.account_id):
        return True
    check_write(principal, repo)  # raises: a branch, or somebody else's pull request
    return False


# -- threads written by commits ----------------------------------------------------------------

#: Titles of discussions and pull requests, and comments: the Hub's bounds (3 to 200 characters
#: for a title in its client's docs; we take 1) and a generous one for a comment.
MAX_TITLE = 200
MAX_COMMENT = 64 * 1024


def comment_data(raw: str, editor: Principal, when: datetime) -> dict[str, Any]:
    """What a comment event stores: its latest text, raw and rendered, and who wrote it when."""
    return {"raw": raw, "html": render(raw), "hidden": False, "edited": False,
            "updatedAt": when.isoformat(), "editorId": editor.account_id, "editor": editor.name}


def discussion_event(
    hub: Hub, conn: Connection, repo: Repo, actor_id: int | None, num: int, action: str, scope: str = "discussion",
    comment_id: str | None = None,
) -> int:
    """The repo event a discussion change records for its jobs (webhook deliveries)."""
    return new_event(hub, conn, repo.id, "discussion", actor_id=actor_id,
                     data={"num": num, "action": action, "scope": scope, "comment_id": comment_id})


def open_thread(
    hub: Hub, conn: Connection, repo: Repo, author: Principal, title: str, description: str, pull_request: bool,
    base_ref: str | None,
) -> tuple[int, int, int]:
    """A new discussion or (draft) pull request with its opening comment, numbered next in the
    repo: (thread id, number, repo event id). The caller holds the repo's row lock."""
    now = utcnow()
    num = discussions_q.next_num(conn, repo.id)
    thread = discussions_q.create(conn, repo.id, num, title, pull_request, "draft" if pull_request else "open",
                                  author.account_id, now, base_ref if pull_request else None)
    if description:
        discussions_q.add_event(conn, thread, "comment", author.account_id, now, comment_data(description, author, now))
    return thread, num, discussion_event(hub, conn, repo, author.account_id, num, "create")


def note_commit(conn: Connection, repo: Repo, ref: str, oid: str, subject: str, author_id: int) -> None:
    """A commit pushed to ``refs/pr/N`` appears in the pull request as a ``commit`` event."""
    num = pr_number(ref)
    thread = discussions_q.get(conn, repo.id, num) if num is not None else None
    if thread is not None and thread.is_pull_request:
        discussions_q.add_event(conn, thread.id, "commit", author_id, utcnow(), {"subject": subject, "oid": oid})
