"""The web pages over real HTTP against a live server (SQLite and PostgreSQL): what each shows,
who may see it, and that hostile input stays text. (No browser here: these read the HTML the
server sends; the browser-driven tests build on them.)"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.support.server import TOKENS, LiveServer
from tests.web.html import active_elements, dangers, parse
from tests.web.xss import PAYLOADS

CARD = """---
license: apache-2.0
pipeline_tag: text-classification
tags:
- page-test-tag
secret_yaml_marker: do-not-show
---

# The Card Title

Some **bold** text, a [relative link](docs/guide.md), an image ![diagram](./img/plot.png),
an [outside link](https://example.org/x) and a [jump](#the-card-title).

| metric | value |
|--------|-------|
| acc    | 0.91  |

```python
print("hello")
```
"""


#: A 1x1 PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cf"
                    "c0f01f0005000201a5d6c9e60000000049454e44ae426082")


def page_text(html: str) -> str:
    """What a page says, tags left out (a highlighted line is many spans)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def get(server: LiveServer, path: str, user: str | None = None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[user]}"} if user else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)  # type: ignore[arg-type]


def assert_page(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    return response.text


def test_a_repo_page_renders_its_card(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b'{"model_type": "bert"}', path_in_repo="config.json", repo_id=repo_id)
    server.settle()
    html = assert_page(get(server, f"/{repo_id}"))
    page = parse(html)
    assert "The Card Title" in page.plain and "secret_yaml_marker" not in html  # front matter hidden
    assert "<strong>bold</strong>" in html and "<table>" in html
    # the code block, highlighted: token classes only, the text escaped
    assert '<code class="language-python"><span class="nb">print</span><span class="p">(</span>' in html
    assert 'print("hello")' in page_text(html)
    hrefs = {a.get("href") for a in page.all("a")}
    assert f"/{repo_id}/blob/main/docs/guide.md" in hrefs  # relative links lead to the repo's files
    assert "https://example.org/x" in hrefs and "#the-card-title" in hrefs
    assert {i.get("src") for i in page.all("img")} == {f"/{repo_id}/resolve/main/img/plot.png"}
    assert "/models?filter=page-test-tag" in hrefs  # tag chips are filtered searches
    assert "apache-2.0" in page.plain and "text-classification" in page.plain
    snippet = "".join(page.text)
    assert f'AutoModel.from_pretrained("{repo_id}")' in snippet and f"HF_ENDPOINT={server.url}" in snippet
    assert f"git clone {server.url}/{repo_id}" in snippet
    # A dataset's page is under /datasets, its snippet loads it with datasets
    ds = api.create_repo(f"{repo_name}-ds", repo_type="dataset").repo_id
    html = assert_page(get(server, f"/datasets/{ds}"))
    assert f'load_dataset("{ds}")' in parse(html).plain and "No model card yet." in html
    assert get(server, f"/{ds}").status_code == 404  # not a model


def test_files_and_versions(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    api.create_commit(repo_id, commit_message="files", operations=[
        CommitOperationAdd("src/main.py", b"def f():\n    return '<b>not bold</b>'\n"),
        CommitOperationAdd("src/deep/x.txt", b"x"),
        CommitOperationAdd("odd.dat", b"\xff\xfe not utf-8"),
        CommitOperationAdd("weights.bin", b"\x00" * 20_000),  # an LFS file (by extension)
        CommitOperationAdd("a file with spaces.md", b"spaced"),
        CommitOperationAdd("img/dot.png", PNG),
        CommitOperationAdd("notes.unknownext", b"<plain> text"),
    ])
    api.create_branch(repo_id, branch="feature/x")
    html = assert_page(get(server, f"/{repo_id}/tree/main"))
    page = parse(html)
    hrefs = [a.get("href") for a in page.all("a")]
    assert f"/{repo_id}/tree/main/src" in hrefs
    assert f"/{repo_id}/blob/main/a%20file%20with%20spaces.md" in hrefs
    assert f"/{repo_id}/resolve/main/odd.dat?download=true" in hrefs
    assert "LFS" in page.plain and "20.0 kB" in page.plain
    sub = parse(assert_page(get(server, f"/{repo_id}/tree/main/src")))
    assert f"/{repo_id}/tree/main/src/deep" in [a.get("href") for a in sub.all("a")]
    assert "main.py" in sub.plain and "odd.dat" not in sub.plain

    blob = assert_page(get(server, f"/{repo_id}/blob/main/src/main.py"))
    assert "&lt;b&gt;not bold&lt;/b&gt;" in blob and 'id="L2"' in blob and "<b>not bold" not in blob
    assert '<span class="k">def</span>' in blob and '<span class="nf">f</span>' in blob  # highlighted
    assert "    return '<b>not bold</b>'" in page_text(blob)
    # an image is shown from /resolve; a file no lexer knows stays plain text
    png = assert_page(get(server, f"/{repo_id}/blob/main/img/dot.png"))
    [img] = [i for i in parse(png).all("img") if "/resolve/" in (i.get("src") or "")]
    assert img["src"].endswith("/img/dot.png") and img["alt"] == "img/dot.png"
    served = httpx.get(f"{server.url}{img['src']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png" and served.content == PNG
    plain = assert_page(get(server, f"/{repo_id}/blob/main/notes.unknownext"))
    assert "<td><pre>&lt;plain&gt; text</pre></td>" in plain
    assert "A binary file." in assert_page(get(server, f"/{repo_id}/blob/main/odd.dat"))
    lfs = assert_page(get(server, f"/{repo_id}/blob/main/weights.bin"))
    assert "Stored with LFS." in lfs and "SHA256" in lfs
    assert "spaced" in assert_page(get(server, f"/{repo_id}/blob/main/a%20file%20with%20spaces.md"))
    # a branch with a slash, as the API takes it (%2F)
    assert "main.py" in assert_page(get(server, f"/{repo_id}/tree/feature%2Fx/src"))
    # what does not exist is a page with the API's status and error code
    for path, code in ((f"/{repo_id}/tree/nope", "RevisionNotFound"), (f"/{repo_id}/blob/main/nope.txt",
                       "EntryNotFound"), (f"/alice/{repo_name}-missing", "RepoNotFound")):
        response = get(server, path)
        assert_page(response, 404)
        assert response.headers["x-error-code"] == code


def test_home_and_search(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id=repo_id)
    server.settle()
    assert_page(get(server, "/"))
    html = assert_page(get(server, "/models", search=repo_name, sort="lastModified"))
    page = parse(html)
    assert f"/{repo_id}" in [a.get("href") for a in page.all("a")]
    assert [o.get("value") for o in page.all("option") if "selected" in o] == ["lastModified"]
    assert any(i.get("value") == repo_name for i in page.all("input"))  # the query stays in the form
    filtered = parse(assert_page(get(server, "/models", search=repo_name, filter="page-test-tag")))
    assert f"/{repo_id}" in [a.get("href") for a in filtered.all("a")]
    none = parse(assert_page(get(server, "/models", search=repo_name, filter="license:mit")))
    assert f"/{repo_id}" not in [a.get("href") for a in none.all("a")] and "No repository matches." in none.plain
    bad = get(server, "/models", sort="nonsense")
    assert_page(bad, 400)
    assert bad.headers["x-error-code"] == "BadRequest"


def test_private_repos_only_for_who_may_read(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str
) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}", private=True).repo_id
    api.upload_file(path_or_fileobj=b"# Secret card", path_in_repo="README.md", repo_id=repo_id)
    server.settle()
    pages = {f"/{repo_id}": "Secret card", f"/{repo_id}/tree/main": "README.md",
             f"/{repo_id}/blob/main/README.md": "Secret card"}
    for path, shown in pages.items():
        for outsider in (None, "bob"):
            response = get(server, path, outsider)
            assert_page(response, 404)
            assert response.headers["x-error-code"] == "RepoNotFound" and shown not in response.text
        assert shown in assert_page(get(server, path, "carol"))  # an org member (read role)
        assert shown in assert_page(get(server, path, "alice"))
    for outsider in (None, "bob"):
        assert f'href="/{repo_id}"' not in get(server, "/models", outsider, search=repo_name).text
    assert f'href="/{repo_id}"' in get(server, "/models", "carol", search=repo_name).text


def test_gated_files_need_access(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"# Card", path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"secret text", path_in_repo="notes.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    assert_page(get(server, f"/{repo_id}/tree/main", "bob"))  # metadata stays visible, as on the Hub
    response = get(server, f"/{repo_id}/blob/main/notes.txt", "bob")
    assert_page(response, 403)
    assert response.headers["x-error-code"] == "GatedRepo" and "secret text" not in response.text
    assert "secret text" in assert_page(get(server, f"/{repo_id}/blob/main/notes.txt", "alice"))


def test_hostile_input_stays_text(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Every payload through the card, a file's name and content, and the search query: nothing
    active gets into a page (no handler, no script or data URL, no element the template lacks)."""
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"# Plain", path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"plain", path_in_repo="plain.txt", repo_id=repo_id)
    baseline = {path: active_elements(assert_page(get(server, path))) for path in (
        f"/{repo_id}", f"/{repo_id}/tree/main", f"/{repo_id}/blob/main/plain.txt")}
    search_baseline = active_elements(assert_page(get(server, "/models", search="plain", filter="plain")))

    card = "\n\n".join(f"{p}\n\n*x* {p}" for p in PAYLOADS)
    names = [re.sub(r"[/\\\x00-\x1f]", "_", p)[:200] for p in PAYLOADS]
    api.create_commit(repo_id, commit_message="hostile", operations=[
        CommitOperationAdd("README.md", card.encode()),
        *[CommitOperationAdd(f"h{i}-{name}.txt", p.encode())
          for i, (name, p) in enumerate(zip(names, PAYLOADS, strict=True))],
    ])
    found = dangers(assert_page(get(server, f"/{repo_id}")), baseline[f"/{repo_id}"])
    assert found == [], found
    tree = assert_page(get(server, f"/{repo_id}/tree/main"))
    assert dangers(tree, baseline[f"/{repo_id}/tree/main"]) == []
    assert len(parse(tree).all("tr")) == 1 + len(api.list_repo_files(repo_id)) == 1 + 3 + len(PAYLOADS)
    links = {a["href"] for a in parse(tree).all("a") if f"/{repo_id}/blob/main/h" in (a.get("href") or "")}
    assert len(links) == len(PAYLOADS)
    for href in sorted(links):  # each file's page, by the tree's own link
        html = assert_page(get(server, href))
        i = int(unquote(href).rsplit("/h", 1)[1].split("-", 1)[0])
        assert dangers(html, baseline[f"/{repo_id}/blob/main/plain.txt"]) == [], href
        assert f"h{i}-{names[i]}.txt" in parse(html).plain and PAYLOADS[i].splitlines()[0] in parse(html).plain
    for payload in PAYLOADS:
        html = assert_page(get(server, "/models", search=payload, filter=payload))
        assert dangers(html, search_baseline) == [], payload


def test_hostile_threads_metadata_and_descriptions_stay_text(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Every payload as a discussion's title and description, as a comment, as card metadata
    (tags, license, datasets, evaluation names) and as a collection's title and description:
    nothing active gets into the pages that show them."""
    repo_id = api.create_repo(repo_name).repo_id
    api.upload_file(path_or_fileobj=b"---\ntags: [plain]\nlicense: mit\n---\n# Plain", path_in_repo="README.md",
                    repo_id=repo_id)
    plain = api.create_discussion(repo_id, title="plain", description="plain").num
    api.comment_discussion(repo_id, plain, "plain")
    shelf = api.create_collection(title=f"plain {repo_name}", description="plain")
    baseline = {path: active_elements(assert_page(get(server, path))) for path in (
        f"/{repo_id}", f"/{repo_id}/discussions", f"/{repo_id}/discussions/{plain}",
        f"/collections/{shelf.slug}")}

    hostile = api.create_discussion(repo_id, title=PAYLOADS[0][:200], description="\n\n".join(PAYLOADS)).num
    for payload in PAYLOADS:
        api.comment_discussion(repo_id, hostile, payload)
    for payload in PAYLOADS[1:]:
        api.create_discussion(repo_id, title=payload.replace("\n", " ")[:200], description=payload)
    meta = {"tags": PAYLOADS,  # (a license other than the known ones is refused by validate-yaml)
            "datasets": PAYLOADS[:10], "model-index": [
        {"name": p, "results": [{"task": {"type": p, "name": p}, "dataset": {"type": p, "name": p},
                                 "metrics": [{"type": p, "name": p, "value": 1.0}]}]} for p in PAYLOADS[:10]]}
    api.upload_file(path_or_fileobj=f"---\n{json.dumps(meta)}\n---\n# Card".encode(), path_in_repo="README.md",
                    repo_id=repo_id)
    server.settle()
    found = {}
    for path, like in ((f"/{repo_id}", f"/{repo_id}"), (f"/{repo_id}/discussions", f"/{repo_id}/discussions"),
                       (f"/{repo_id}/discussions?p=1", f"/{repo_id}/discussions"),
                       (f"/{repo_id}/discussions/{hostile}", f"/{repo_id}/discussions/{plain}")):
        found[path] = dangers(assert_page(get(server, path)), baseline[like])
    for num in range(hostile + 1, hostile + len(PAYLOADS)):
        found[str(num)] = dangers(assert_page(get(server, f"/{repo_id}/discussions/{num}")),
                                  baseline[f"/{repo_id}/discussions/{plain}"])
    thread = parse(assert_page(get(server, f"/{repo_id}/discussions/{hostile}"))).plain
    assert "alert" in thread  # the payloads are there, as text
    for i, payload in enumerate(PAYLOADS[:20]):
        made = api.create_collection(title=f"{i} {repo_name[-6:]} " + payload.replace("\n", " ")[:60],
                                     description=payload[:150])
        found[made.slug] = dangers(assert_page(get(server, f"/collections/{made.slug}")),
                                   baseline[f"/collections/{shelf.slug}"])
    assert {k: v for k, v in found.items() if v} == {}


def test_pages_never_take_an_api_path(server: LiveServer) -> None:
    for path in ("/api/nothing-here", "/api/models/alice/none-such", "/avatars/x/y"):
        response = get(server, path)
        assert response.headers["content-type"].startswith("application/json"), path
    css = get(server, "/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert get(server, "/static/nothing.css").status_code == 404


@pytest.mark.parametrize("path", ["/", "/models", "/datasets"])
def test_every_page_links_only_to_this_hub(server: LiveServer, path: str) -> None:
    page = parse(assert_page(get(server, path)))
    for tag, attribute in (("a", "href"), ("link", "href"), ("img", "src"), ("form", "action")):
        for attrs in page.all(tag):
            value = attrs.get(attribute) or ""
            assert value.startswith("/") and not value.startswith("//"), (tag, value)


def test_history_and_commit_diffs(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    first = api.upload_file(path_or_fileobj=b"one\ntwo\nthree\n", path_in_repo="a.txt", repo_id=repo_id,
                            commit_message="first <b>file</b>").oid
    second = api.create_commit(repo_id, commit_message="change a, add b\n\nThe long story.", operations=[
        CommitOperationAdd("a.txt", b"one\nTWO\nthree\n"), CommitOperationAdd("b.txt", b"bee\n")]).oid
    third = api.delete_file("b.txt", repo_id, commit_message="drop b").oid
    for i in range(50):  # more than one page of history
        api.upload_file(path_or_fileobj=f"{i}".encode(), path_in_repo="n.txt", repo_id=repo_id, commit_message=f"n{i}")

    first_page = parse(assert_page(get(server, f"/{repo_id}/commits/main")))
    links = [a.get("href") or "" for a in first_page.all("a")]
    commit_links = [h for h in links if "/commit/" in h]
    assert len(commit_links) == 50 and commit_links[0].endswith(api.list_repo_commits(repo_id)[0].commit_id)
    assert f"/{repo_id}/commits/main?p=1" in links
    older = assert_page(get(server, f"/{repo_id}/commits/main", p=1))
    assert "first &lt;b&gt;file&lt;/b&gt;" in older and f"/{repo_id}/commit/{second}" in older
    assert "?p=0" in older and "?p=2" not in older

    diff = assert_page(get(server, f"/{repo_id}/commit/{second}"))
    page = parse(diff)
    assert "The long story." in page.plain and "2 files changed" in page.plain
    assert '<tr class="del"><td><pre>-two</pre>' in diff and '<tr class="add"><td><pre>+TWO</pre>' in diff
    assert '<tr class="add"><td><pre>+bee</pre>' in diff and "added" in page.plain
    dropped = parse(assert_page(get(server, f"/{repo_id}/commit/{third}")))
    assert "deleted" in dropped.plain and "b.txt" in dropped.plain and "1 file changed" in dropped.plain

    missing = get(server, f"/{repo_id}/commit/{'0' * 40}")
    assert_page(missing, 404)
    assert missing.headers["x-error-code"] == "RevisionNotFound"
    assert_page(get(server, f"/{repo_id}/commits/main", p="x"), 400)

    # The API gives the same commit as JSON (no large file: nothing for Xet to say).
    details = get(server, f"/api/models/{repo_id}/commit/{second}").json()
    assert details["id"] == second and details["title"] == "change a, add b" and details["xet"] is None
    assert [(f["path"], f["status"]) for f in details["files"]] == [("a.txt", "modified"), ("b.txt", "added")]
    assert "-two\n+TWO" in details["files"][0]["diff"]

    # A file's history: the commits that changed it, on its page, its blob page links there, and in the API
    a_history = parse(assert_page(get(server, f"/{repo_id}/commits/main/a.txt")))
    a_links = [a.get("href") or "" for a in a_history.all("a") if "/commit/" in (a.get("href") or "")]
    assert a_links == [f"/{repo_id}/commit/{second}", f"/{repo_id}/commit/{first}"]
    assert "that changed a.txt" in a_history.plain
    assert f"/{repo_id}/commits/main/a.txt" in [a.get("href") for a in parse(
        assert_page(get(server, f"/{repo_id}/blob/main/a.txt"))).all("a")]
    api_commits = f"{server.url}/api/models/{repo_id}/commits/main"
    assert [c["id"] for c in httpx.get(api_commits, params={"path": "a.txt"}).json()] == [second, first]
    n_history = assert_page(get(server, f"/{repo_id}/commits/main/n.txt"))  # 50 commits: one page
    assert n_history.count(f"/{repo_id}/commit/") == 50 and "?p=1" not in n_history
    b_history = parse(assert_page(get(server, f"/{repo_id}/commits/main/b.txt")))  # deleted: still has one
    assert [a.get("href") for a in b_history.all("a") if "/commit/" in (a.get("href") or "")] == [
        f"/{repo_id}/commit/{third}", f"/{repo_id}/commit/{second}"]
    never = get(server, f"/{repo_id}/commits/main/never.txt")
    assert_page(never, 404)
    assert never.headers["x-error-code"] == "EntryNotFound"
    assert httpx.get(api_commits, params={"path": "never.txt"}).headers["x-error-code"] == "EntryNotFound"
    bad = httpx.get(api_commits, params={"path": "../etc"})
    assert bad.status_code == 422 and "x-error-message" in bad.headers

    # The folder's page names each file's last commit.
    tree = assert_page(get(server, f"/{repo_id}/tree/main"))
    row = tree[tree.index(f"/{repo_id}/blob/main/a.txt"):]
    row = row[: row.index("</tr>")]
    assert f"/{repo_id}/commit/{second}" in row and "change a, add b" in row


def test_a_gated_commit_shows_its_diff_only_with_access(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    oid = api.upload_file(path_or_fileobj=b"gated words\n", path_in_repo="g.txt", repo_id=repo_id).oid
    api.update_repo_settings(repo_id, gated="manual")
    outsider = assert_page(get(server, f"/{repo_id}/commit/{oid}", "bob"))
    assert "gated words" not in outsider and "have access" in outsider
    assert "+gated words" in assert_page(get(server, f"/{repo_id}/commit/{oid}", "alice"))


def test_hostile_commit_messages_stay_text(api: HfApi, server: LiveServer, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    first = api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id).oid
    baseline = {p: active_elements(assert_page(get(server, p))) for p in (
        f"/{repo_id}/commits/main", f"/{repo_id}/commit/{first}")}
    oids = [api.upload_file(path_or_fileobj=p.encode(), path_in_repo="x.txt", repo_id=repo_id,
                            commit_message=p[:190], commit_description=p).oid for p in PAYLOADS[:40]]
    history = assert_page(get(server, f"/{repo_id}/commits/main"))
    assert dangers(history, baseline[f"/{repo_id}/commits/main"]) == []
    for oid in oids:
        commit = assert_page(get(server, f"/{repo_id}/commit/{oid}"))
        assert dangers(commit, baseline[f"/{repo_id}/commit/{first}"]) == [], oid


def test_weight_files_show_their_tensor_table(api: HfApi, server: LiveServer, repo_name: str, tmp_path: Path) -> None:
    import gguf
    import numpy as np
    from safetensors.numpy import save

    weights = save({"encoder.weight": np.zeros((4, 8), dtype=np.float32), "<b>odd</b>.bias": np.zeros(8, np.float16)},
                   metadata={"format": "pt", "note": "<script>alert(1)</script>"})
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(2048)
    writer.add_tensor("token_embd.weight", np.zeros((10, 16), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    repo_id = api.create_repo(repo_name).repo_id
    api.create_commit(repo_id, commit_message="weights", operations=[
        CommitOperationAdd("model.safetensors", weights), CommitOperationAdd("tiny.gguf", path.read_bytes()),
        CommitOperationAdd("broken.safetensors", b"\xff" * 64),
    ])

    html = assert_page(get(server, f"/{repo_id}/blob/main/model.safetensors"))
    page = parse(html)
    cells = page.text  # each cell's text on its own
    assert "40 parameters (40)" in page.plain and "F32: 32" in page.plain and "F16: 8" in page.plain
    assert "encoder.weight" in cells and "[4, 8]" in cells and "32" in cells and "&lt;b&gt;odd&lt;/b&gt;.bias" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html  # metadata as text
    server.settle()  # the repo page's sidebar: the catalog's parameters and tensor types
    sidebar = assert_page(get(server, f"/{repo_id}")).split("<aside", 1)[1]
    assert "<dt>Tensor types</dt><dd>F16 · F32</dd>" in sidebar
    gg = parse(assert_page(get(server, f"/{repo_id}/blob/main/tiny.gguf")))
    assert "GGUF header" in gg.plain and "token_embd.weight" in gg.plain and "F16" in gg.plain
    assert "[16, 10]" in gg.text and "general.architecture" in gg.text and "llama" in gg.plain
    broken = parse(assert_page(get(server, f"/{repo_id}/blob/main/broken.safetensors")))
    assert "The header could not be read" in broken.plain


def test_search_facets_count_the_matches(api: HfApi, server: LiveServer, repo_name: str) -> None:
    """Facet counts over every match a caller may see; a facet's link adds its filter (or takes
    it away when it is on), and the page then lists just those repos."""
    import numpy as np
    from safetensors.numpy import save

    mark = f"fx-{repo_name[2:]}"
    specs = [  # (repo, private, task, license, languages)
        (f"alice/{repo_name}-a", False, "text-classification", "mit", ["en"]),
        (f"alice/{repo_name}-b", False, "text-classification", "apache-2.0", ["en", "fr"]),
        (f"acme/{repo_name}-c", True, "fill-mask", "mit", ["en"]),
    ]
    weights = save({"w": np.zeros((10, 10), dtype=np.float32)})
    for repo_id, private, task, license_, languages in specs:
        api.create_repo(repo_id, private=private)
        card = (f"---\nlicense: {license_}\npipeline_tag: {task}\nlibrary_name: transformers\n"
                f"language: {languages}\ntags:\n- {mark}\n---\n# {repo_id}\n")
        api.create_commit(repo_id, commit_message="card", operations=[
            CommitOperationAdd("README.md", card.encode()), CommitOperationAdd("model.safetensors", weights)])
    server.settle()

    def facets(html: str) -> dict[str, dict[str, tuple[int, str]]]:
        """title -> label -> (count, href), read from the facets nav."""
        out: dict[str, dict[str, tuple[int, str]]] = {}
        part = html.split('<nav class="facets"', 1)[1].split("</nav>", 1)[0]
        for block in part.split("<h2>")[1:]:
            title, rest = block.split("</h2>", 1)
            item = r'<li><a href="([^"]+)"[^>]*>([^<]+)</a> <span class="n">([^<]+)</span>'
            for href, label, count in re.findall(item, rest):
                out.setdefault(title, {})[unescape(label)] = (int(count), unescape(href))
        return out

    seen = facets(assert_page(get(server, "/models", "alice", filter=mark)))
    assert {k: v[0] for k, v in seen["Tasks"].items()} == {"text-classification": 2, "fill-mask": 1}
    assert {k: v[0] for k, v in seen["Licenses"].items()} == {"mit": 2, "apache-2.0": 1}
    assert {k: v[0] for k, v in seen["Languages"].items()} == {"en": 3, "fr": 1}
    assert {k: v[0] for k, v in seen["Libraries"].items()} == {"transformers": 3}
    assert seen["Parameters"] == {"< 100M": (3, seen["Parameters"]["< 100M"][1])}
    assert seen["Other tags"][mark][0] == 3
    outsider = facets(assert_page(get(server, "/models", "bob", filter=mark)))
    assert {k: v[0] for k, v in outsider["Tasks"].items()} == {"text-classification": 2}  # the private one unseen
    assert {k: v[0] for k, v in outsider["Licenses"].items()} == {"mit": 1, "apache-2.0": 1}

    # follow the task facet, then the licence facet: two facets and a sort, all in the URL
    href = seen["Tasks"]["text-classification"][1]
    assert "filter=text-classification" in href and f"filter={mark}" in href
    narrowed = assert_page(httpx.get(server.url + href + "&sort=lastModified", headers={
        "Authorization": f"Bearer {TOKENS['alice']}"}))
    listed = {a.get("href") for a in parse(narrowed).all("a")}
    assert {f"/{specs[0][0]}", f"/{specs[1][0]}"} <= listed and f"/{specs[2][0]}" not in listed
    again = facets(narrowed)
    assert 'aria-current="true"' in narrowed and set(again["Tasks"]) == {"text-classification"}
    mit = again["Licenses"]["mit"][1]
    only = assert_page(httpx.get(server.url + mit, headers={"Authorization": f"Bearer {TOKENS['alice']}"}))
    listed = {a.get("href") for a in parse(only).all("a")}
    assert f"/{specs[0][0]}" in listed and f"/{specs[1][0]}" not in listed
    # the active facet's link takes its filter away again
    off = facets(only)["Tasks"]["text-classification"][1]
    assert "filter=text-classification" not in off and "filter=license%3Amit" in off
    # a parameter range from its facet
    small = seen["Parameters"]["< 100M"][1]
    assert "num_parameters=max%3A100M" in small
    assert f"/{specs[0][0]}" in assert_page(httpx.get(server.url + small, headers={
        "Authorization": f"Bearer {TOKENS['alice']}"}))


def test_collection_pages(api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer,
                          repo_name: str) -> None:
    """``/collections/OWNER/SLUG``: title, description, each item the viewer may read with its
    note; a private collection (or item) only for its owner's members; ``/collections?owner=``
    lists them; profiles and repo pages link there."""
    public = api.create_repo(repo_name).repo_id
    hidden = api.create_repo(f"{repo_name}-hidden", private=True).repo_id
    data = api.create_repo(repo_name, repo_type="dataset").repo_id
    shelf = api.create_collection(title=f"Shelf {repo_name}", description="Models & <data> we like")
    api.add_collection_item(shelf.slug, item_id=public, item_type="model", note="the <b>best</b> one")
    api.add_collection_item(shelf.slug, item_id=hidden, item_type="model")
    api.add_collection_item(shelf.slug, item_id=data, item_type="dataset")
    secret = api.create_collection(title=f"Secret {repo_name}", private=True)

    anonymous = assert_page(get(server, f"/collections/{shelf.slug}"))
    page = parse(anonymous)
    hrefs = [a.get("href") for a in page.all("a")]
    assert f"Shelf {repo_name}" in page.plain and "Models & <data> we like" in page.plain
    assert "the <b>best</b> one" in page.plain and "<b>best" not in anonymous
    assert f"/{public}" in hrefs and f"/datasets/{data}" in hrefs and f"/{hidden}" not in hrefs
    assert f"/{hidden}" in [a.get("href") for a in parse(assert_page(get(server, f"/collections/{shelf.slug}",
                                                                          "alice"))).all("a")]
    for who in (None, "bob"):
        missing = get(server, f"/collections/{secret.slug}", who)
        assert_page(missing, 404)
        assert missing.headers["x-error-code"] == "CollectionNotFound" or missing.status_code == 404
    assert f"Secret {repo_name}" in assert_page(get(server, f"/collections/{secret.slug}", "alice"))
    assert_page(get(server, f"/collections/alice/nothing-{'0' * 24}"), 404)

    listed = [a.get("href") for a in parse(assert_page(get(server, "/collections", owner="alice"))).all("a")]
    assert f"/collections/{shelf.slug}" in listed and f"/collections/{secret.slug}" not in listed
    mine = [a.get("href") for a in parse(assert_page(get(server, "/collections", "alice", owner="alice"))).all("a")]
    assert f"/collections/{secret.slug}" in mine
    assert_page(get(server, "/collections", sort="nope"), 400)
    assert f"/collections/{shelf.slug}" in assert_page(get(server, "/alice"))
    assert f"/collections/{shelf.slug}" in assert_page(get(server, f"/{public}"))
    del api_as


def test_the_dataset_viewer(api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer,
                            repo_name: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(60)), "text": [f"row {i} <b>x</b>" for i in range(60)]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=20)
    big = "n,word\n" + "".join(f"{i},{'w' * 40}\n" for i in range(30_000))  # over the 1 MiB window
    repo_id = api.create_repo(repo_name, repo_type="dataset").repo_id
    api.create_commit(repo_id, repo_type="dataset", commit_message="data", operations=[
        CommitOperationAdd("data/train.parquet", sink.getvalue().to_pybytes()),
        CommitOperationAdd("small.csv", b"a,b\n1,<script>alert(1)</script>\n2,two\n"),
        CommitOperationAdd("big.csv", big.encode()),
        CommitOperationAdd("rows.jsonl", b'{"q": "hi", "n": 1}\n{"q": "yo", "extra": [1, 2]}\n'),
        CommitOperationAdd("broken.parquet", b"not parquet at all"),
        CommitOperationAdd("bad.jsonl", b'{"ok": 1}\nnot json\n'),
    ])
    base = f"/datasets/{repo_id}/viewer"

    first = parse(assert_page(get(server, base)))  # the first viewable file: big.csv (sorted)
    links = [a.get("href") or "" for a in first.all("a")]
    assert f"{base}?file=data%2Ftrain.parquet&p=0" in links and f"/datasets/{repo_id}/viewer" in links
    html = assert_page(get(server, base, file="data/train.parquet", p=1))
    page = parse(html)
    assert "data/train.parquet: 60 rows, 2 columns" in page.plain and "int64" in page.text
    assert "row 25 &lt;b&gt;x&lt;/b&gt;" in html and "row 24" not in html and "row 50" not in html
    assert "Page 2 of 3" in page.plain
    assert f"{base}?file=data%2Ftrain.parquet&p=2" in [a.get("href") for a in page.all("a")]

    small = assert_page(get(server, base, file="small.csv"))
    assert "small.csv: 2 rows, 2 columns" in parse(small).plain and "&lt;script&gt;" in small
    assert "<script>" not in small
    bigger = parse(assert_page(get(server, base, file="big.csv")))
    assert "rows (counted in the first megabyte)" in bigger.plain and "+" in bigger.plain
    rows = parse(assert_page(get(server, base, file="rows.jsonl")))
    assert "rows.jsonl: 2 rows, 3 columns" in rows.plain and "[1, 2]" in rows.text
    assert "The file could not be read" in parse(assert_page(get(server, base, file="broken.parquet"))).plain
    assert "Line 2 is not JSON" in parse(assert_page(get(server, base, file="bad.jsonl"))).plain

    assert_page(get(server, base, file="nope.csv"), 400)
    assert_page(get(server, base, p="-1"), 400)
    assert_page(get(server, base, p="lots"), 400)

    api.update_repo_settings(repo_id, repo_type="dataset", gated="manual")
    gated = get(server, base, "bob", file="small.csv")
    assert_page(gated, 403)
    assert gated.headers["x-error-code"] == "GatedRepo" and "two" not in gated.text
    api.update_repo_settings(repo_id, repo_type="dataset", private=True)
    hidden = get(server, base, "bob")
    assert_page(hidden, 404)
    assert hidden.headers["x-error-code"] == "RepoNotFound"
    assert "small.csv" in assert_page(get(server, base, "alice"))


def test_user_and_org_pages(api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer,
                            repo_name: str) -> None:
    public = api.create_repo(f"{repo_name}-pub").repo_id
    secret = api.create_repo(f"acme/{repo_name}-secret", private=True).repo_id
    data = api.create_repo(f"{repo_name}-data", repo_type="dataset").repo_id
    api.create_collection(title=f"Shelf {repo_name}")
    assert httpx.post(f"{server.url}/api/models/{public}/like",
                      headers={"Authorization": f"Bearer {TOKENS['carol']}"}).status_code == 200
    assert httpx.post(f"{server.url}/api/models/{secret}/like",
                      headers={"Authorization": f"Bearer {TOKENS['carol']}"}).status_code == 200

    alice = assert_page(get(server, "/alice", "bob"))
    page = parse(alice)
    hrefs = [a.get("href") for a in page.all("a")]
    assert "Alice A" in page.plain and f"/{public}" in hrefs and f"/datasets/{data}" in hrefs
    assert "/acme" in hrefs and "/vault" in hrefs and f"Shelf {repo_name}" in page.plain
    assert {"src": "/avatars/alice.svg", "alt": "", "width": "72", "height": "72"} in [
        {k: v for k, v in img.items() if k != "class"} for img in page.all("img")]

    for viewer, sees in ((None, False), ("bob", False), ("carol", True), ("alice", True)):
        org = assert_page(get(server, "/acme", viewer))
        assert (f'href="/{secret}"' in org) is sees, viewer
        assert ("admin" in parse(org).plain) is sees, viewer  # roles only for the org's members
        liked = assert_page(get(server, "/carol", viewer))
        assert f'href="/{public}"' in liked and (f'href="/{secret}"' in liked) is sees, viewer

    missing = get(server, f"/nobody-{repo_name}")
    assert_page(missing, 404)
    assert missing.headers["x-error-code"]
    # the repo header links its namespace's page
    assert 'href="/alice"' in assert_page(get(server, f"/{public}"))


def test_hostile_account_names_stay_text(server: LiveServer, repo_name: str) -> None:
    user = f"u{repo_name[2:]}"
    baseline = active_elements(assert_page(get(server, "/carol")))
    server.seed({"users": [{"name": f"{user}{i}", "fullname": p[:100]} for i, p in enumerate(PAYLOADS)]})
    for i, payload in enumerate(PAYLOADS):
        html = assert_page(get(server, f"/{user}{i}"))
        assert dangers(html, baseline) == [], payload


def test_leaderboard_page(api: HfApi, server: LiveServer, repo_name: str) -> None:
    dataset = f"lb/{repo_name}"  # a dataset only this test's models report on

    def card(value: float) -> str:
        return ("---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: text-classification\n"
                f"    dataset:\n      type: {dataset}\n      name: LB\n    metrics:\n    - type: accuracy\n"
                f"      value: {value}\n---\n# m\n")

    for key, value in (("a", 0.5), ("b", 0.9), ("c", 0.7)):
        rid = api.create_repo(f"{repo_name}-{key}").repo_id
        api.upload_file(path_or_fileobj=card(value).encode(), path_in_repo="README.md", repo_id=rid)
    secret = api.create_repo(f"acme/{repo_name}-s", private=True).repo_id
    api.upload_file(path_or_fileobj=card(0.99).encode(), path_in_repo="README.md", repo_id=secret)
    server.settle()

    empty = parse(assert_page(get(server, "/leaderboard")))
    assert empty.all("table") == [] and empty.all("form") != []  # a form, no board yet
    query = {"task": "text-classification", "dataset": dataset, "metric": "accuracy"}
    page = parse(assert_page(get(server, "/leaderboard", "bob", **query)))
    ranked = [a.get("href") for a in page.all("a") if (a.get("href") or "").startswith(f"/alice/{repo_name}-")]
    assert ranked == [f"/alice/{repo_name}-b", f"/alice/{repo_name}-c", f"/alice/{repo_name}-a"]
    widths = [float(r["width"] or 0) for r in page.all("rect")]
    assert widths == sorted(widths, reverse=True) and len(widths) == 3 and widths[0] == 100.0
    member = parse(assert_page(get(server, "/leaderboard", "alice", **query)))
    assert [a.get("href") for a in member.all("a") if repo_name in (a.get("href") or "")][0] == f"/{secret}"
    low = parse(assert_page(get(server, "/leaderboard", "bob", order="asc", **query)))
    assert [a.get("href") for a in low.all("a") if repo_name in (a.get("href") or "")][0] == f"/alice/{repo_name}-a"
    assert "No model reports" in parse(assert_page(get(server, "/leaderboard", task="x", dataset="y",
                                                       metric="z"))).plain
    assert_page(get(server, "/leaderboard", order="sideways", **query), 400)


def test_a_repo_page_shows_what_surrounds_the_model(api: HfApi, server: LiveServer, repo_name: str) -> None:
    base = api.create_repo(f"{repo_name}-base").repo_id
    api.upload_file(path_or_fileobj=b"# Base", path_in_repo="README.md", repo_id=base)
    child = api.create_repo(f"{repo_name}-child").repo_id
    card = (f"---\nbase_model: {base}\ndatasets:\n- acme/{repo_name}-data\nmodel-index:\n- name: m\n  results:\n"
            "  - task:\n      type: text-classification\n    dataset:\n      type: glue\n      name: GLUE SST-2\n"
            "    metrics:\n    - type: accuracy\n      value: 0.931\n---\n# Child\n")
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=child)
    secret = api.create_repo(f"acme/{repo_name}-secret-child", private=True).repo_id
    api.upload_file(path_or_fileobj=f"---\nbase_model: {base}\n---\n".encode(), path_in_repo="README.md",
                    repo_id=secret)
    shelf = api.create_collection(title=f"Shelf {repo_name}")
    api.add_collection_item(shelf.slug, item_id=base, item_type="model")
    server.settle()

    page = parse(assert_page(get(server, f"/{base}", "bob")))
    hrefs = [a.get("href") for a in page.all("a")]
    assert f"/{child}" in hrefs and f"/{secret}" not in hrefs  # the private child stays hidden
    assert f"Shelf {repo_name}" in page.plain
    points = page.all("polyline")[0]["points"] or ""
    assert len(points.split()) == 30  # a point a day for the last 30 days
    assert f"/{secret}" in [a.get("href") for a in parse(assert_page(get(server, f"/{base}", "alice"))).all("a")]
    child_page = parse(assert_page(get(server, f"/{child}")))
    assert "GLUE SST-2" in child_page.text and "accuracy" in child_page.text and "0.931" in child_page.text
    assert f"/datasets/acme/{repo_name}-data" in [a.get("href") for a in child_page.all("a")]
    assert f"/{base}" in [a.get("href") for a in child_page.all("a")]  # its base model


def test_scan_results_show_on_the_file_pages(api: HfApi, server: LiveServer, repo_name: str) -> None:
    import os
    import pickle

    from tests.conformance.test_scanning import wait_for_scans
    from tests.support.scan_corpus import Reduce

    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    evil = pickle.dumps(Reduce(os.system, f"echo {repo_name}"), protocol=4)
    api.upload_file(path_or_fileobj=evil, path_in_repo="models/evil.pkl", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"plain", path_in_repo="models/notes.txt", repo_id=repo_id)
    wait_for_scans(api, repo_id)

    tree = assert_page(get(server, f"/{repo_id}/tree/main/models"))
    flagged = [a["href"] for a in parse(tree).all("a") if "scan-unsafe" in (a.get("class") or "")]
    assert flagged == [f"/{repo_id}/blob/main/models/evil.pkl#security"]
    assert re.search(r'class="badge scan-unsafe"[^>]*>unsafe</a>', tree)
    blob = assert_page(get(server, f"/{repo_id}/blob/main/models/evil.pkl"))
    text = page_text(blob)
    assert "Security scan: unsafe" in text and "posix.system" in text and "dangerous" in text
    # The page shows what the API says, no more: the same file through the API.
    [info] = api.get_paths_info(repo_id, ["models/evil.pkl"], expand=True)
    assert info.security.pickle_import_scan["pickleImports"] == [  # type: ignore[union-attr]
        {"module": "posix", "name": "system", "safety": "dangerous"}]
    assert "Security scan" not in page_text(assert_page(get(server, f"/{repo_id}/blob/main/models/notes.txt")))
