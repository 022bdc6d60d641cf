"""Discussions and pull requests (``/api/{types}/{repo}/discussions``) and attachments (``/uploads``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from modelyard.errors import InvalidInputError
from modelyard.http.app import Ctx, Router
from modelyard.http.routes.common import (
    API_REPO,
    bounded_stream,
    flag,
    follows_moves,
    iso,
    iterate,
    json_body,
    json_response,
    repo_id,
    repo_type,
)
from modelyard.http.routes.people import avatar_url
from modelyard.services import attachments as attachments_svc
from modelyard.services import discussions as discussions_svc
from modelyard.services import merges as merges_svc
from modelyard.services.discussions import CommentVersion, Details, Thread, ThreadEvent

NUM = r"(?P<num>[0-9]{1,12})"
COMMENT = r"(?P<comment>[^/]+)"


def _author(name: str | None) -> dict[str, Any]:
    # The Hub's author objects carry the picture too (its pages and other clients show it).
    return {"author": {"name": name, "type": "user", "avatarUrl": avatar_url(name)}} if name else {}


def thread_json(thread: Thread, rtype: str, rid: str) -> dict[str, Any]:
    return {
        "num": thread.num, "title": thread.title, "status": thread.status, "isPullRequest": thread.is_pull_request,
        "createdAt": iso(thread.created_at), **_author(thread.author), "repo": {"name": rid, "type": rtype},
        "pinned": False,
    }


def _version_json(v: CommentVersion) -> dict[str, Any]:
    return {"raw": v.raw, "html": v.html, "updatedAt": iso(v.created_at), **_author(v.author)}


def event_json(event: ThreadEvent, history: list[CommentVersion] | None = None) -> dict[str, Any]:
    data = event.data
    if event.type == "comment":
        latest = {"raw": data["raw"], "html": data["html"], "updatedAt": iso(datetime.fromisoformat(data["updatedAt"])),
                  **_author(data.get("editor") or event.author)}
        older = [_version_json(v) for v in history or []]
        out_data: dict[str, Any] = {
            "edited": bool(data.get("edited")), "hidden": bool(data.get("hidden")), "latest": latest,
            "numEdits": len(older), "history": [latest, *older], "editors": sorted(
                {a["author"]["name"] for a in [latest, *older] if "author" in a}),
            "reactions": [], "isReport": False,
        }
    else:
        out_data = {k: v for k, v in data.items() if k != "base"}
    return {"id": f"{event.id:024x}", "type": event.type, "createdAt": iso(event.created_at),
            **_author(event.author), "data": out_data}


def details_json(found: Details, rtype: str, rid: str) -> dict[str, Any]:
    out = thread_json(found.thread, rtype, rid)
    out["events"] = [event_json(e, found.history.get(e.id)) for e in found.events]
    if found.thread.is_pull_request:
        changes: dict[str, Any] = {"base": found.thread.base_ref}
        if found.thread.merge_commit:
            changes["mergeCommitId"] = found.thread.merge_commit
        out["changes"] = changes
        out["filesWithConflicts"] = found.files_with_conflicts
        if found.diff is not None:
            out["diff"] = found.diff
    return out


def _num(ctx: Ctx) -> int:
    return int(ctx.params["num"])


async def list_discussions(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    try:
        page = int(q.get("p") or 0)
    except ValueError as exc:
        raise InvalidInputError("p must be a page number") from exc
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    threads, total, start = await ctx.call(
        discussions_svc.list_threads, rtype, rid, page, q.get("type") or "all", q.get("status") or "all",
        q.get("author") or None,
    )
    return json_response({"discussions": [thread_json(t, rtype, rid) for t in threads], "count": total,
                          "start": start, "numClosedDiscussions": 0})


async def details(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    found = await ctx.call(discussions_svc.details, rtype, rid, _num(ctx), flag(ctx.request.query_params.get("diff")))
    return json_response(details_json(found, rtype, rid))


async def _authorized_body(ctx: Ctx, required: bool = True) -> dict[str, Any]:
    """The JSON body, read only once the caller may contribute to the repo."""
    await ctx.call(discussions_svc.authorize, repo_type(ctx.params), repo_id(ctx.params))
    return await json_body(ctx, required=required)


async def create(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx)
    num = await ctx.call(discussions_svc.create, repo_type(ctx.params), repo_id(ctx.params), body.get("title"),
                         body.get("description"), bool(body.get("pullRequest")))
    return json_response({"num": num, "url": {"web": "", "api": ""}})


async def comment(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx)
    new = await ctx.call(discussions_svc.comment, repo_type(ctx.params), repo_id(ctx.params), _num(ctx),
                         body.get("comment"))
    return json_response({"newMessage": event_json(new)})


async def rename(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx)
    new = await ctx.call(discussions_svc.rename, repo_type(ctx.params), repo_id(ctx.params), _num(ctx),
                         body.get("title"))
    return json_response({"newTitle": event_json(new)})


async def status(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx)
    new = await ctx.call(discussions_svc.change_status, repo_type(ctx.params), repo_id(ctx.params), _num(ctx),
                         body.get("status"), body.get("comment"))
    return json_response({"newStatus": event_json(new)})


async def merge(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx, required=False)
    oid = await ctx.call(merges_svc.merge, repo_type(ctx.params), repo_id(ctx.params), _num(ctx),
                         body.get("comment"))
    return json_response({"mergeCommitId": oid})


async def edit_comment(ctx: Ctx) -> Response:
    body = await _authorized_body(ctx)
    new, history = await ctx.call(discussions_svc.edit_comment, repo_type(ctx.params), repo_id(ctx.params),
                                  _num(ctx), ctx.params["comment"], body.get("content"))
    return json_response({"updatedComment": event_json(new, history)})


async def hide_comment(ctx: Ctx) -> Response:
    await _authorized_body(ctx, required=False)
    new = await ctx.call(discussions_svc.hide_comment, repo_type(ctx.params), repo_id(ctx.params), _num(ctx),
                         ctx.params["comment"])
    return json_response({"updatedComment": event_json(new)})


async def upload_attachment(ctx: Ctx) -> Response:
    """``POST /uploads``: the raw bytes of an image, video or audio file; answers its URL as text."""
    ext = await ctx.call(attachments_svc.check_upload, ctx.request.headers.get("content-type"))
    blob = attachments_svc.writer(ctx.hub)
    try:
        async for chunk in bounded_stream(ctx, attachments_svc.MAX_ATTACHMENT, "attachment"):
            await run_in_threadpool(blob.write, chunk)
        name = await run_in_threadpool(attachments_svc.finish, ctx.hub, blob, ext)
    except BaseException:
        blob.abort()
        raise
    return PlainTextResponse(f"{ctx.base_url()}/uploads/{name}")


async def attachment(ctx: Ctx) -> Response:
    found = await run_in_threadpool(attachments_svc.find, ctx.hub, ctx.params["file"])
    headers = {
        "Content-Length": str(found.size), "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    if ctx.request.method == "HEAD":
        return Response(b"", headers=headers, media_type=found.media_type)
    return StreamingResponse(iterate(attachments_svc.pieces(ctx.hub, found)), headers=headers,
                             media_type=found.media_type)


def register(router: Router) -> None:
    base = rf"{API_REPO}/discussions"
    router.add("GET", base, follows_moves(list_discussions))
    router.add("POST", base, create)
    router.add("GET", rf"{base}/{NUM}", follows_moves(details))
    router.add("POST", rf"{base}/{NUM}/comment", comment)
    router.add("POST", rf"{base}/{NUM}/title", rename)
    router.add("POST", rf"{base}/{NUM}/status", status)
    router.add("POST", rf"{base}/{NUM}/merge", merge)
    router.add("POST", rf"{base}/{NUM}/comment/{COMMENT}/edit", edit_comment)
    router.add("POST", rf"{base}/{NUM}/comment/{COMMENT}/hide", hide_comment)
    router.add("POST", r"/uploads", upload_attachment)
    router.add("GET", r"/uploads/(?P<file>[^/]+)", attachment)
