"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

It describes the routes the Hub's clients call (repos, files, revisions, commits, downloads, the
catalog) and modelyard's own (tokens, audit log), with the shapes of their answers and the error
envelope every refusal uses. Schemathesis runs against it in the test suite
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
