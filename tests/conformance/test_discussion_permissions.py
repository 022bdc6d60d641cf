"""Who may do what with discussions and pull requests, per role, on public and private repos.

Roles: anonymous, an outsider (a user with no role in the org), a reader (read member), the
author of a pull request, a writer (write member) and an org admin. A private repo's threads do
not exist for anyone who may not read it (404 ``RepoNotFound``, as for a missing repo).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.server import LiveServer

ORG = "discorg"
USERS = {  # name -> (org role, token)
    "dora": ("admin", "hf_dora_write_token_abcdefghijklmnop0123"),
    "ezra": ("write", "hf_ezra_write_token_abcdefghijklmnop0123"),
    "finn": ("read", "hf_finn_write_token_abcdefghijklmnop0123"),
    "gwen": (None, "hf_gwen_write_token_abcdefghijklmnop0123"),  # outsider
    "hugo": (None, "hf_hugo_write_token_abcdefghijklmnop0123"),  # outsider, another PR author
}


@pytest.fixture(scope="module")
def people(server: LiveServer) -> Iterator[Callable[[str | None], HfApi]]:
    server.seed({
        "users": [{"name": n, "tokens": [{"value": t, "role": "write", "name": "t"}]} for n, (_r, t) in USERS.items()],
        "orgs": [{"name": ORG, "members": {n: r for n, (r, _t) in USERS.items() if r}}],
    })

    def as_(user: str | None) -> HfApi:
        return HfApi(endpoint=server.url, token=USERS[user][1] if user else False)

    yield as_


def add(path: str, content: bytes) -> CommitOperationAdd:
    return CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except HfHubHTTPError as exc:
        return exc.response.status_code
    return 200


def hidden(call: Callable[[], Any]) -> None:
    with pytest.raises(RepositoryNotFoundError) as info:
        call()
    assert info.value.response.status_code == 404
    assert info.value.response.headers["X-Error-Code"] == "RepoNotFound"


@pytest.fixture
def repo(people: Callable[[str | None], HfApi], repo_name: str) -> Callable[[bool], str]:
    def make(private: bool) -> str:
        admin = people("dora")
        rid = admin.create_repo(f"{ORG}/{repo_name}-{'priv' if private else 'pub'}", private=private).repo_id
        admin.upload_file(path_or_fileobj=b"base\n", path_in_repo="a.txt", repo_id=rid)
        return rid

    return make


@pytest.mark.parametrize("private", [False, True])
def test_anonymous(people: Callable[[str | None], HfApi], repo: Callable[[bool], str], private: bool) -> None:
    rid = repo(private)
    num = people("dora").create_discussion(rid, "Thread").num
    anon = people(None)
    if private:
        for call in (lambda: list(anon.get_repo_discussions(rid)), lambda: anon.get_discussion_details(rid, num),
                     lambda: anon.create_discussion(rid, "x"), lambda: anon.comment_discussion(rid, num, "x")):
            hidden(call)
        return
    assert [d.num for d in anon.get_repo_discussions(rid)] == [num]
    assert anon.get_discussion_details(rid, num).title == "Thread"
    assert status_of(lambda: anon.create_discussion(rid, "x")) == 401
    assert status_of(lambda: anon.comment_discussion(rid, num, "x")) == 401
    assert status_of(lambda: anon.create_commit(rid, [add("b", b"b")], commit_message="m", create_pr=True)) == 401


@pytest.mark.parametrize("private", [False, True])
def test_outsider(people: Callable[[str | None], HfApi], repo: Callable[[bool], str], private: bool) -> None:
    rid = repo(private)
    num = people("dora").create_discussion(rid, "Thread").num
    gwen = people("gwen")
    if private:  # bob-like outsiders see nothing of a private repo's threads
        for call in (lambda: list(gwen.get_repo_discussions(rid)), lambda: gwen.get_discussion_details(rid, num),
                     lambda: gwen.create_discussion(rid, "x"), lambda: gwen.comment_discussion(rid, num, "x"),
                     lambda: gwen.rename_discussion(rid, num, "x"), lambda: gwen.merge_pull_request(rid, num),
                     lambda: gwen.create_commit(rid, [add("b", b"b")], commit_message="m", create_pr=True)):
            hidden(call)
        return
    contributor_can_contribute(people, "gwen", rid, num)


@pytest.mark.parametrize("private", [False, True])
def test_reader(people: Callable[[str | None], HfApi], repo: Callable[[bool], str], private: bool) -> None:
    rid = repo(private)
    num = people("dora").create_discussion(rid, "Thread").num
    contributor_can_contribute(people, "finn", rid, num)


def contributor_can_contribute(people: Callable[[str | None], HfApi], user: str, rid: str, num: int) -> None:
    """A user who may read but not write: opens threads and PRs, comments, pushes to their own PR
    only, manages their own threads only, never merges or hides."""
    me, writer = people(user), people("ezra")
    mine = me.create_discussion(rid, "Mine").num
    said = me.comment_discussion(rid, num, "hello")
    assert me.edit_discussion_comment(rid, num, said.id, "hello again").content == "hello again"
    pr = me.create_commit(rid, [add("b.txt", b"b\n")], commit_message="PR", create_pr=True)
    assert pr.pr_num is not None
    assert me.create_commit(rid, [add("c.txt", b"c\n")], commit_message="more", revision=pr.pr_revision).oid
    assert me.get_discussion_details(rid, pr.pr_num).status == "draft"
    me.rename_discussion(rid, mine, "Still mine")
    me.change_discussion_status(rid, mine, "closed")
    me.change_discussion_status(rid, mine, "open")
    theirs = writer.create_commit(rid, [add("d.txt", b"d\n")], commit_message="writer PR", create_pr=True)
    denied = {
        "push to main": lambda: me.create_commit(rid, [add("e", b"e")], commit_message="m"),
        "push to another's PR": lambda: me.create_commit(rid, [add("e", b"e")], commit_message="m",
                                                         revision=theirs.pr_revision),
        "merge own PR": lambda: me.merge_pull_request(rid, pr.pr_num),  # type: ignore[arg-type]
        "close another's thread": lambda: me.change_discussion_status(rid, num, "closed"),
        "rename another's thread": lambda: me.rename_discussion(rid, num, "x"),
        "hide a comment": lambda: me.hide_discussion_comment(rid, num, said.id),
        "edit another's comment": lambda: me.edit_discussion_comment(
            rid, num, writer.comment_discussion(rid, num, "w").id, "x"),
    }
    before = writer.list_repo_refs(rid, include_pull_requests=True)
    assert {what: status_of(call) for what, call in denied.items()} == dict.fromkeys(denied, 403)
    after = writer.list_repo_refs(rid, include_pull_requests=True)
    assert after.branches == before.branches and after.pull_requests == before.pull_requests
    assert writer.get_discussion_details(rid, num).status == "open"


@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("user", ["ezra", "dora"])
def test_writer_and_admin(people: Callable[[str | None], HfApi], repo: Callable[[bool], str], private: bool,
                          user: str) -> None:
    rid = repo(private)
    author = people("finn")  # a reader's pull request and thread
    pr = author.create_commit(rid, [add("b.txt", b"b\n")], commit_message="PR", create_pr=True)
    num = author.create_discussion(rid, "Reader's").num
    said = author.comment_discussion(rid, num, "hello")
    me = people(user)
    me.create_commit(rid, [add("c.txt", b"c\n")], commit_message="writer fixes it", revision=pr.pr_revision)
    me.rename_discussion(rid, num, "Renamed by a writer")
    assert me.hide_discussion_comment(rid, num, said.id).hidden
    me.change_discussion_status(rid, num, "closed")
    me.merge_pull_request(rid, pr.pr_num)  # type: ignore[arg-type]
    assert me.get_discussion_details(rid, pr.pr_num).status == "merged"  # type: ignore[arg-type]
    assert set(me.list_repo_files(rid)) >= {"b.txt", "c.txt"}
    assert status_of(lambda: me.edit_discussion_comment(rid, num, said.id, "x")) in (403, 409)
