"""Discussions through the real ``HfApi``: every method, as its docstring says, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.community import DiscussionComment, DiscussionStatusChange, DiscussionTitleChange
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import TOKENS, LiveServer


@pytest.fixture
def repo(api: HfApi, repo_name: str) -> str:
    rid = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="a.txt", repo_id=rid)
    return rid


def refused(info: pytest.ExceptionInfo[HfHubHTTPError], status: int, code: str | None = None) -> None:
    assert info.value.response.status_code == status, info.value.response.text
    if code is not None:
        assert info.value.response.headers["X-Error-Code"] == code


def test_create_and_read_a_discussion(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str) -> None:
    bob = api_as("bob")
    opened = bob.create_discussion(repo, "  A question  ", description="Does **it** work?")
    assert opened.num == 1 and opened.title == "A question" and opened.status == "open"
    assert opened.author == "bob" and not opened.is_pull_request and opened.repo_id == repo
    assert opened.target_branch is None and opened.conflicting_files is None and opened.diff is None
    [first] = opened.events
    assert isinstance(first, DiscussionComment)
    assert first.content == "Does **it** work?" and first.author == "bob"
    assert "<strong>it</strong>" in first.rendered
    assert not first.edited and not first.hidden
    again = api_as(None).get_discussion_details(repo, 1)
    assert again.title == "A question" and [e.id for e in again.events] == [first.id]


def test_dataset_discussions(api: HfApi, repo_name: str) -> None:
    rid = api.create_repo(repo_name, repo_type="dataset").repo_id
    opened = api.create_discussion(rid, "About the data", repo_type="dataset")
    assert opened.repo_type == "dataset" and opened.url.endswith(f"/datasets/{rid}/discussions/1")
    assert [d.title for d in api.get_repo_discussions(rid, repo_type="dataset")] == ["About the data"]
    with pytest.raises(RepositoryNotFoundError):  # a model of that name does not exist
        api.get_discussion_details(rid, 1)


def test_comment_edit_hide(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str) -> None:
    bob = api_as("bob")
    num = bob.create_discussion(repo, "Typo").num
    said = bob.comment_discussion(repo, num, "first <script>alert(1)</script>[x](javascript:alert(2))")
    assert isinstance(said, DiscussionComment) and said.author == "bob"
    assert "<script" not in said.rendered and 'href="javascript' not in said.rendered
    assert said.content.startswith("first <script>")  # raw stays as written
    edited = bob.edit_discussion_comment(repo, num, said.id, "second")
    assert edited.content == "second" and edited.edited and edited.id == said.id
    assert [h["raw"] for h in edited.edit_history] == ["second", said.content]
    # somebody else may not edit it, not even a writer of the repo
    with pytest.raises(HfHubHTTPError) as info:
        api.edit_discussion_comment(repo, num, said.id, "hijack")
    refused(info, 403)
    with pytest.raises(HfHubHTTPError) as info:  # only writers hide
        bob.hide_discussion_comment(repo, num, said.id)
    refused(info, 403)
    hidden = api.hide_discussion_comment(repo, num, said.id)
    assert hidden.hidden and "second" not in hidden.content
    details = api.get_discussion_details(repo, num)
    [comment] = [e for e in details.events if e.id == said.id]
    assert isinstance(comment, DiscussionComment) and comment.hidden
    assert all("second" not in h.get("raw", "") for h in comment.edit_history)
    with pytest.raises(HfHubHTTPError) as info:
        bob.edit_discussion_comment(repo, num, said.id, "back")
    refused(info, 409, "DiscussionStateConflict")


def test_rename_close_reopen(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str) -> None:
    bob = api_as("bob")
    num = bob.create_discussion(repo, "Old title").num
    renamed = bob.rename_discussion(repo, num, "New title")
    assert isinstance(renamed, DiscussionTitleChange)
    assert (renamed.old_title, renamed.new_title) == ("Old title", "New title")
    closed = bob.change_discussion_status(repo, num, "closed", comment="done")
    assert isinstance(closed, DiscussionStatusChange) and closed.new_status == "closed"
    with pytest.raises(HfHubHTTPError) as info:
        bob.change_discussion_status(repo, num, "closed")
    refused(info, 409, "DiscussionStateConflict")
    reopened = api.change_discussion_status(repo, num, "open")  # a writer may reopen others' threads
    assert reopened.new_status == "open" and reopened.author == "alice"
    details = api.get_discussion_details(repo, num)
    assert details.title == "New title" and details.status == "open"
    # the client opens it with a default description: the first comment
    assert [e.type for e in details.events] == ["comment", "title-change", "status-change", "comment", "status-change"]
    with pytest.raises(HfHubHTTPError) as info:  # carol is neither its author nor a writer
        api_as("carol").rename_discussion(repo, num, "Mine now")
    refused(info, 403)


def test_list_with_every_filter_and_pages(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str) -> None:
    bob, carol = api_as("bob"), api_as("carol")
    for i in range(53):
        (bob if i % 2 else carol).create_discussion(repo, f"d{i}")
    pr = api.create_pull_request(repo, "a pr")
    api.change_discussion_status(repo, 1, "closed")
    everything = list(api.get_repo_discussions(repo))  # 54 threads: two pages of 50
    assert len(everything) == 54 and [d.num for d in everything] == list(range(54, 0, -1))
    assert len({d.num for d in everything}) == 54
    prs = list(api.get_repo_discussions(repo, discussion_type="pull_request"))
    assert [d.num for d in prs] == [pr.num] and prs[0].is_pull_request and prs[0].status == "draft"
    assert len(list(api.get_repo_discussions(repo, discussion_type="discussion"))) == 53
    assert [d.num for d in api.get_repo_discussions(repo, discussion_status="closed")] == [1]
    assert len(list(api.get_repo_discussions(repo, discussion_status="open"))) == 53  # drafts are open
    by_bob = list(api.get_repo_discussions(repo, author="bob"))
    assert len(by_bob) == 26 and {d.author for d in by_bob} == {"bob"}
    assert list(api.get_repo_discussions(repo, author="nobody-here")) == []
    mixed = list(api.get_repo_discussions(repo, author="carol", discussion_status="closed",
                                          discussion_type="discussion"))
    assert [d.num for d in mixed] == [1]


def test_bad_input_changes_nothing(api: HfApi, api_as: Callable[[str | None], HfApi], repo: str,
                                   server: LiveServer) -> None:
    num = api.create_discussion(repo, "Fine").num
    with pytest.raises(HfHubHTTPError) as info:
        api.get_discussion_details(repo, 999)
    refused(info, 404, "DiscussionNotFound")
    with pytest.raises(HfHubHTTPError) as info:
        api.comment_discussion(repo, 999, "hello")
    refused(info, 404, "DiscussionNotFound")
    with pytest.raises(HfHubHTTPError) as info:
        api.create_discussion(repo, "x" * 201)
    refused(info, 400, "BadRequest")
    with pytest.raises(HfHubHTTPError) as info:
        api.rename_discussion(repo, num, "   ")
    refused(info, 400, "BadRequest")
    with pytest.raises(HfHubHTTPError) as info:
        api.comment_discussion(repo, num, "x" * (64 * 1024 + 1))
    refused(info, 400, "BadRequest")
    with pytest.raises(HfHubHTTPError) as info:
        api.comment_discussion(repo, num, "")
    refused(info, 400, "BadRequest")
    with pytest.raises(HfHubHTTPError) as info:
        api.edit_discussion_comment(repo, num, "0" * 24, "nope")
    refused(info, 404, "DiscussionNotFound")
    with pytest.raises(HfHubHTTPError) as info:  # merging a discussion
        api.merge_pull_request(repo, num)
    refused(info, 409, "DiscussionStateConflict")
    auth = {"Authorization": f"Bearer {TOKENS['alice']}", "Content-Type": "application/json"}
    url = f"{server.url}/api/models/{repo}/discussions"
    for path, body in ((f"/{num}/status", b'{"status": "merged"}'), (f"/{num}/comment", b'{"comment": "a\\ud800b"}'),
                       (f"/{num}/comment", b'{"comment": "a\\u0000b"}'), (f"/{num}/title", b'{"title": ["x"]}'),
                       ("", b'{"title": "t\\udfffx"}'), (f"/{num}/comment", b"not json"),
                       (f"/{num}/comment", b'{"comment": 5}')):
        raw = httpx.post(url + path, content=body, headers=auth)
        assert raw.status_code == 400 and raw.headers["X-Error-Code"] == "BadRequest", (path, body, raw.text)
    for query in ({"author": "a\x00b"}, {"author": "x" * 500}):  # nobody: nothing listed
        listed = httpx.get(url, params=query)
        assert listed.status_code == 200 and listed.json()["discussions"] == [], listed.text
    for query in ({"p": "-1"}, {"p": "x"}, {"status": "weird"}, {"type": "weird"}):
        listed = httpx.get(url, params=query)
        assert listed.status_code == 400 and listed.headers["X-Error-Code"] == "BadRequest", query
    details = api.get_discussion_details(repo, num)
    assert details.title == "Fine" and details.status == "open" and len(details.events) == 1
    assert [d.num for d in api.get_repo_discussions(repo)] == [num]


def test_attachments(api: HfApi, server: LiveServer, tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    url = api.upload_attachment(png)
    assert url.startswith(server.url + "/uploads/") and url.endswith(".png")
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == png.read_bytes()
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    auth = {"Authorization": f"Bearer {TOKENS['alice']}"}
    for media in ("text/html", "image/svg+xml", "application/javascript", ""):
        r = httpx.post(f"{server.url}/uploads", content=b"<script>alert(1)</script>",
                       headers={**auth, "Content-Type": media})
        assert r.status_code == 415 and r.headers["X-Error-Code"] == "UnsupportedMediaType"
    r = httpx.post(f"{server.url}/uploads", content=b"x", headers={"Content-Type": "image/png"})
    assert r.status_code == 401  # anonymous
    r = httpx.post(f"{server.url}/uploads", content=b"x" * (20 * 1024 * 1024 + 1),
                   headers={**auth, "Content-Type": "image/png"})
    assert r.status_code == 413
    assert httpx.get(f"{server.url}/uploads/{'0' * 64}.png").status_code == 404


def discussion_events(server: LiveServer, repo: str) -> list[dict[str, object]]:
    """The ``discussion`` events recorded for the repo's jobs (webhooks), in order."""
    import json

    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT e.data FROM events e JOIN repos r ON r.id = e.repo_id "
                "WHERE e.kind = 'discussion' AND r.key = :key ORDER BY e.id"), {"key": repo.lower()}).all()
    finally:
        engine.dispose()
    return [json.loads(r.data) for r in rows]


def test_every_change_records_an_event_for_webhooks(api: HfApi, repo: str, server: LiveServer) -> None:
    num = api.create_discussion(repo, "Hooked").num
    said = api.comment_discussion(repo, num, "c")
    api.edit_discussion_comment(repo, num, said.id, "d")
    api.hide_discussion_comment(repo, num, said.id)
    api.rename_discussion(repo, num, "Hooked again")
    api.change_discussion_status(repo, num, "closed")
    pr = api.create_commit(repo, [CommitOperationAdd("p.txt", b"p")], commit_message="p", create_pr=True)
    api.merge_pull_request(repo, pr.pr_num)  # type: ignore[arg-type]
    with pytest.raises(HfHubHTTPError):  # refused: records nothing
        api.comment_discussion(repo, 999, "no")
    cid = said.id
    assert discussion_events(server, repo) == [
        {"num": num, "action": "create", "scope": "discussion", "comment_id": None},
        {"num": num, "action": "create", "scope": "discussion.comment", "comment_id": cid},
        {"num": num, "action": "update", "scope": "discussion.comment", "comment_id": cid},
        {"num": num, "action": "update", "scope": "discussion.comment", "comment_id": cid},
        {"num": num, "action": "update", "scope": "discussion", "comment_id": None},
        {"num": num, "action": "update", "scope": "discussion", "comment_id": None},
        {"num": pr.pr_num, "action": "create", "scope": "discussion", "comment_id": None},
        {"num": pr.pr_num, "action": "update", "scope": "discussion", "comment_id": None},
    ]
