"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

It describes the routes the Hub's clients call (repos, files, revisions, commits, downloads, the
catalog, discussions and pull requests, collections, people, gated access, webhooks, resource
groups, buckets, git-lfs, the Xet CAS and git over HTTP) and modelyard's own (tokens, audit log), with the
shapes of their answers and the error envelope every refusal uses (plain text for git, which
shows it to the person at the terminal). Schemathesis runs against it in the test suite
(``integration/test_schemathesis.py``): no 500s, answers as documented.
"""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
TYPES = {"name": "types", "in": "path", "required": True, "example": "models",
         "schema": {"type": "string", "enum": ["models", "datasets"]}}
NAMESPACE = {"name": "namespace", "in": "path", "required": True, "example": "acme", "schema": {"type": "string"}}
REPO = {"name": "repo", "in": "path", "required": True, "example": "bert-tiny", "schema": {"type": "string"}}
REVISION = {"name": "revision", "in": "path", "required": True, "example": "main", "schema": {"type": "string"}}
BRANCH = {"name": "branch", "in": "path", "required": True, "example": "dev", "schema": {"type": "string"}}
OBJECT: dict[str, Any] = {"type": "object"}
ARRAY_OF_OBJECTS: dict[str, Any] = {"type": "array", "items": {"type": "object"}}


def _errors() -> dict[str, Any]:
    body = {"description": "Refused: the error envelope (also in X-Error-Code / X-Error-Message)",
            "content": {"application/json": {"schema": ERROR}}}
    return {"4XX": body}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": {status: ok, **_errors()}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path(name: str, example: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "example": example, "schema": schema or {"type": "string"}}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _binary(summary: str, ok: dict[str, Any], params: list[dict[str, Any]], media: str,
            errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operation whose request body is bytes (``media``), not JSON."""
    return {"summary": summary, "parameters": params, "responses": {"200": ok, **(errors or _errors())},
            "requestBody": {"required": True, "content": {media: {"schema": {"type": "string",
                                                                              "format": "binary"}}}}}


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
INTEGER = {"type": "integer"}
ORG = _path("org", "acme")
NUM = _path("num", "1", {"type": "integer", "minimum": 1})
OWNER = _path("owner", "alice")
SLUG = _path("slug", "models-0123456789abcdef01234567")
GROUP = _path("group", "0123456789abcdef01234567", {"type": "string", "pattern": "^[0-9a-f]{24}$"})
HOOK = _path("id", "0123456789abcdef01234567")
XET_HASH = _path("hash", "0" * 64)
XET_PREFIX = _path("prefix", "default")
USERS = {"type": "array", "items": _object(user=STRING, role={"enum": ["read", "contributor", "write", "admin"]})}
GIT_ERRORS = {"4XX": {"description": "Refused: plain text, as git shows it (a repo the caller may not see: the "
                                     "error envelope, as everywhere)",
                      "content": {"text/plain": {"schema": STRING}, "application/json": {"schema": ERROR}}}}
LFS_JSON = "application/vnd.git-lfs+json"


def _more_paths(repo: list[dict[str, Any]], at: list[dict[str, Any]]) -> dict[str, Any]:
    """Discussions, collections, people, gating, webhooks, resource groups, LFS, Xet and git."""
    thread = [*repo, NUM]
    return {
        f"{REPO_PATH}/discussions": {
            "get": _op("A repo's discussions and pull requests", _json(OBJECT), [
                *repo, _query("p", INTEGER), _query("type", {"enum": ["all", "discussion", "pull_request"]}),
                _query("status", {"enum": ["all", "open", "closed"]}), _query("author", STRING)]),
            "post": _op("Open a discussion or a pull request", _json(OBJECT), repo, _object(
                title=STRING, description=STRING, pullRequest=BOOLEAN)),
        },
        f"{REPO_PATH}/discussions/{{num}}": {"get": _op("A discussion with its events", _json(OBJECT), thread)},
        f"{REPO_PATH}/discussions/{{num}}/comment": {"post": _op("Comment", _json(OBJECT), thread,
                                                                 _object(comment=STRING))},
        f"{REPO_PATH}/discussions/{{num}}/title": {"post": _op("Rename", _json(OBJECT), thread, _object(title=STRING))},
        f"{REPO_PATH}/discussions/{{num}}/status": {"post": _op("Close or reopen", _json(OBJECT), thread, _object(
            status={"enum": ["open", "closed"]}, comment=STRING))},
        f"{REPO_PATH}/user-access-request/pending": {"get": _op("Pending access requests (the repo's admins)",
                                                                _json(ARRAY_OF_OBJECTS), repo)},
        f"{REPO_PATH}/resource-group": {"post": _op("Move a repo into a resource group, or out", _json(OBJECT), repo,
                                                    _object(resourceGroupId={"type": ["string", "null"]}))},
        f"{REPO_PATH}/xet-read-token/{{revision}}": {"get": _op("A Xet CAS token to read a revision", _json(
            {"type": "object", "required": ["accessToken", "casUrl", "exp"]}), at)},
        "/api/collections": {
            "get": _op("List collections", _json(ARRAY_OF_OBJECTS), [
                _query("owner", STRING), _query("item", STRING), _query("sort", STRING), _query("limit", INTEGER)]),
            "post": _op("Create a collection", _json(OBJECT), [], _object(
                title=STRING, namespace=STRING, description=STRING, private=BOOLEAN)),
        },
        "/api/collections/{owner}/{slug}": {
            "get": _op("A collection", _json(OBJECT), [OWNER, SLUG]),
            "patch": _op("Change a collection", _json(OBJECT), [OWNER, SLUG], _object(
                title=STRING, description=STRING, private=BOOLEAN, position=INTEGER, theme=STRING)),
            "delete": _op("Delete a collection", _json(OBJECT), [OWNER, SLUG]),
        },
        "/api/collections/{owner}/{slug}/items": {"post": _op("Add an item", _json(OBJECT), [OWNER, SLUG], _object(
            item=_object(type=STRING, id=STRING), note=STRING))},
        "/api/users/{user}/overview": {"get": _op("A user's profile", _json(OBJECT), [_path("user", "alice")])},
        "/api/organizations/{org}/overview": {"get": _op("An organization's profile", _json(OBJECT), [ORG])},
        "/api/organizations/{org}/members": {"get": _op("An organization's members", _json(ARRAY_OF_OBJECTS), [ORG])},
        "/api/settings/webhooks": {
            "get": _op("The caller's webhooks", _json(ARRAY_OF_OBJECTS)),
            "post": _op("Create a webhook", _json(OBJECT), [], _object(
                url=STRING, watched=ARRAY_OF_OBJECTS, domains={"type": "array", "items": STRING}, secret=STRING)),
        },
        "/api/settings/webhooks/{id}": {
            "get": _op("A webhook", _json(OBJECT), [HOOK]),
            "delete": _op("Delete a webhook", _json(OBJECT), [HOOK]),
        },
        "/api/settings/webhooks/{id}/deliveries": {"get": _op("A webhook's delivery log", _json(ARRAY_OF_OBJECTS),
                                                              [HOOK])},
        "/api/organizations/{org}/resource-groups": {
            "get": _op("An org's resource groups the caller may see", _json(ARRAY_OF_OBJECTS), [ORG]),
            "post": _op("Create a resource group (org admins)", _json(OBJECT, "Created"), [ORG], _object(
                name=STRING, description=STRING, users=USERS, repos=ARRAY_OF_OBJECTS), status="201"),
        },
        "/api/organizations/{org}/resource-groups/{group}": {
            "get": _op("A resource group", _json(OBJECT), [ORG, GROUP]),
            "patch": _op("Rename a resource group", _json(OBJECT), [ORG, GROUP], _object(
                name=STRING, description=STRING)),
            "delete": _op("Delete an empty resource group", _json(OBJECT), [ORG, GROUP]),
        },
        "/api/organizations/{org}/resource-groups/{group}/users": {"post": _op(
            "Give users roles in a resource group", _json(OBJECT), [ORG, GROUP], _object(users=USERS))},
        "/api/buckets/{namespace}/{repo}": {"get": _op("A bucket's info", _json(
            {"type": "object", "required": ["id", "private", "createdAt", "size", "totalFiles"]}), [NAMESPACE, REPO])},
        "/api/buckets/{namespace}/{repo}/tree": {"get": _op("A bucket's files and folders", _json(ARRAY_OF_OBJECTS), [
            NAMESPACE, REPO, _query("recursive", BOOLEAN), _query("cursor", STRING)])},
        "/api/buckets/{namespace}/{repo}/paths-info": {"post": _op("Facts of some of a bucket's files", _json(
            ARRAY_OF_OBJECTS), [NAMESPACE, REPO], _object(paths={"type": "array", "items": STRING}))},
        "/{namespace}/{repo}.git/info/lfs/objects/batch": {"post": {
            "summary": "git-lfs batch: where to upload or download objects", "parameters": [NAMESPACE, REPO],
            "requestBody": {"required": True, "content": {LFS_JSON: {"schema": _object(
                operation={"enum": ["upload", "download"]}, transfers={"type": "array", "items": STRING},
                objects={"type": "array", "items": _object(oid=STRING, size=INTEGER)})}}},
            "responses": {"200": {"description": "OK", "content": {LFS_JSON: {"schema": _object(
                transfer=STRING, objects=ARRAY_OF_OBJECTS)}}}, **_errors()}}},
        "/xet/v1/reconstructions/{hash}": {"get": _op("How to rebuild a Xet file (a Xet token)",
                                                      _json(OBJECT), [XET_HASH])},
        "/xet/v1/chunks/{prefix}/{hash}": {"get": {
            "summary": "Global deduplication: a shard naming the xorb that holds a chunk (a Xet token)",
            "parameters": [XET_PREFIX, XET_HASH],
            "responses": {"200": {"description": "A shard", "content": {"application/octet-stream": {}}},
                          **_errors()}}},
        "/xet/v1/xorbs/{prefix}/{hash}": {"post": _binary(
            "Upload a xorb (a Xet write token)", _json(OBJECT), [XET_PREFIX, XET_HASH], "application/octet-stream")},
        "/xet/v1/shards": {"post": _binary("Register a shard (a Xet write token)", _json(OBJECT), [],
                                           "application/octet-stream")},
        "/{namespace}/{repo}.git/info/refs": {"get": {
            "summary": "git: advertise refs", "parameters": [
                NAMESPACE, REPO, {"name": "service", "in": "query", "required": True,
                                  "schema": {"enum": ["git-upload-pack", "git-receive-pack"]}}],
            "responses": {"200": {"description": "The advertisement", "content": {
                "application/x-git-upload-pack-advertisement": {}, "application/x-git-receive-pack-advertisement": {}}},
                **GIT_ERRORS}}},
        "/{namespace}/{repo}.git/git-upload-pack": {"post": _binary(
            "git: fetch", {"description": "A pack", "content": {"application/x-git-upload-pack-result": {}}},
            [NAMESPACE, REPO], "application/x-git-upload-pack-request", GIT_ERRORS)},
    }


REPO_PATH = "/api/{types}/{namespace}/{repo}"
FILE_ENTRY = {
    "type": "object", "required": ["type", "oid", "size", "path"],
    "properties": {"type": {"enum": ["file", "directory"]}, "oid": {"type": "string"}, "size": {"type": "integer"},
                   "path": {"type": "string"}, "lfs": OBJECT, "xetHash": {"type": "string"},
                   "lastCommit": OBJECT, "securityFileStatus": OBJECT},
}
REPO_INFO = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "sha": {"type": "string"},
                                                                  "private": {"type": "boolean"},
                                                                  "siblings": ARRAY_OF_OBJECTS}}


def document() -> dict[str, Any]:
    repo = [TYPES, NAMESPACE, REPO]
    at = [*repo, REVISION]
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelyard", "version": "1", "description": "A self-hosted model hub speaking the "
                 "Hugging Face Hub's API. Authenticate with `Authorization: Bearer <token>`."},
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                                 "requestId": {"type": "string"}}}},
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}, {}],
        "paths": {
            "/api/whoami-v2": {"get": _op("The caller, their orgs and their token", _json(
                {"type": "object", "required": ["name", "auth"], "properties": {"name": {"type": "string"},
                                                                                "orgs": ARRAY_OF_OBJECTS}}))},
            "/api/{types}": {"get": _op("List repos", _json(ARRAY_OF_OBJECTS), [
                TYPES, _query("search", {"type": "string"}), _query("author", {"type": "string"}),
                _query("filter", {"type": "string"}), _query("sort", {"type": "string"}),
                _query("limit", {"type": "integer"}), _query("full", {"type": "boolean"})])},
            REPO_PATH: {"get": _op("A repo's info at its default branch", _json(REPO_INFO), repo)},
            f"{REPO_PATH}/revision/{{revision}}": {"get": _op("A repo's info at a revision", _json(REPO_INFO), at)},
            f"{REPO_PATH}/tree/{{revision}}": {"get": _op("The files of a revision", _json(
                {"type": "array", "items": FILE_ENTRY}), [
                *at, _query("recursive", {"type": "boolean"}), _query("expand", {"type": "boolean"}),
                _query("cursor", {"type": "string"})])},
            f"{REPO_PATH}/paths-info/{{revision}}": {"post": _op("Facts of some paths", _json(
                {"type": "array", "items": FILE_ENTRY}), at, {
                "type": "object", "properties": {"paths": {"type": "array", "items": {"type": "string"}},
                                                 "expand": {"type": "boolean"}}})},
            f"{REPO_PATH}/refs": {"get": _op("Branches and tags", _json(OBJECT), repo)},
            f"{REPO_PATH}/commits/{{revision}}": {"get": _op("History", _json(ARRAY_OF_OBJECTS), at)},
            f"{REPO_PATH}/preupload/{{revision}}": {"post": _op("How each file is to be uploaded", _json(OBJECT), at, {
                "type": "object", "properties": {"files": {"type": "array", "items": {
                    "type": "object", "properties": {"path": {"type": "string"}, "sample": {"type": "string"},
                                                     "size": {"type": "integer"}}}}}})},
            f"{REPO_PATH}/branch/{{branch}}": {
                "post": _op("Create a branch", _json(OBJECT), [*repo, BRANCH]),
                "delete": _op("Delete a branch", _json(OBJECT), [*repo, BRANCH]),
            },
            f"{REPO_PATH}/settings": {"put": _op("Visibility and gating", _json(OBJECT), repo, {
                "type": "object", "properties": {"private": {"type": "boolean"},
                                                 "gated": {"enum": [False, "auto", "manual"]}}})},
            "/api/repos/create": {"post": _op("Create a repo", _json(OBJECT), [], {
                "type": "object", "properties": {"name": {"type": "string"}, "organization": {"type": "string"},
                                                 "type": {"type": "string"}, "private": {"type": "boolean"}}})},
            "/api/validate-yaml": {"post": _op("Check a model card's metadata", _json(OBJECT), [], {
                "type": "object", "properties": {"content": {"type": "string"}, "repoType": {"type": "string"}}})},
            "/api/settings/tokens": {"post": _op("Make a token (modelyard)", _json(OBJECT, "Created"), [], {
                "type": "object", "properties": {"name": {"type": "string"}, "role": {"type": "string"},
                                                 "scoped": ARRAY_OF_OBJECTS,
                                                 "global": {"type": "array", "items": {"type": "string"}},
                                                 "expiresAt": {"type": "string"}}}, status="201")},
            "/api/settings/audit-log": {"get": _op("The caller's audit log (modelyard)", _json(ARRAY_OF_OBJECTS), [
                _query("action", {"type": "string"}), _query("limit", {"type": "integer"}),
                _query("cursor", {"type": "string"})])},
            "/api/organizations/{org}/audit-log": {"get": _op("An organization's audit log (modelyard)",
                                                              _json(ARRAY_OF_OBJECTS), [
                {"name": "org", "in": "path", "required": True, "schema": {"type": "string"}},
                _query("action", {"type": "string"}), _query("limit", {"type": "integer"})])},
            **_more_paths(repo, at),
            "/{namespace}/{repo}/resolve/{revision}/{path}": {
                "get": {"summary": "Download a file", "parameters": [
                    NAMESPACE, REPO, REVISION, {"name": "path", "in": "path", "required": True,
                                                "example": "config.json", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The file's bytes"},
                                  "206": {"description": "A range of them"},
                                  "302": {"description": "Stored elsewhere (a presigned URL)"},
                                  "307": {"description": "The repo moved"},
                                  "416": {"description": "The range lies outside the file"}, **_errors()}},
            },
        },
    }
