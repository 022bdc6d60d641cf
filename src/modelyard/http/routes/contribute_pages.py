"""Contributing from the browser: create a repo, upload files, edit a text file as a commit or
a pull request, and the discussion pages (list, thread, new, comment, close, reopen, merge).

Each form is checked against its session's CSRF token, then calls the same service as the API
(``repos.create_repo``, ``commits.create_commit``, ``discussions``, ``merges``): the rules, the
permissions and the errors are the API's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.account_pages import form, require_session
from modelyard.http.routes.common import declared_length, repo_id, repo_type
from modelyard.http.routes.pages import PAGE_REPO, REV, _context, page, page_number, shows_errors
from modelyard.services import discussions, merges, pages
from modelyard.services import repos as repos_svc
from modelyard.services.commits import AddFile, CommitRequest, Operation, create_commit
from modelyard.web.render import render, trusted

NUM = r"(?P<num>[0-9]{1,9})"
#: Files uploaded through the page: each at most this large (bigger ones go through the client).
UPLOAD_FILE_LIMIT = 10 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024


def _see(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _base(ctx: Ctx) -> str:
    return pages.repo_path(repo_type(ctx.params), repo_id(ctx.params))


# -- a new repo --------------------------------------------------------------------------------


async def new_repo_form(ctx: Ctx) -> Response:
    session = require_session(ctx)
    owners = pages.writable_namespaces(session.principal)
    return page(render("new_repo.html", **_context(ctx, owners=owners)))


async def new_repo(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    kind = fields.get("type", "model")
    if kind not in ("model", "dataset"):
        raise InvalidInputError("type must be model or dataset")
    base = ctx.base_url()
    repo = await ctx.call(repos_svc.create_repo, kind, fields.get("owner") or None, fields.get("name", "").strip(),
                          fields.get("visibility") == "private", lambda t, rid: f"{base}{pages.repo_path(t, rid)}")
    return _see(pages.repo_path(repo.type, repo.repo_id))


# -- files: upload and edit ----------------------------------------------------------------------


async def upload_form(ctx: Ctx) -> Response:
    require_session(ctx)
    view = await ctx.call(pages.tree_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], "")
    return page(render("upload.html", **_context(ctx, view=view)))


async def upload(ctx: Ctx) -> Response:
    session = require_session(ctx)
    length = declared_length(ctx)
    if length is not None and length > UPLOAD_LIMIT:
        raise InvalidInputError(f"At most {UPLOAD_LIMIT // 2**20} MiB at once through this page: use huggingface_hub")
    async with ctx.request.form(max_files=100, max_fields=20, max_part_size=UPLOAD_FILE_LIMIT) as data:
        session.check_csrf(_field(data.get("csrf")))
        folder = _field(data.get("folder")).strip().strip("/")
        operations: list[Operation] = []
        for item in data.getlist("files"):
            if not isinstance(item, UploadFile) or not item.filename:
                continue
            content = await item.read(UPLOAD_FILE_LIMIT + 1)
            if len(content) > UPLOAD_FILE_LIMIT:
                raise InvalidInputError(f"{item.filename} is over {UPLOAD_FILE_LIMIT // 2**20} MiB: "
                                        "upload it with huggingface_hub or git")
            name = item.filename.replace("\\", "/").rsplit("/", 1)[-1]
            operations.append(AddFile(f"{folder}/{name}" if folder else name, content))
        summary = _field(data.get("summary")).strip() or f"Upload {len(operations)} file(s)"
        as_pr = _field(data.get("pr")) == "1"
    if not operations:
        raise InvalidInputError("Choose at least one file to upload")
    result = await ctx.call(create_commit, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"],
                            CommitRequest(summary, operations=operations), as_pr)
    if result.pr_num is not None:
        return _see(f"{_base(ctx)}/discussions/{result.pr_num}")
    return _see(f"{_base(ctx)}/tree/{quote(ctx.params['rev'], safe='')}")


def _field(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def edit_form(ctx: Ctx) -> Response:
    require_session(ctx)
    view = await ctx.call(pages.editable_text, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"],
                          ctx.params["path"])
    return page(render("edit.html", **_context(ctx, view=view, text="\n".join(view.lines or []))))


async def edit(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    path, rev = ctx.params["path"], ctx.params["rev"]
    text = fields.get("content", "").replace("\r\n", "\n")
    summary = fields.get("summary", "").strip() or f"Update {path}"
    request = CommitRequest(summary, fields.get("description", ""), fields.get("parent") or None,
                            [AddFile(path, text.encode())])
    result = await ctx.call(create_commit, repo_type(ctx.params), repo_id(ctx.params), rev, request,
                            fields.get("pr") == "1")
    if result.pr_num is not None:
        return _see(f"{_base(ctx)}/discussions/{result.pr_num}")
    return _see(f"{_base(ctx)}/blob/{quote(rev, safe='')}/{quote(path)}")


# -- discussions -------------------------------------------------------------------------------


async def discussions_page(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    number = page_number(ctx)
    kind, status = q.get("type", "all"), q.get("status", "all")
    threads, total, start = await ctx.call(discussions.list_threads, repo_type(ctx.params), repo_id(ctx.params),
                                           number, kind, status, q.get("author") or None)
    view = await ctx.call(pages.tree_page, repo_type(ctx.params), repo_id(ctx.params), "main", "")
    return page(render("discussions.html", **_context(
        ctx, view=view, threads=threads, total=total, start=start, number=number, kind=kind, status=status,
        size=discussions.PAGE_SIZE, base=_base(ctx))))


async def new_discussion_form(ctx: Ctx) -> Response:
    require_session(ctx)
    view = await ctx.call(pages.tree_page, repo_type(ctx.params), repo_id(ctx.params), "main", "")
    return page(render("new_discussion.html", **_context(ctx, view=view, base=_base(ctx))))


async def new_discussion(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    num = await ctx.call(discussions.create, repo_type(ctx.params), repo_id(ctx.params), fields.get("title", ""),
                         fields.get("description", ""), False)
    return _see(f"{_base(ctx)}/discussions/{num}")


async def thread_page(ctx: Ctx) -> Response:
    view = await ctx.call(pages.thread_page, repo_type(ctx.params), repo_id(ctx.params), int(ctx.params["num"]))
    comments = {e.id: trusted(str(e.data.get("html", ""))) for e in view.details.events if e.type == "comment"}
    return page(render("discussion.html", **_context(ctx, view=view, comments=comments, base=_base(ctx))))


async def thread_action(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    rtype, rid, num, action = repo_type(ctx.params), repo_id(ctx.params), int(ctx.params["num"]), ctx.params["action"]
    comment = fields.get("comment", "")
    if action == "comment":
        await ctx.call(discussions.comment, rtype, rid, num, comment)
    elif action == "status":
        await ctx.call(discussions.change_status, rtype, rid, num, fields.get("status"), comment or None)
    else:
        await ctx.call(merges.merge, rtype, rid, num, comment or None)
    return _see(f"{_base(ctx)}/discussions/{num}")


# -- a repo's settings ------------------------------------------------------------------------


async def settings_page(ctx: Ctx) -> Response:
    require_session(ctx)
    repo = await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), "admin")
    return page(render("settings.html", **_context(ctx, repo=repo, base=_base(ctx))))


async def change_settings(ctx: Ctx) -> Response:
    fields = await form(ctx)
    session = require_session(ctx)
    session.check_csrf(fields.get("csrf"))
    rtype, rid, what = repo_type(ctx.params), repo_id(ctx.params), ctx.params["what"]
    if what == "visibility":
        await ctx.call(repos_svc.update_settings, rtype, rid, {"visibility": fields.get("visibility")})
    elif what == "gated":
        gated = fields.get("gated")
        await ctx.call(repos_svc.update_settings, rtype, rid, {"gated": False if gated == "false" else gated})
    elif what == "move":
        moved = await ctx.call(repos_svc.move_repo, rtype, rid, fields.get("to", "").strip())
        return _see(f"{pages.repo_path(moved.type, moved.repo_id)}/settings")
    else:
        await ctx.call(repos_svc.delete_repo_confirmed, rtype, rid, fields.get("confirm", ""))
        return _see(f"/{session.principal.name}")
    return _see(f"{_base(ctx)}/settings")


def register(router: Router) -> None:
    router.add("GET", r"/new", shows_errors(new_repo_form))
    router.add("POST", r"/new", shows_errors(new_repo))
    router.add("GET", rf"{PAGE_REPO}/upload/{REV}", shows_errors(upload_form))
    router.add("POST", rf"{PAGE_REPO}/upload/{REV}", shows_errors(upload))
    router.add("GET", rf"{PAGE_REPO}/edit/{REV}/(?P<path>.+)", shows_errors(edit_form))
    router.add("POST", rf"{PAGE_REPO}/edit/{REV}/(?P<path>.+)", shows_errors(edit))
    router.add("GET", rf"{PAGE_REPO}/discussions", shows_errors(discussions_page))
    router.add("GET", rf"{PAGE_REPO}/discussions/new", shows_errors(new_discussion_form))
    router.add("POST", rf"{PAGE_REPO}/discussions/new", shows_errors(new_discussion))
    router.add("GET", rf"{PAGE_REPO}/discussions/{NUM}", shows_errors(thread_page))
    router.add("POST", rf"{PAGE_REPO}/discussions/{NUM}/(?P<action>comment|status|merge)", shows_errors(thread_action))
    router.add("GET", rf"{PAGE_REPO}/settings", shows_errors(settings_page))
    router.add("POST", rf"{PAGE_REPO}/settings/(?P<what>visibility|gated|move|delete)", shows_errors(change_settings))
