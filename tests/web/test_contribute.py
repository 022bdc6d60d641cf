"""Contributing from the pages over real HTTP (SQLite and PostgreSQL): create a repo, upload
files, edit a file as a commit or a pull request, discuss, merge. Each form goes to the same
service as the API, so the API's client sees the result and the API's rules refuse the same."""

from __future__ import annotations

import uuid

import httpx
from huggingface_hub import HfApi

from tests.support.server import LiveServer
from tests.web.conftest import csrf_of, sign_in
from tests.web.html import parse
from tests.web.test_pages import assert_page


def test_create_upload_edit_and_merge(api: HfApi, server: LiveServer, user: tuple[str, str]) -> None:
    name, token = user
    mine = HfApi(endpoint=server.url, token=token)
    browser = sign_in(server, name)
    form = assert_page(browser.get("/new"))
    assert [o.get("value") for o in parse(form).all("option") if o.get("value") not in ("model", "dataset")] == [name]
    repo = f"made-{uuid.uuid4().hex[:6]}"
    assert_page(browser.post("/new", data={"name": repo, "type": "model"}), 403)  # no CSRF token
    made = browser.post("/new", data={"csrf": csrf_of(form), "owner": name, "name": repo, "type": "model",
                                      "visibility": "private"})
    repo_id = f"{name}/{repo}"
    assert made.status_code == 303 and made.headers["location"] == f"/{repo_id}"
    assert mine.repo_info(repo_id).private is True
    again = browser.post("/new", data={"csrf": csrf_of(form), "owner": name, "name": repo, "type": "model"})
    assert_page(again, 409)
    assert_page(browser.post("/new", data={"csrf": csrf_of(form), "owner": "acme", "name": repo}), 403)

    upload = assert_page(browser.get(f"/{repo_id}/upload/main"))
    files = [("files", ("README.md", b"---\nlicense: mit\n---\n# Made in a browser\n", "text/markdown")),
             ("files", ("config.json", b'{"model_type": "bert"}', "application/json"))]
    sent = browser.post(f"/{repo_id}/upload/main", data={"csrf": csrf_of(upload), "summary": "first files"},
                        files=files)
    assert sent.status_code == 303 and sent.headers["location"] == f"/{repo_id}/tree/main"
    assert set(mine.list_repo_files(repo_id)) == {".gitattributes", "README.md", "config.json"}
    assert mine.list_repo_commits(repo_id)[0].title == "first files"
    assert "Made in a browser" in assert_page(browser.get(f"/{repo_id}"))
    refused = browser.post(f"/{repo_id}/upload/main", data={"csrf": "forged"}, files=files)
    assert_page(refused, 403)
    assert len(mine.list_repo_commits(repo_id)) == 2  # nothing committed

    # edit the README: as a commit, then as a pull request, then merge it
    edit = assert_page(browser.get(f"/{repo_id}/edit/main/README.md"))
    assert "# Made in a browser" in edit
    head = mine.list_repo_commits(repo_id)[0].commit_id
    done = browser.post(f"/{repo_id}/edit/main/README.md", data={
        "csrf": csrf_of(edit), "parent": head, "content": "# Edited\r\n", "summary": "edit in place"})
    assert done.status_code == 303 and done.headers["location"] == f"/{repo_id}/blob/main/README.md"
    assert mine.hf_hub_download(repo_id, "README.md", cache_dir=f"/tmp/dl-{uuid.uuid4().hex}") is not None
    stale = browser.post(f"/{repo_id}/edit/main/README.md", data={
        "csrf": csrf_of(edit), "parent": head, "content": "# Lost?\n", "summary": "from an old page"})
    assert_page(stale, 412)  # the page was opened before the last commit: nothing is overwritten
    pr = browser.post(f"/{repo_id}/edit/main/README.md", data={
        "csrf": csrf_of(edit), "content": "# Proposed\n", "summary": "propose", "pr": "1"})
    assert pr.status_code == 303 and pr.headers["location"] == f"/{repo_id}/discussions/1"
    thread = assert_page(browser.get(f"/{repo_id}/discussions/1"))
    assert "+# Proposed" in thread and "-# Edited" in thread and ">Merge</button>" in thread
    assert mine.get_discussion_details(repo_id, 1).is_pull_request

    commented = browser.post(f"/{repo_id}/discussions/1/comment", data={"csrf": csrf_of(thread),
                                                                         "comment": "Looks **good**"})
    assert commented.status_code == 303
    assert "<strong>good</strong>" in assert_page(browser.get(f"/{repo_id}/discussions/1"))
    merged = browser.post(f"/{repo_id}/discussions/1/merge", data={"csrf": csrf_of(thread)})
    assert merged.status_code == 303
    details = mine.get_discussion_details(repo_id, 1)
    comments = [c.content for c in details.events if c.type == "comment"]
    assert details.status == "merged" and comments[-1] == "Looks **good**"
    assert "Proposed" in assert_page(browser.get(f"/{repo_id}"))
    assert_page(browser.post(f"/{repo_id}/discussions/1/merge", data={"csrf": csrf_of(thread)}), 409)


def test_discussions_from_the_pages(api: HfApi, server: LiveServer, user: tuple[str, str], repo_name: str) -> None:
    name, _token = user
    repo_id = api.create_repo(repo_name).repo_id  # alice's: the signed-in user only reads it
    api.upload_file(path_or_fileobj=b"# Card", path_in_repo="README.md", repo_id=repo_id)
    browser = sign_in(server, name)
    listing = assert_page(browser.get(f"/{repo_id}/discussions"))
    assert "No discussion yet." in listing
    new = assert_page(browser.get(f"/{repo_id}/discussions/new"))
    assert_page(browser.post(f"/{repo_id}/discussions/new", data={"csrf": csrf_of(new), "title": ""}), 400)
    opened = browser.post(f"/{repo_id}/discussions/new", data={"csrf": csrf_of(new), "title": "A <b>question</b>",
                                                                 "description": "How was it trained?"})
    assert opened.status_code == 303
    num = int(opened.headers["location"].rsplit("/", 1)[1])
    assert api.get_discussion_details(repo_id, num).author == name
    page = assert_page(browser.get(f"/{repo_id}/discussions/{num}"))
    assert "A &lt;b&gt;question&lt;/b&gt;" in page and "How was it trained?" in page
    assert ">Merge</button>" not in page and ">Close</button>" in page  # the author closes their own
    listing = assert_page(browser.get(f"/{repo_id}/discussions", params={"status": "open"}))
    assert f"/{repo_id}/discussions/{num}" in listing
    closed = browser.post(f"/{repo_id}/discussions/{num}/status", data={"csrf": csrf_of(page), "status": "closed"})
    assert closed.status_code == 303 and api.get_discussion_details(repo_id, num).status == "closed"
    assert f"/{repo_id}/discussions/{num}" not in assert_page(browser.get(f"/{repo_id}/discussions",
                                                                          params={"status": "open"}))
    # a reader may not merge or commit to main: the API's answers
    edit = browser.post(f"/{repo_id}/edit/main/README.md", data={"csrf": csrf_of(page), "content": "x"})
    assert_page(edit, 403)
    anonymous = assert_page(httpx.get(f"{server.url}/{repo_id}/discussions/{num}"))
    assert "Sign in</a> to comment" in anonymous


def test_private_threads_stay_hidden(api: HfApi, server: LiveServer, user: tuple[str, str], repo_name: str) -> None:
    name, _token = user
    repo_id = api.create_repo(f"acme/{repo_name}", private=True).repo_id
    api.create_discussion(repo_id, title="internal")
    browser = sign_in(server, name)
    for path in (f"/{repo_id}/discussions", f"/{repo_id}/discussions/1", f"/{repo_id}/discussions/new"):
        response = browser.get(path)
        assert_page(response, 404)
        assert response.headers["x-error-code"] == "RepoNotFound" and "internal" not in response.text
    refused = browser.post(f"/{repo_id}/discussions/1/comment", data={"csrf": csrf_of(browser.get("/").text),
                                                                       "comment": "hi"})
    assert_page(refused, 404)


def test_repo_settings_from_the_page(api: HfApi, server: LiveServer, user: tuple[str, str], repo_name: str) -> None:
    name, token = user
    mine = HfApi(endpoint=server.url, token=token)
    repo_id = mine.create_repo(repo_name).repo_id
    browser = sign_in(server, name)
    page = assert_page(browser.get(f"/{repo_id}/settings"))
    csrf = csrf_of(page)
    foreign = browser.get(f"/{api.create_repo(f'{repo_name}-alice').repo_id}/settings")
    assert_page(foreign, 403)  # alice's repo: bob-like users may read it, not manage it

    assert_page(browser.post(f"/{repo_id}/settings/visibility", data={"visibility": "private"}), 403)
    assert mine.repo_info(repo_id).private is False  # no CSRF token: nothing changed
    assert browser.post(f"/{repo_id}/settings/visibility", data={"csrf": csrf, "visibility": "private"}
                        ).status_code == 303
    assert mine.repo_info(repo_id).private is True
    assert_page(browser.post(f"/{repo_id}/settings/visibility", data={"csrf": csrf, "visibility": "secret"}), 400)
    assert browser.post(f"/{repo_id}/settings/gated", data={"csrf": csrf, "gated": "manual"}).status_code == 303
    assert mine.repo_info(repo_id).gated == "manual"
    browser.post(f"/{repo_id}/settings/gated", data={"csrf": csrf, "gated": "false"})
    assert mine.repo_info(repo_id).gated is False

    moved = browser.post(f"/{repo_id}/settings/move", data={"csrf": csrf, "to": f"{name}/{repo_name}-renamed"})
    assert moved.status_code == 303 and moved.headers["location"] == f"/{name}/{repo_name}-renamed/settings"
    new_id = f"{name}/{repo_name}-renamed"
    assert mine.repo_info(new_id).id == new_id
    assert_page(browser.post(f"/{new_id}/settings/move", data={"csrf": csrf, "to": f"acme/{repo_name}"}), 403)

    wrong = browser.post(f"/{new_id}/settings/delete", data={"csrf": csrf, "confirm": repo_name})
    assert_page(wrong, 400)
    assert mine.repo_exists(new_id)
    gone = browser.post(f"/{new_id}/settings/delete", data={"csrf": csrf, "confirm": new_id})
    assert gone.status_code == 303 and gone.headers["location"] == f"/{name}"
    assert not mine.repo_exists(new_id)
