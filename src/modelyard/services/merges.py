"""Pull requests against their base branch: diff, conflicts, merge.

A pull request's changes are those of ``refs/pr/N`` since its merge base with the base branch.
Merging fast-forwards the base branch when it has not moved since (the merge base is its head);
otherwise the two sides are compared file by file from the merge base: a path both changed to
different results is a conflict (listed, nothing merged), anything else is applied onto the base
branch's tree and committed with both heads as parents. The ref moves by compare-and-swap, and
the status ``merged`` and ``mergeCommitId`` are written in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection

from modelyard.catalog import discussions as discussions_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import search as search_q
from modelyard.catalog.discussions import Thread, ThreadEvent
from modelyard.errors import ConflictError
from modelyard.ids import Oid
from modelyard.services.auth import Principal, check_write
from modelyard.services.commits import NOREPLY_DOMAIN
from modelyard.services.discussions import ThreadStateError, add_comment, check_text, find_thread
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import DEFAULT_BRANCH, find_repo
from modelyard.versioning.diff import apply_changes, changed_files, conflicts, merge_base, tree_of, unified_diff
from modelyard.versioning.objects import Signature, make_commit, raw

#: A diff longer than this is cut (the client shows it; nobody reads megabytes of it).
MAX_DIFF = 1024 * 1024


class MergeConflictError(ConflictError):
    """The base branch changed the same files as the pull request."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


def _conflicts(hub: Hub, base: Oid | None, base_head: Oid, pr_head: Oid) -> list[str]:
    """The files that both the base branch and the pull request changed since ``base``, differently."""
    if base is None or base in (base_head, pr_head):
        return []
    root = tree_of(hub.objects, base)
    ours = changed_files(hub.objects, root, tree_of(hub.objects, base_head))
    theirs = changed_files(hub.objects, root, tree_of(hub.objects, pr_head))
    return conflicts(ours, theirs)


def pr_state(
    hub: Hub, thread: Thread, heads: dict[str, str], events: list[ThreadEvent], with_diff: bool,
) -> tuple[list[str], str | None]:
    """(files with conflicts, diff or None) of a pull request, from the repo's refs ``heads``.
    A merged one has no conflicts, and its diff is against the merge base it was merged from."""
    pr_head = heads.get(f"refs/pr/{thread.num}")
    base_head = heads.get(thread.base_ref or f"refs/heads/{DEFAULT_BRANCH}")
    if pr_head is None or base_head is None:
        return [], "" if with_diff else None
    if thread.status == "merged":
        recorded = [e.data.get("base") for e in events
                    if e.type == "status-change" and e.data.get("status") == "merged"]
        base = Oid(recorded[-1]) if recorded and recorded[-1] else None
        files: list[str] = []
    else:
        base = merge_base(hub.objects, Oid(base_head), Oid(pr_head))
        files = _conflicts(hub, base, Oid(base_head), Oid(pr_head))
    if not with_diff:
        return files, None
    old = tree_of(hub.objects, base) if base else None
    return files, unified_diff(hub.objects, old, tree_of(hub.objects, Oid(pr_head)), MAX_DIFF)


def merge(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int, text: object = None,
) -> Oid:
    """Merge pull request ``num`` into its base branch (a writer); returns the new head."""
    text = check_text(text) if text is not None else None
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        # The repo's row lock first, then the thread's: the order a commit to refs/pr/N takes
        # them (it adds a commit event to the thread), so the two never wait for each other.
        refs_q.lock(conn, repo.id)
        thread = find_thread(conn, repo, num, for_update=True)
        check_write(principal, repo)
        assert principal is not None
        if not thread.is_pull_request:
            raise ThreadStateError(f"#{num} is a discussion, not a pull request")
        if thread.status in ("merged", "closed"):
            raise ThreadStateError(f"Pull request #{num} is {thread.status}: reopen it to merge it")
        base_ref = thread.base_ref or f"refs/heads/{DEFAULT_BRANCH}"
        pr_head, base_head = refs_q.get(conn, repo.id, f"refs/pr/{num}"), refs_q.get(conn, repo.id, base_ref)
        if pr_head is None or base_head is None:
            raise ThreadStateError(f"Pull request #{num} or its base {base_ref} has no commits")
        new_head, base = _merged_head(hub, conn, repo.id, thread, Oid(base_head), Oid(pr_head), principal)
        if not refs_q.compare_and_swap(conn, repo.id, base_ref, base_head, new_head):
            raise ConflictError(f"{base_ref} moved while merging; try again")
        now = utcnow()
        if base_ref == f"refs/heads/{DEFAULT_BRANCH}":
            search_q.change_sort_keys(conn, repo.id, last_modified=now)
        discussions_q.update_thread(conn, thread.id, status="merged", merge_commit=new_head)
        discussions_q.add_event(conn, thread.id, "status-change", principal.account_id, now,
                                {"status": "merged", "base": base})
        events = [new_event(hub, conn, repo.id, "ref", base_ref, base_head, new_head, principal.account_id),
                  new_event(hub, conn, repo.id, "discussion", actor_id=principal.account_id,
                            data={"num": num, "action": "update", "scope": "discussion", "comment_id": None})]
        if text is not None:
            events.append(add_comment(hub, conn, repo, thread, principal, text)[1])
    for event in events:
        record_and_enqueue(hub, event)
    return new_head


def _merged_head(
    hub: Hub, conn: Connection, repo_pk: int, thread: Thread, base_head: Oid, pr_head: Oid, principal: Principal,
) -> tuple[Oid, Oid | None]:
    """The base branch's new head, the PR's head (fast-forward) or a new merge commit, and the
    merge base it was computed from."""
    base = merge_base(hub.objects, base_head, pr_head)
    root = tree_of(hub.objects, base) if base else None
    theirs = changed_files(hub.objects, root, tree_of(hub.objects, pr_head)) if base != pr_head else {}
    if not theirs:
        raise ThreadStateError(f"Pull request #{thread.num} has no changes to merge")
    if base == base_head:
        return pr_head, base  # fast-forward
    files = _conflicts(hub, base, base_head, pr_head)
    if files:
        raise MergeConflictError(
            f"Pull request #{thread.num} conflicts with {thread.base_ref}: {', '.join(files[:20])}", files)
    tree, trees = apply_changes(hub.objects, tree_of(hub.objects, base_head), theirs).write()
    author = Signature(principal.fullname or principal.name, f"{principal.name}{NOREPLY_DOMAIN}")
    commit = raw(make_commit(tree, [base_head, pr_head], author, f"Merge pull request #{thread.num}: {thread.title}"))
    new = [(t.oid, t.type_num, t.data, None, None) for t in trees]
    new.append((commit.oid, commit.type_num, commit.data, None, None))
    objects_q.put_many(hub.db, conn, new)
    objects_q.add_repo_commit(hub.db, conn, repo_pk, commit.oid, utcnow())
    return commit.oid, base
