"""Discussions and pull requests: open, list, read, comment, edit, hide, rename, close, reopen.

Who may do what (``docs/security.md``): anyone who may read a repo may open a thread on it and
comment; the author of a comment may edit it; the author of a thread may rename, close and reopen
it (and push to their pull request, ``services/contributions.py``); write access is needed to
merge, to change others' threads and to hide comments. A private repo's threads do not exist for
outsiders: the repo is not found. Every change records a ``discussion`` event in its own
transaction for the webhook jobs. Merging and diffs are in ``services/merges.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import discussions as discussions_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog.discussions import CommentVersion, Thread, ThreadEvent
from modelyard.catalog.repos import Repo
from modelyard.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from modelyard.services.auth import Principal, can_write, check_contribute, check_write
from modelyard.services.contributions import (
    MAX_COMMENT,
    MAX_TITLE,
    comment_data,
    discussion_event,
    open_thread,
)
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.gating import has_access
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import DEFAULT_BRANCH, find_repo

__all__ = ["CommentVersion", "Thread", "ThreadEvent"]

#: Threads per page of ``GET .../discussions?p=N`` (the client follows ``start + len < count``).
PAGE_SIZE = 50
#: What a hidden comment shows instead of its text (which is gone for good, as on the Hub).
HIDDEN_TEXT = "This comment has been hidden"


class DiscussionNotFoundError(NotFoundError):
    """No discussion, pull request or comment of that number/id in the repo."""


class ThreadStateError(ConflictError):
    """The thread's status forbids the change (a merged pull request, an already closed one...)."""


@dataclass(frozen=True)
class Details:
    """A thread with its events, and for pull requests what the merge would be."""

    thread: Thread
    events: list[ThreadEvent]
    history: dict[int, list[CommentVersion]] = field(default_factory=dict)
    files_with_conflicts: list[str] = field(default_factory=list)
    diff: str | None = None


def event_id(raw: str) -> int:
    """The number of a comment id as the client sends it (24 lowercase hex digits)."""
    if len(raw) != 24 or any(c not in "0123456789abcdef" for c in raw.lower()):
        raise DiscussionNotFoundError(f"Comment {raw!r} not found")
    return int(raw, 16)


def _utf8(text: str, what: str) -> bytes:
    """The text as UTF-8; JSON can carry lone surrogates and NUL, which no database column takes."""
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"The {what} is not valid Unicode text") from exc
    if b"\x00" in encoded:
        raise InvalidInputError(f"The {what} cannot contain NUL characters")
    return encoded


def check_title(title: object) -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidInputError("A title must be a non-empty string")
    title = title.strip()
    _utf8(title, "title")
    if len(title) > MAX_TITLE:
        raise InvalidInputError(f"A title may hold at most {MAX_TITLE} characters")
    return title


def check_text(text: object, what: str = "comment", empty: bool = False) -> str:
    if not isinstance(text, str) or (not empty and not text.strip()):
        raise InvalidInputError(f"A {what} must be a non-empty string")
    if len(_utf8(text, what)) > MAX_COMMENT:
        raise InvalidInputError(f"A {what} may hold at most {MAX_COMMENT} bytes")
    return text


def find_thread(conn: Connection, repo: Repo, num: int, for_update: bool = False) -> Thread:
    """Thread ``num`` of the repo (locked for the transaction with ``for_update``), or 404."""
    thread = discussions_q.get(conn, repo.id, num, for_update) if 0 < num < 2**31 else None
    if thread is None:
        raise DiscussionNotFoundError(f"Discussion #{num} not found in {repo.repo_id}")
    return thread


def _author_or_writer(principal: Principal | None, repo: Repo, author_id: int | None, what: str) -> Principal:
    """The thread's (or comment's) author, or a writer of the repo."""
    caller = check_contribute(principal, repo)
    if author_id != caller.account_id and not can_write(principal, repo):
        raise PermissionDeniedError(f"Only its author or a writer of {repo.repo_id} may {what}")
    return caller


def authorize(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> None:
    """Before a body is read: the repo exists for the caller and they may contribute to it."""
    with hub.db.read() as conn:
        check_contribute(principal, find_repo(conn, principal, repo_type, repo_id))


# -- reading -----------------------------------------------------------------------------------


STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "all": None, "open": ("open", "draft"), "closed": ("closed", "merged"),
    "merged": ("merged",), "draft": ("draft",),
}
TYPE_FILTERS: dict[str, bool | None] = {"all": None, "discussion": False, "pull_request": True}


def list_threads(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, page: int, kind: str = "all",
    status: str = "all", author: str | None = None,
) -> tuple[list[Thread], int, int]:
    """A page of a repo's threads, newest first: (threads, how many match, offset of the page)."""
    if kind not in TYPE_FILTERS:
        raise InvalidInputError(f"type must be one of {', '.join(TYPE_FILTERS)}")
    if status not in STATUS_FILTERS:
        raise InvalidInputError(f"status must be one of {', '.join(STATUS_FILTERS)}")
    if page < 0 or page > 10**6:
        raise InvalidInputError("p must be a page number from 0")
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        author_id = None
        if author is not None:
            account = accounts_q.by_name(conn, author) if "\x00" not in author and len(author) <= 96 else None
            if account is None:
                return [], 0, page * PAGE_SIZE
            author_id = account.id
        threads, total = discussions_q.page(conn, repo.id, page * PAGE_SIZE, PAGE_SIZE, TYPE_FILTERS[kind],
                                            STATUS_FILTERS[status], author_id)
    return threads, total, page * PAGE_SIZE


def details(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, with_diff: bool = False,
) -> Details:
    """A thread and its events in a fixed number of statements; a pull request's conflicting
    files and (``with_diff``) its diff against the merge base are computed from the trees."""
    from modelyard.services.merges import pr_state  # merges builds on this module: imported late

    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        thread = find_thread(conn, repo, num)
        events = discussions_q.events(conn, thread.id)
        history: dict[int, list[CommentVersion]] = {}
        for version in discussions_q.versions(conn, thread.id):
            history.setdefault(version.event_id, []).append(version)
        heads = refs_q.all_refs(conn, repo.id) if thread.is_pull_request else {}
        # A diff shows file contents: on a gated repo only to who may download them (no "diff").
        with_diff = with_diff and has_access(conn, principal, repo)
    if not thread.is_pull_request:
        return Details(thread, events, history)
    conflicts, diff = pr_state(hub, thread, heads, events, with_diff)
    return Details(thread, events, history, conflicts, diff)


# -- writing -----------------------------------------------------------------------------------


def create(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, title: object, description: object,
    pull_request: bool,
) -> int:
    """Open a discussion, or a draft pull request whose ref ``refs/pr/N`` starts at the head of
    main; returns its number."""
    title = check_title(title)
    description = check_text(description if description is not None else "", "description", empty=True)
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        caller = check_contribute(principal, repo)
        refs_q.lock(conn, repo.id)  # numbers are handed out one at a time per repo
        base = f"refs/heads/{DEFAULT_BRANCH}"
        head = refs_q.get(conn, repo.id, base) if pull_request else None
        if pull_request and head is None:
            raise InvalidInputError(f"{repo.repo_id} has no {DEFAULT_BRANCH} branch to open a pull request on")
        _id, num, event = open_thread(hub, conn, repo, caller, title, description, pull_request, base)
        events = [event]
        if pull_request:
            ref = f"refs/pr/{num}"
            if not refs_q.compare_and_swap(conn, repo.id, ref, None, head):
                raise ConflictError(f"{ref} exists already")
            events.append(new_event(hub, conn, repo.id, "ref", ref, None, head, caller.account_id))
    for found in events:
        record_and_enqueue(hub, found)
    return num


def comment(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, text: object,
) -> ThreadEvent:
    """Add a comment; a merged or closed pull request takes none (reopen it first)."""
    text = check_text(text)
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        caller = check_contribute(principal, repo)
        thread = find_thread(conn, repo, num, for_update=True)
        if thread.is_pull_request and thread.status in ("merged", "closed"):
            raise ThreadStateError(f"Pull request #{num} is {thread.status}: it takes no more comments")
        new, event = add_comment(hub, conn, repo, thread, caller, text)
    record_and_enqueue(hub, event)
    return new


def add_comment(
    hub: Hub, conn: Connection, repo: Repo, thread: Thread, author: Principal, text: str,
) -> tuple[ThreadEvent, int]:
    """Record a comment and its repo event in the caller's transaction."""
    now = utcnow()
    new = discussions_q.add_event(conn, thread.id, "comment", author.account_id, now, comment_data(text, author, now))
    event = discussion_event(hub, conn, repo, author.account_id, thread.num, "create", "discussion.comment",
                             f"{new:024x}")
    found = discussions_q.event(conn, thread.id, new)
    assert found is not None
    return found, event


def rename(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, title: object,
) -> ThreadEvent:
    """Change a thread's title (its author or a writer)."""
    title = check_title(title)
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        thread = find_thread(conn, repo, num, for_update=True)
        caller = _author_or_writer(principal, repo, thread.author_id, "rename it")
        discussions_q.update_thread(conn, thread.id, title=title)
        new = discussions_q.add_event(conn, thread.id, "title-change", caller.account_id, utcnow(),
                                      {"from": thread.title, "to": title})
        event = discussion_event(hub, conn, repo, caller.account_id, num, "update")
        found = discussions_q.event(conn, thread.id, new)
    record_and_enqueue(hub, event)
    assert found is not None
    return found


def change_status(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, status: object,
    text: object = None,
) -> ThreadEvent:
    """Close or (re)open a thread (its author or a writer), with an optional comment. A draft
    pull request is published by opening it; a merged one never changes again."""
    if status not in ("open", "closed"):
        raise InvalidInputError("status must be 'open' or 'closed'")
    text = check_text(text) if text is not None else None
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        thread = find_thread(conn, repo, num, for_update=True)
        caller = _author_or_writer(principal, repo, thread.author_id, "change its status")
        if thread.status == "merged":
            raise ThreadStateError(f"Pull request #{num} is merged: its status cannot change")
        if thread.status == status:
            raise ThreadStateError(f"#{num} is {status} already")
        now = utcnow()
        discussions_q.update_thread(conn, thread.id, status=status)
        new = discussions_q.add_event(conn, thread.id, "status-change", caller.account_id, now, {"status": status})
        events = [discussion_event(hub, conn, repo, caller.account_id, num, "update")]
        if text is not None:
            events.append(add_comment(hub, conn, repo, thread, caller, text)[1])
        found = discussions_q.event(conn, thread.id, new)
    for event in events:
        record_and_enqueue(hub, event)
    assert found is not None
    return found


def _comment(conn: Connection, thread: Thread, comment_id: str) -> ThreadEvent:
    found = discussions_q.event(conn, thread.id, event_id(comment_id))
    if found is None or found.type != "comment":
        raise DiscussionNotFoundError(f"Comment {comment_id!r} not found in #{thread.num}")
    return found


def edit_comment(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, comment_id: str, text: object,
) -> tuple[ThreadEvent, list[CommentVersion]]:
    """Replace a comment's text (its author only); the replaced version joins its history."""
    text = check_text(text)
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        caller = check_contribute(principal, repo)
        thread = find_thread(conn, repo, num, for_update=True)
        old = _comment(conn, thread, comment_id)
        if old.author_id != caller.account_id:
            raise PermissionDeniedError("Only its author may edit a comment")
        if old.data.get("hidden"):
            raise ThreadStateError("A hidden comment cannot be edited")
        discussions_q.add_version(conn, thread.id, old.id, old.data.get("editorId", old.author_id),
                                  old.data["raw"], old.data["html"], _updated_at(old))
        now = utcnow()
        data = comment_data(text, caller, now) | {"edited": True}
        discussions_q.set_event_data(conn, old.id, data)
        event = discussion_event(hub, conn, repo, caller.account_id, num, "update", "discussion.comment",
                                 f"{old.id:024x}")
        found = discussions_q.event(conn, thread.id, old.id)
        history = discussions_q.versions(conn, thread.id, old.id)
    record_and_enqueue(hub, event)
    assert found is not None
    return found, history


def _updated_at(event: ThreadEvent) -> datetime:
    stamp = event.data.get("updatedAt")
    return datetime.fromisoformat(stamp) if isinstance(stamp, str) else event.created_at


def hide_comment(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, comment_id: str,
) -> ThreadEvent:
    """Hide a comment (a writer of the repo): its text and history are dropped for good."""
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        thread = find_thread(conn, repo, num, for_update=True)
        old = _comment(conn, thread, comment_id)
        check_write(principal, repo)
        assert principal is not None
        if old.data.get("hidden"):
            raise ThreadStateError("This comment is hidden already")
        data = comment_data(HIDDEN_TEXT, principal, utcnow()) | {
            "hidden": True, "edited": bool(old.data.get("edited")), "hiddenBy": principal.account_id}
        discussions_q.set_event_data(conn, old.id, data)
        discussions_q.drop_versions(conn, old.id)
        event = discussion_event(hub, conn, repo, principal.account_id, num, "update", "discussion.comment",
                                 f"{old.id:024x}")
        found = discussions_q.event(conn, thread.id, old.id)
    record_and_enqueue(hub, event)
    assert found is not None
    return found

