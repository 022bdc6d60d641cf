"""The pages in a real browser: Debian's Chromium driven by Playwright, against a live server
(SQLite and PostgreSQL). Hostile input runs no script (dialogs and CSP reports are watched),
no page asks any host but the hub, axe-core finds no serious or critical accessibility
violation, the search works with the keyboard alone, and every main page fits a phone's width.

Chromium comes from apt (``.ci/run`` installs it), axe-core from npm (``make`` puts it beside the
venv): a missing one fails these tests rather than skipping them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request, sync_playwright
from safetensors.numpy import save

from tests.support.server import TOKENS, LiveServer
from tests.web.test_pages import CARD
from tests.web.xss import PAYLOADS

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(sys.executable).parent.parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for this module only: Playwright's sync API holds an event loop while it runs,
    and other modules call ``asyncio.run``."""
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Watch:
    """What a page did that it must not: dialogs opened, CSP violations, requests to other hosts."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("request", self._request)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)


@dataclass
class Showcase:
    repo_id: str
    commit: str
    collection: str  # its slug


@pytest.fixture(scope="module")
def showcase(server: LiveServer) -> Showcase:
    """A model with a card, folders, text, binary and LFS files, and a dataset beside it."""
    api = HfApi(endpoint=server.url, token=TOKENS["alice"])
    name = f"showcase-{os.urandom(4).hex()}"
    repo_id = api.create_repo(name).repo_id
    api.create_commit(repo_id, commit_message="showcase", operations=[
        CommitOperationAdd("README.md", CARD.encode()),
        CommitOperationAdd("config.json", b'{"model_type": "bert", "hidden_size": 32}'),
        CommitOperationAdd("src/train.py", b"import torch\n\nprint('training')\n" * 20),
        CommitOperationAdd("model.safetensors", save({
            "embeddings.word_embeddings.weight": np.zeros((64, 32), dtype=np.float32),
            "encoder.layer.0.attention.self.query.weight": np.zeros((32, 32), dtype=np.float32),
            "pooler.dense.bias": np.zeros(32, dtype=np.float16),
        }, metadata={"format": "pt"})),
    ])
    commit = api.upload_file(path_or_fileobj=b"import torch\n\nprint('trained')\n", path_in_repo="src/train.py",
                             repo_id=repo_id, commit_message="Print what happened").oid
    dataset = api.create_repo(name, repo_type="dataset").repo_id
    rows = "".join(f"{i},sentence number {i},{i % 3}\n" for i in range(40))
    api.upload_file(path_or_fileobj=f"id,text,label\n{rows}".encode(), path_in_repo="train.csv", repo_id=dataset,
                    repo_type="dataset")
    api.create_discussion(repo_id, title="How was it trained?", description="Which **data**?")
    api.upload_file(path_or_fileobj=b"import torch\n\nprint('trained well')\n", path_in_repo="src/train.py",
                    repo_id=repo_id, commit_message="Say it better", create_pr=True)
    for suffix, value in (("small", 71.5), ("base", 84.25), ("large", 88.0)):
        ranked = api.create_repo(f"{name}-{suffix}").repo_id
        api.upload_file(path_or_fileobj=(
            "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: text-classification\n"
            "    dataset:\n      type: showcase/bench\n      name: Bench\n    metrics:\n    - type: accuracy\n"
            f"      value: {value}\n---\n# {suffix}\n").encode(), path_in_repo="README.md", repo_id=ranked)
    shelf = api.create_collection(title=f"Showcase shelf {name}", description="What we use for the demo")
    api.add_collection_item(shelf.slug, item_id=repo_id, item_type="model", note="The model itself")
    api.add_collection_item(shelf.slug, item_id=dataset, item_type="dataset")
    server.settle()
    return Showcase(repo_id, commit, shelf.slug)


def main_pages(showcase: Showcase) -> dict[str, str]:
    repo_id = showcase.repo_id
    return {
        "home": "/",
        "models": "/models?search=showcase&sort=lastModified",
        "datasets": "/datasets",
        "model": f"/{repo_id}",
        "files": f"/{repo_id}/tree/main",
        "folder": f"/{repo_id}/tree/main/src",
        "file": f"/{repo_id}/blob/main/src/train.py",
        "weights": f"/{repo_id}/blob/main/model.safetensors",
        "history": f"/{repo_id}/commits/main",
        "commit": f"/{repo_id}/commit/{showcase.commit}",
        "community": f"/{repo_id}/discussions",
        "discussion": f"/{repo_id}/discussions/1",
        "pull-request": f"/{repo_id}/discussions/2",
        "dataset": f"/datasets/{repo_id}",
        "viewer": f"/datasets/{repo_id}/viewer",
        "leaderboard": "/leaderboard?task=text-classification&dataset=showcase%2Fbench&metric=accuracy",
        "collections": "/collections?owner=alice",
        "collection": f"/collections/{showcase.collection}",
        "user": "/alice",
        "org": "/acme",
        "sign-in": "/login",
        "not-found": f"/{repo_id}-missing",
    }


def test_hostile_input_runs_no_script(browser: Browser, server: LiveServer, api: HfApi, repo_name: str) -> None:
    repo_id = api.create_repo(repo_name).repo_id
    card = "\n\n".join(PAYLOADS)
    api.create_commit(repo_id, commit_message="hostile", operations=[
        CommitOperationAdd("README.md", card.encode()),
        *[CommitOperationAdd(f"h{i}.txt", p.encode()) for i, p in enumerate(PAYLOADS)],
    ])
    thread = api.create_discussion(repo_id, title=PAYLOADS[0][:200], description="\n\n".join(PAYLOADS)).num
    for payload in PAYLOADS[:20]:
        api.comment_discussion(repo_id, thread, payload)
    shelf = api.create_collection(title=f"{repo_name} {PAYLOADS[1][:60]}", description=PAYLOADS[2][:150])
    watch = Watch(server.url)
    context = browser.new_context()
    page = context.new_page()
    watch.attach(page)
    urls = [f"/{repo_id}", f"/{repo_id}/tree/main", f"/{repo_id}/discussions", f"/{repo_id}/discussions/{thread}",
            f"/collections/{shelf.slug}"]
    urls += [f"/{repo_id}/blob/main/h{i}.txt" for i in range(len(PAYLOADS))]
    urls += [f"/models?search={quote(p, safe='')}&filter={quote(p, safe='')}" for p in PAYLOADS]
    for url in urls:
        response = page.goto(server.url + url, wait_until="load")
        assert response is not None and response.status == 200, url
    assert watch.dialogs == [], watch.dialogs
    assert watch.violations == [], watch.violations  # nothing was even tried and blocked
    assert watch.foreign == [], watch.foreign
    page.goto(server.url + f"/{repo_id}/blob/main/h0.txt")
    assert PAYLOADS[0] in page.inner_text("main")  # there, as text
    context.close()


def test_no_serious_accessibility_violations(browser: Browser, server: LiveServer, showcase: Showcase) -> None:
    """axe-core in the page (the context bypasses CSP only to let the checker's script in)."""
    assert AXE.exists(), "axe-core is missing: `make` installs it from npm"
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    found = {label: axe(page, server.url + url) for label, url in main_pages(showcase).items()}
    context.close()
    assert {k: v for k, v in found.items() if v} == {}, found


def axe(page: Page, url: str) -> list[str]:
    """The serious and critical violations axe-core finds on the page at ``url``."""
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_no_serious_accessibility_violations_signed_in(browser: Browser, server: LiveServer,
                                                       showcase: Showcase) -> None:
    """The pages of a signed-in person: the header's account links, the forms."""
    name, token = f"a{os.urandom(4).hex()}", f"hf_{os.urandom(16).hex()}"
    server.seed({"users": [{"name": name, "password": "a long enough password",
                            "tokens": [{"value": token, "role": "write", "name": "t"}]}]})
    repo_id = HfApi(endpoint=server.url, token=token).create_repo("a11y").repo_id
    org = f"o{os.urandom(4).hex()}"
    server.seed({"orgs": [{"name": org, "members": {name: "admin", "bob": "read"}}]})
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(server.url + "/login")
    page.fill("#username", name)
    page.fill("#password", "a long enough password")
    page.click("main button:has-text('Sign in')")
    page.wait_for_url(server.url + "/")
    pages_ = {
        "home": "/", "model": f"/{showcase.repo_id}", "tokens": "/settings/tokens", "new": "/new",
        "upload": f"/{repo_id}/upload/main", "edit": f"/{showcase.repo_id}/edit/main/src/train.py",
        "new-discussion": f"/{showcase.repo_id}/discussions/new", "discussion": f"/{showcase.repo_id}/discussions/1",
        "pull-request": f"/{showcase.repo_id}/discussions/2", "settings": f"/{repo_id}/settings",
        "profile": "/settings/profile", "webhooks": "/settings/webhooks", "new-org": "/organizations/new",
        "org-settings": f"/organizations/{org}/settings",
    }
    found = {label: axe(page, server.url + url) for label, url in pages_.items()}
    context.close()
    assert {k: v for k, v in found.items() if v} == {}, found


def test_search_with_the_keyboard_alone(browser: Browser, server: LiveServer, showcase: Showcase) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    for _ in range(10):  # Tab until the header's search box has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "top-search":
            break
    assert page.evaluate("document.activeElement.id") == "top-search"
    page.keyboard.type(showcase.repo_id.split("/")[1])
    page.keyboard.press("Enter")
    page.wait_for_url("**/models?search=*")
    for _ in range(40):  # Tab to the result and follow it with Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == f"/{showcase.repo_id}":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/{showcase.repo_id}")
    assert "The Card Title" in page.inner_text("main")
    context.close()


def too_wide(page: Page, server: LiveServer, pages: dict[str, str], width: int, prefix: str) -> dict[str, int]:
    """The pages (label -> path) that scroll sideways at ``width``, with their width; each kept as
    ``docs/ui``-style screenshot ``PREFIX+LABEL-WIDTH.png`` when MODELYARD_UI_DIR is set (SQLite run)."""
    out = os.environ.get("MODELYARD_UI_DIR")
    wide = {}
    for label, url in pages.items():
        page.goto(server.url + url)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            wide[label] = scroll
        if out and server.backend == "sqlite":
            page.screenshot(path=str(Path(out) / f"{prefix}{label}-{width}.png"), full_page=False)
    return wide


@pytest.mark.parametrize("width", WIDTHS)
def test_main_pages_fit_the_width(browser: Browser, server: LiveServer, showcase: Showcase, width: int) -> None:
    """No main page scrolls sideways at a desktop's or a phone's width. With MODELYARD_UI_DIR
    set, each is kept as a screenshot there (``docs/ui/`` is made that way, see docs/ui.md)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    wide = too_wide(page, server, main_pages(showcase), width, "")
    context.close()
    assert wide == {}, wide
    assert watch.foreign == [] and watch.violations == []


@pytest.mark.parametrize("width", WIDTHS)
def test_signed_in_pages_fit_the_width(browser: Browser, server: LiveServer, showcase: Showcase, width: int) -> None:
    """The same for the pages with forms a signed-in person sees (kept as ``signed-in-*`` shots)."""
    name, token = f"w{os.urandom(4).hex()}", f"hf_{os.urandom(16).hex()}"
    org = f"w{os.urandom(4).hex()}"
    server.seed({"users": [{"name": name, "password": "a long enough password",
                            "tokens": [{"value": token, "role": "write", "name": "laptop"}]}],
                 "orgs": [{"name": org, "fullname": "Width Org", "members": {name: "admin", "bob": "write"}}]})
    repo_id = HfApi(endpoint=server.url, token=token).create_repo("wide").repo_id
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    keyboard_sign_in(page, server, name, "a long enough password")
    wide = too_wide(page, server, {
        "new": "/new", "upload": f"/{repo_id}/upload/main", "edit": f"/{showcase.repo_id}/edit/main/src/train.py",
        "repo-settings": f"/{repo_id}/settings", "tokens": "/settings/tokens", "profile": "/settings/profile",
        "webhooks": "/settings/webhooks", "org-settings": f"/organizations/{org}/settings"}, width, "signed-in-")
    context.close()
    assert wide == {}, wide


def test_sign_in_make_a_token_and_like_in_the_browser(
    browser: Browser, server: LiveServer, showcase: Showcase
) -> None:
    """The whole flow with the keyboard and the mouse as a person does it; the token made in
    the page then works with huggingface_hub."""
    name = f"b{os.urandom(4).hex()}"
    server.cli("users", "create", name, "--password-stdin", stdin="a long enough password\n")
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    page.goto(server.url + f"/{showcase.repo_id}")
    page.click("text=Sign in")
    page.fill("#username", name)
    page.fill("#password", "a long enough password")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + f"/{showcase.repo_id}")  # back where the person was
    assert name in page.inner_text("nav.account").split()

    page.click("form.like button")
    page.wait_for_load_state()
    assert page.get_attribute("form.like button", "aria-pressed") == "true"
    assert HfApi(endpoint=server.url).model_info(showcase.repo_id).likes >= 1

    page.click("text=Tokens")
    page.fill("#token-name", "laptop")
    page.select_option("#token-role", "read")
    page.click("form.filters button")
    value = page.input_value("#new-token")
    assert HfApi(endpoint=server.url, token=value).whoami()["name"] == name
    page.click("button[aria-label='Revoke laptop']")
    page.wait_for_url("**/settings/tokens")
    assert "laptop" not in page.inner_text("main")
    page.click("nav.account button")  # sign out
    page.wait_for_url(server.url + "/")
    assert "Sign in" in page.inner_text("nav.account")
    context.close()
    assert watch.dialogs == [] and watch.violations == [] and watch.foreign == []


def test_create_upload_discuss_and_merge_in_the_browser(browser: Browser, server: LiveServer, tmp_path: Path) -> None:
    """Issue 9's flow in a real browser: create a repo, upload files, see the card, open a pull
    request by editing the README, open a discussion, comment, merge; the client sees it all."""
    name = f"c{os.urandom(4).hex()}"
    server.cli("users", "create", name, "--password-stdin", stdin="a long enough password\n")
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    page.goto(server.url + "/login")
    page.fill("#username", name)
    page.fill("#password", "a long enough password")
    page.click("main button:has-text('Sign in')")
    page.wait_for_url(server.url + "/")

    page.click("nav.account >> text=New")
    page.fill("#name", "browser-made")
    page.click("main button:has-text('Create')")
    page.wait_for_url(f"**/{name}/browser-made")
    repo_id = f"{name}/browser-made"

    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# Made in Chromium\n\nFirst version.\n")
    (tmp_path / "notes.txt").write_text("notes\n")
    page.goto(f"{server.url}/{repo_id}/tree/main")
    page.click("text=Upload files")
    page.set_input_files("#files", [str(tmp_path / "README.md"), str(tmp_path / "notes.txt")])
    page.fill("#summary", "Add the card")
    page.click("main button:has-text('Upload')")
    page.wait_for_url(f"**/{repo_id}/tree/main")
    page.goto(f"{server.url}/{repo_id}")
    assert "Made in Chromium" in page.inner_text("article.card")

    page.goto(f"{server.url}/{repo_id}/blob/main/README.md")
    page.click("text=Edit")
    page.fill("#content", "---\nlicense: mit\n---\n# Made in Chromium\n\nSecond version.\n")
    page.check("input[name=pr][value='1']")
    page.click("main form button:has-text('Save')")
    page.wait_for_url(f"**/{repo_id}/discussions/1")
    assert "+Second version." in page.inner_text("section.diff")

    page.goto(f"{server.url}/{repo_id}/discussions/new")
    page.fill("#title", "Where is the training data?")
    page.fill("#description", "Please link it.")
    page.click("main button:has-text('Open')")
    page.wait_for_url(f"**/{repo_id}/discussions/2")
    page.fill("#comment", "It is coming in the **next** commit.")
    page.click("button:has-text('Comment')")
    page.wait_for_url(f"**/{repo_id}/discussions/2")
    assert "It is coming in the next commit." in page.inner_text("ol.events")

    page.goto(f"{server.url}/{repo_id}/discussions/1")
    page.click("button:has-text('Merge')")
    page.wait_for_url(f"**/{repo_id}/discussions/1")
    assert "merged" in page.inner_text("main")
    context.close()
    api = HfApi(endpoint=server.url)
    assert api.get_discussion_details(repo_id, 1).status == "merged"
    assert [d.title for d in api.get_repo_discussions(repo_id)] == ["Where is the training data?", "Update README.md"]
    readme = Path(api.hf_hub_download(repo_id, "README.md", cache_dir=str(tmp_path / "cache"))).read_text()
    assert "Second version." in readme
    assert watch.dialogs == [] and watch.violations == [] and watch.foreign == []


def test_browse_read_and_search_in_the_browser(browser: Browser, server: LiveServer, showcase: Showcase) -> None:
    """Done-when 1's reading half, clicked as a person does: the tree, a safetensors file's
    tensor table, the history and a commit's diff, a search with two facets and a sort, a
    dataset's viewer."""
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    repo_id = showcase.repo_id
    page.goto(f"{server.url}/{repo_id}")
    page.click("nav.tabs >> text=Files")
    page.wait_for_url(f"**/{repo_id}/tree/main")
    page.click("table.files >> text=model.safetensors")
    page.wait_for_url(f"**/{repo_id}/blob/main/model.safetensors")
    tensors = page.inner_text("table.tensors")
    assert "encoder.layer.0.attention.self.query.weight" in tensors and "[64, 32]" in tensors and "F16" in tensors

    page.click("nav.tabs >> text=History")
    page.wait_for_url(f"**/{repo_id}/commits/main")
    page.click("ol.commits >> text=Print what happened")
    page.wait_for_url(f"**/{repo_id}/commit/{showcase.commit}")
    diff = page.inner_text("section.diff")
    assert "src/train.py" in diff and "+print('trained')" in diff and "-print('training')" in diff

    page.goto(f"{server.url}/models")
    page.fill("#q", repo_id.split("/")[1])
    page.click("form.filters button")
    page.wait_for_url("**/models?search=*")
    page.click("nav.facets >> text=text-classification")
    page.wait_for_url("**filter=*")
    page.click("nav.facets >> text=apache-2.0")
    page.wait_for_url("**filter=*filter=*")
    page.select_option("#sort", "likes")
    page.click("form.filters button")
    page.wait_for_url("**sort=likes*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["sort"] == ["likes"] and len(query["filter"]) == 2 and query["search"] == [repo_id.split("/")[1]]
    results = [a.get_attribute("href") for a in page.query_selector_all("section.results a")]
    assert f"/{repo_id}" in results and f"/{repo_id}-small" not in results  # the ranked ones have no license

    page.goto(f"{server.url}/datasets/{repo_id}")
    page.click("nav.tabs >> text=Viewer")
    page.wait_for_url(f"**/datasets/{repo_id}/viewer**")
    table = page.inner_text("main table")
    assert "sentence number 0" in table and "label" in table
    context.close()
    assert watch.dialogs == [] and watch.violations == [] and watch.foreign == []


#: Every control a form page shows (hidden inputs aside), marked with its order in the page.
MARK_CONTROLS = """() => {
  const found = Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
    .filter(e => e.offsetParent !== null && !e.disabled);
  return found.map((e, i) => { e.dataset.kb = String(i);
    const what = e.id || e.name || e.textContent.trim();
    return e.type === 'radio' ? 'radio:' + e.name : e.tagName.toLowerCase() + '#' + what; });
}"""


def unreachable_by_tab(page: Page) -> list[str]:
    """The form controls of the page that Tab never reaches (a radio group counts as one stop,
    as the keyboard moves within it with the arrows)."""
    controls = page.evaluate(MARK_CONTROLS)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(len(controls) + 60):  # the header's links come first
        page.keyboard.press("Tab")
        mark = page.evaluate("document.activeElement && document.activeElement.dataset ? "
                             "document.activeElement.dataset.kb || null : null")
        if mark is not None:
            reached.add(controls[int(mark)])
    return sorted(set(controls) - reached)


def keyboard_sign_in(page: Page, server: LiveServer, name: str, password: str) -> None:
    """Sign in without the mouse: Tab to the user name, type, Tab, type, Enter."""
    page.goto(server.url + "/login")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "username":
            break
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")


def tab_to(page: Page, element_id: str) -> None:
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_every_form_works_with_the_keyboard_alone(browser: Browser, server: LiveServer, showcase: Showcase) -> None:
    """Done-when 3's second half: on every page with a form, Tab reaches each control; and whole
    forms (sign in, a new organization, adding a member with a role, a new token) are filled and
    sent without the mouse."""
    name, password = f"k{os.urandom(4).hex()}", "a long enough password"
    token = f"hf_{os.urandom(16).hex()}"
    server.seed({"users": [{"name": name, "password": password,
                            "tokens": [{"value": token, "role": "write", "name": "t"}]}]})
    api = HfApi(endpoint=server.url, token=token)
    repo_id = api.create_repo("keys").repo_id
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/login")
    missing = {"sign-in": unreachable_by_tab(page)}
    keyboard_sign_in(page, server, name, password)

    org = f"k{os.urandom(4).hex()}"
    page.goto(server.url + "/organizations/new")
    tab_to(page, "org-name")
    page.keyboard.type(org)
    page.keyboard.press("Tab")
    page.keyboard.type("Keyboard Org")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/organizations/{org}/settings")
    tab_to(page, "new-member")
    page.keyboard.type("bob")
    page.keyboard.press("Tab")  # the role: read, then the arrow down to write
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    with page.expect_navigation():  # back to the same page, with bob on it
        page.keyboard.press("Enter")
    assert "bob" in page.inner_text("table.members")
    members = httpx.get(f"{server.url}/api/organizations/{org}/settings", headers={"Authorization": f"Bearer {token}"})
    assert {m["user"]: m["role"] for m in members.json()["members"]} == {name: "admin", "bob": "write"}

    page.goto(server.url + "/settings/tokens")
    tab_to(page, "token-name")
    page.keyboard.type("by-keys")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    made = page.input_value("#new-token")
    assert HfApi(endpoint=server.url, token=made).whoami()["name"] == name

    form_pages = {
        "search": "/models", "leaderboard": "/leaderboard", "new-repo": "/new", "upload": f"/{repo_id}/upload/main",
        "edit": f"/{showcase.repo_id}/edit/main/src/train.py", "new-discussion": f"/{showcase.repo_id}/discussions/new",
        "discussion": f"/{showcase.repo_id}/discussions/1", "pull-request": f"/{showcase.repo_id}/discussions/2",
        "repo-settings": f"/{repo_id}/settings", "tokens": "/settings/tokens", "profile": "/settings/profile",
        "webhooks": "/settings/webhooks", "new-org": "/organizations/new",
        "org-settings": f"/organizations/{org}/settings", "model": f"/{showcase.repo_id}",
    }
    for label, url in form_pages.items():
        page.goto(server.url + url)
        missing[label] = unreachable_by_tab(page)
    page.goto(server.url + "/models")  # the check itself: a control taken out of the tab order is found
    page.evaluate("document.getElementById('sort').tabIndex = -1")
    assert unreachable_by_tab(page) == ["select#sort"]
    context.close()
    assert {k: v for k, v in missing.items() if v} == {}, missing
