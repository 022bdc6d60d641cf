"""Preupload, the NDJSON commit, refs, history, branches, tags and squash."""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelyard.errors import InvalidInputError, PayloadTooLargeError
from modelyard.http.app import Ctx, Router
from modelyard.http.errors import header_safe
from modelyard.http.routes.common import (
    API_REPO,
    REV,
    bounded_stream,
    decode_json,
    flag,
    follows_moves,
    iso,
    json_body,
    json_response,
    link_next,
    repo_id,
    repo_type,
    repo_url,
)
from modelyard.ids import validate_folder, validate_path, validate_sha256
from modelyard.services import commits as commits_svc
from modelyard.services import files as files_svc
from modelyard.services import pages as pages_svc
from modelyard.services import repos as repos_svc
from modelyard.services.auth import Principal
from modelyard.services.commits import AddFile, AddLfsFile, CommitRequest, DeleteFile, DeleteFolder
from modelyard.services.hub import Hub
from modelyard.services.repos import snapshot

COMMITS_PAGE = 50


async def preupload(ctx: Ctx) -> Response:
    create_pr = flag(ctx.request.query_params.get("create_pr"))
    await ctx.call(commits_svc.authorize_preupload, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"],
                   create_pr)
    body = await json_body(ctx)
    files = body.get("files")
    if not isinstance(files, list):
        raise InvalidInputError("'files' must be a list")
    result = await ctx.call(
        commits_svc.preupload, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], files,
        body.get("gitIgnore"), create_pr,
    )
    return json_response({"files": result})


def parse_line(line: bytes, number: int) -> tuple[str, Any]:
    item = decode_json(line, f"NDJSON on line {number}")
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or "value" not in item:
        raise InvalidInputError(f"Line {number} must be an object with 'key' and 'value'")
    if not isinstance(item["value"], dict):
        raise InvalidInputError(f"Line {number}: 'value' must be an object")
    return item["key"], item["value"]


def to_operation(key: str, value: dict[str, Any], number: int) -> Any:
    if key == "file":
        path = validate_path(value.get("path"))
        if value.get("encoding", "base64") != "base64":
            raise InvalidInputError(f"Line {number}: only base64 encoding is supported")
        content = value.get("content")
        if not isinstance(content, str):
            raise InvalidInputError(f"Line {number}: 'content' must be a base64 string")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"Line {number}: invalid base64 content for {path!r}") from exc
        return AddFile(path, data)
    if key == "lfsFile":
        path = validate_path(value.get("path"))
        if value.get("algo", "sha256") != "sha256":
            raise InvalidInputError(f"Line {number}: only sha256 LFS oids are supported")
        oid = validate_sha256(value.get("oid"))
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidInputError(f"Line {number}: invalid size for {path!r}")
        return AddLfsFile(path, oid, size)
    if key == "deletedFile":
        return DeleteFile(validate_path(value.get("path")))
    if key == "deletedFolder":
        return DeleteFolder(validate_folder(value.get("path")))
    raise InvalidInputError(f"Line {number}: unknown operation {key!r}")


class CommitParser:
    """Turns NDJSON lines into a ``CommitRequest``; fed batches of lines from a worker thread."""

    def __init__(self, max_operations: int) -> None:
        self.max_operations = max_operations
        self.request: CommitRequest | None = None
        self.lines = 0

    def feed(self, lines: list[bytes]) -> None:
        for line in lines:
            self.lines += 1
            key, value = parse_line(line, self.lines)
            if self.request is None:
                self.request = self._header(key, value)
                continue
            if len(self.request.operations) >= self.max_operations:
                raise PayloadTooLargeError(f"A commit may hold at most {self.max_operations} operations")
            self.request.operations.append(to_operation(key, value, self.lines))

    @staticmethod
    def _header(key: str, header: dict[str, Any]) -> CommitRequest:
        if key != "header":
            raise InvalidInputError("The first NDJSON line must be the header")
        summary, description = header.get("summary"), header.get("description", "")
        if not isinstance(summary, str) or not isinstance(description, str):
            raise InvalidInputError("The header needs a string 'summary' (and 'description')")
        parent = header.get("parentCommit")
        if parent is not None and not isinstance(parent, str):
            raise InvalidInputError("parentCommit must be a string")
        return CommitRequest(summary, description, parent)

    def result(self) -> CommitRequest:
        if self.request is None:
            raise InvalidInputError("Empty commit body")
        return self.request


#: Complete lines handed to a worker thread at a time for JSON and base64 decoding.
PARSE_BATCH = 1024 * 1024


async def read_commit(ctx: Ctx) -> CommitRequest:
    """Parse the NDJSON body as it streams in: lines are split on the event loop (a ``find`` per
    MiB), decoded in a worker thread a batch at a time; the body, each line and the number of
    operations are bounded, so nothing unbounded is held or parsed before it is refused."""
    settings = ctx.hub.settings
    limit = settings.max_commit_body
    # A regular file a little over the limit still gets its clear "use LFS" error from the service.
    max_line = (settings.max_regular_file_size + 3) * 4 // 3 + 64 * 1024
    parser = CommitParser(settings.max_commit_operations)
    pending: list[bytes] = []  # pieces of the current, unfinished line
    pending_size = 0
    batch: list[bytes] = []
    batch_size = 0
    async for chunk in bounded_stream(ctx, limit, "commit body"):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if pending_size + len(piece) > max_line:
                raise PayloadTooLargeError(f"A line of the commit body exceeds {max_line} bytes")
            if end < 0:
                if piece:
                    pending.append(piece)
                    pending_size += len(piece)
                break
            line = b"".join([*pending, piece]) if pending else piece
            pending, pending_size = [], 0
            if line.strip():
                batch.append(line)
                batch_size += len(line)
            start = end + 1
        if batch_size >= PARSE_BATCH:
            await run_in_threadpool(parser.feed, batch)
            batch, batch_size = [], 0
    last = b"".join(pending)
    if last.strip():
        batch.append(last)
    if batch:
        await run_in_threadpool(parser.feed, batch)
    return parser.result()


async def commit(ctx: Ctx) -> Response:
    rtype, rid = repo_type(ctx.params), repo_id(ctx.params)
    create_pr = flag(ctx.request.query_params.get("create_pr"))
    await ctx.call(commits_svc.authorize_commit, rtype, rid, ctx.params["rev"], create_pr)
    req = await read_commit(ctx)
    result = await ctx.call(commits_svc.create_commit, rtype, rid, ctx.params["rev"], req, create_pr)
    url = repo_url(ctx.base_url(), rtype, rid)
    body: dict[str, Any] = {
        "success": True, "commitOid": result.oid, "commitUrl": f"{url}/commit/{result.oid}",
        "commitMessage": req.summary,
    }
    if result.pr_num is not None:
        body["pullRequestUrl"] = f"{url}/discussions/{result.pr_num}"
    headers = {}
    if result.warnings:
        # huggingface_hub logs an X-HF-Warning ("topic; message"), once per topic and process:
        # the topic names the commit, so every commit that leaks is told.
        body["warnings"] = [{"topic": "secrets", "message": w} for w in result.warnings]
        headers["X-HF-Warning"] = header_safe(
            f"secrets-{result.oid}; This commit adds what looks like secrets (revoke them: they were sent): "
            + "; ".join(result.warnings)
        )
    return json_response(body, headers=headers)


async def refs(ctx: Ctx) -> Response:
    all_refs = await ctx.call(commits_svc.list_refs, repo_type(ctx.params), repo_id(ctx.params))
    out: dict[str, list[dict[str, str]]] = {"branches": [], "converts": [], "tags": []}
    include_prs = flag(ctx.request.query_params.get("include_prs"))
    if include_prs:
        out["pullRequests"] = []
    groups = {"refs/heads/": "branches", "refs/tags/": "tags", "refs/convert/": "converts", "refs/pr/": "pullRequests"}
    for name, target in sorted(all_refs.items()):
        for prefix, group in groups.items():
            if name.startswith(prefix) and group in out:
                out[group].append({"name": name[len(prefix):], "ref": name, "targetCommit": target})
    return json_response(out)


def _commits(
    hub: Hub, principal: Principal | None, rtype: str, rid: str, rev: str, offset: int, path: str
) -> tuple[str, list[Any], dict[Any, str], bool]:
    snap = snapshot(hub, principal, rtype, rid, rev)
    items = files_svc.commit_list(hub, snap, path)
    page = items[offset : offset + COMMITS_PAGE]
    return snap.commit.oid, page, commits_svc.commit_authors(hub, page), offset + COMMITS_PAGE < len(items)


async def commits(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    expand = q.getlist("expand") + q.getlist("expand[]")
    try:
        offset = int(q.get("cursor") or 0)
    except ValueError as exc:
        raise InvalidInputError("Invalid pagination cursor") from exc
    head, items, authors, more = await ctx.call(
        _commits, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], max(offset, 0), q.get("path", "")
    )
    out = []
    for c in items:
        item: dict[str, Any] = {
            "id": c.oid, "title": c.title, "message": c.message, "date": iso(c.date),
            "authors": [{"user": authors[c.oid]}],
        }
        if "formatted" in expand:
            item["formatted"] = {"title": html.escape(c.title), "message": html.escape(c.message)}
        out.append(item)
    headers = {}
    if more:
        params = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", str(offset + COMMITS_PAGE))]
        headers = link_next(
            f"{ctx.base_url()}/api/{ctx.params['types']}/{repo_id(ctx.params)}/commits/{head}?{urlencode(params)}"
        )
    return json_response(out, headers=headers)


async def commit_details(ctx: Ctx) -> Response:
    """One commit as its page shows it: message, parents, the diff file by file and what Xet
    deduplicated of its new large files (a modelyard extension; the public Hub has no such call)."""
    view = await ctx.call(pages_svc.commit_page, repo_type(ctx.params), repo_id(ctx.params), ctx.params["oid"])
    c = view.commit
    out: dict[str, Any] = {
        "id": c.oid, "title": c.title, "message": c.message, "date": iso(c.date), "parents": list(c.parents),
        "files": [{"path": f.path, "status": f.status, "diff": "\n".join(text for _kind, text in f.lines)}
                  for f in view.files],
        "truncated": view.truncated, "hidden": view.hidden, "xet": None,
    }
    if view.dedup is not None:
        d = view.dedup
        out["xet"] = {"files": d.files, "bytes": d.logical, "reusedBytes": d.reused, "newBytes": d.logical - d.reused}
    return json_response(out)


async def create_branch(ctx: Ctx) -> Response:
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), "write")
    body = await json_body(ctx, required=False)
    start = body.get("startingPoint")
    if start is not None and not isinstance(start, str):
        raise InvalidInputError("startingPoint must be a revision string")
    await ctx.call(commits_svc.create_branch, repo_type(ctx.params), repo_id(ctx.params), ctx.params["branch"], start)
    return json_response({})


async def delete_branch(ctx: Ctx) -> Response:
    await ctx.call(commits_svc.delete_branch, repo_type(ctx.params), repo_id(ctx.params), ctx.params["branch"])
    return json_response({})


async def create_tag(ctx: Ctx) -> Response:
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), "write")
    body = await json_body(ctx)
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise InvalidInputError("'tag' is required")
    await ctx.call(commits_svc.create_tag, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"], tag)
    return json_response({})


async def delete_tag(ctx: Ctx) -> Response:
    await ctx.call(commits_svc.delete_tag, repo_type(ctx.params), repo_id(ctx.params), ctx.params["rev"])
    return json_response({})


async def super_squash(ctx: Ctx) -> Response:
    await ctx.call(repos_svc.authorize, repo_type(ctx.params), repo_id(ctx.params), "write")
    body = await json_body(ctx, required=False)
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise InvalidInputError("message must be a string")
    oid = await ctx.call(
        commits_svc.super_squash, repo_type(ctx.params), repo_id(ctx.params), ctx.params["branch"], message
    )
    return json_response({"commitId": oid})


def register(router: Router) -> None:
    router.add("POST", rf"{API_REPO}/preupload/{REV}", preupload)
    router.add("POST", rf"{API_REPO}/commit/{REV}", commit)
    router.add("GET", rf"{API_REPO}/refs", follows_moves(refs))
    router.add("GET", rf"{API_REPO}/commits/{REV}", follows_moves(commits))
    router.add("GET", rf"{API_REPO}/commit/(?P<oid>[0-9a-f]{{40}})", follows_moves(commit_details))
    router.add("POST", rf"{API_REPO}/branch/(?P<branch>.+)", create_branch)
    router.add("DELETE", rf"{API_REPO}/branch/(?P<branch>.+)", delete_branch)
    router.add("POST", rf"{API_REPO}/tag/{REV}", create_tag)
    router.add("DELETE", rf"{API_REPO}/tag/{REV}", delete_tag)
    router.add("POST", rf"{API_REPO}/super-squash/(?P<branch>.+)", super_squash)
