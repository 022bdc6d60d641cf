"""Discovery: search and listing, likes, downloads, lineage and leaderboards."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from dulwich.objects import Commit

from modelyard.catalog import facts as facts_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import search as search_q
from modelyard.catalog import signals as signals_q
from modelyard.catalog.facts import BoardEntry
from modelyard.catalog.facts import RepoFacts as RepoFacts  # re-exported for the http layer
from modelyard.catalog.repos import Repo as Repo  # re-exported for the http layer
from modelyard.catalog.repos import get_by_id as repo_by_id
from modelyard.errors import AuthenticationError, InvalidInputError, NotFoundError
from modelyard.ids import HOSTED_REPO_TYPES, Oid
from modelyard.metadata.cards import CardReport, validate
from modelyard.services.auth import Principal, can_read, visibility
from modelyard.services.files import FileEntry, file_paths, list_tree
from modelyard.services.hub import Hub, utcnow
from modelyard.services.indexer import RepoFiles, compute_facts
from modelyard.services.repos import DEFAULT_BRANCH, RepoSnapshot, find_repo
from modelyard.versioning.objects import commit_info

SORTS = {
    "lastModified": "lastModified", "last_modified": "lastModified",
    "createdAt": "createdAt", "created_at": "createdAt",
    "downloads": "downloads", "likes": "likes",
    "trendingScore": "trendingScore", "trending_score": "trendingScore",
}
MAX_LIMIT = 1000
_PARAMS = re.compile(r"^(\d{1,15}(?:\.\d{1,6})?)([KMBT]?)\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_num_parameters(value: str | None) -> tuple[int | None, int | None]:
    """``min:6B,max:128B`` (either bound optional) -> (min, max) parameter counts."""
    if not value:
        return None, None
    bounds: dict[str, int] = {}
    for part in value.split(","):
        key, _, amount = part.strip().partition(":")
        m = _PARAMS.match(amount.strip())
        if key not in ("min", "max") or m is None or key in bounds:
            raise InvalidInputError(
                f"Invalid num_parameters {value!r}: expected e.g. 'min:100M,max:7B' (units K, M, B, T)"
            )
        bounds[key] = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise InvalidInputError("num_parameters: min is larger than max")
    return bounds.get("min"), bounds.get("max")


@dataclass
class ListParams:
    search: list[str] = field(default_factory=list)
    author: str | None = None
    filters: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    num_parameters: str | None = None
    gated: str | None = None
    sort: str | None = None
    limit: int | None = None
    cursor: str | None = None


def _encode_cursor(cursor: search_q.Cursor, sort: str) -> str:
    value = cursor.value.isoformat() if isinstance(cursor.value, datetime) else cursor.value
    raw = json.dumps([sort, cursor.seq, value, cursor.last_id, int(utcnow().timestamp())])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(raw: str, sort: str) -> search_q.Cursor:
    try:
        kind, seq, value, last_id, issued = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if kind != sort or not isinstance(seq, int) or not isinstance(last_id, int):
            raise ValueError("cursor of another listing")
        parsed = search_q.parse_cursor_value(sort, value)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("Invalid pagination cursor") from exc
    if utcnow().timestamp() - float(issued) > search_q.CURSOR_LIFETIME.total_seconds():
        raise InvalidInputError("This pagination cursor has expired: start the listing again")
    return search_q.Cursor(seq, parsed, last_id)


def _query(principal: Principal | None, repo_type: str, params: ListParams) -> search_q.SearchQuery | None:
    """The catalog query of a listing, its parameters checked; None for a type never hosted."""
    sort = SORTS.get(params.sort or "trendingScore")
    if sort is None:
        raise InvalidInputError(
            f"Invalid sort {params.sort!r}: expected one of {', '.join(search_q.SORT_KEYS)}"
        )
    texts = [*params.search, params.author or "", *params.filters, params.pipeline_tag or ""]
    if any("\x00" in t for t in texts):
        raise InvalidInputError("search, author and filter cannot contain NUL characters")
    if any(len(t) > 256 for t in texts) or len(params.filters) > 20 or len(params.search) > 10:
        raise InvalidInputError("Too many or too long search terms or filters")
    limit = MAX_LIMIT if params.limit is None else params.limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    gated = None
    if params.gated is not None:
        if params.gated.lower() not in ("true", "false"):
            raise InvalidInputError("gated must be true or false")
        gated = params.gated.lower() == "true"
    min_params, max_params = parse_num_parameters(params.num_parameters)
    if repo_type not in HOSTED_REPO_TYPES:
        return None
    return search_q.SearchQuery(
        repo_type=repo_type, search=[s for s in params.search if s], author=params.author,
        filters=params.filters, pipeline_tag=params.pipeline_tag, min_params=min_params,
        max_params=max_params, gated=gated, sort=sort, limit=limit,
        cursor=_decode_cursor(params.cursor, sort) if params.cursor else None,
        visible=visibility(principal),
    )


def list_repos(
    hub: Hub, principal: Principal | None, repo_type: str, params: ListParams
) -> tuple[list[Repo], str | None]:
    """One page of the repos the caller may see, and the cursor of the next page (or None)."""
    query = _query(principal, repo_type, params)
    if query is None:
        return [], None
    with hub.db.read() as conn:
        rows, following = search_q.search(hub.db, conn, query)
    return rows, (_encode_cursor(following, query.sort) if following else None)


#: Facet counts are kept this long per query and viewer (``hub.facets``): counting every match is
#: the costly part of a search page, and the catalog itself follows commits through the job queue.
FACETS_TTL = 30.0


def facets(hub: Hub, principal: Principal | None, repo_type: str, params: ListParams) -> search_q.Facets:
    """How many of the repos a listing matches (of those the caller may see) carry each tag,
    library and parameter-count bucket: the search page's facets (at most ``FACETS_TTL``
    seconds old)."""
    query = _query(principal, repo_type, params)
    if query is None:
        return search_q.Facets({}, {}, {})
    key = (repo_type, tuple(query.search), query.author, tuple(query.filters), query.pipeline_tag,
           query.min_params, query.max_params, query.gated, query.visible)
    now = time.monotonic()
    found = hub.facets.get(key)
    if found is not None and found[0] > now:
        return cast(search_q.Facets, found[1])
    with hub.db.read() as conn:
        counted = search_q.facet_counts(hub.db, conn, query)
    hub.facets.put(key, (now + FACETS_TTL, counted))
    return counted


def facts_of(repo: Repo) -> RepoFacts:
    """The catalog's facts of a repo (those of its indexed head of main)."""
    return RepoFacts(
        card_data=repo.card_data, tags=repo.tags, library_name=repo.library_name, pipeline_tag=repo.pipeline_tag,
        num_parameters=repo.num_parameters, safetensors=repo.safetensors, gguf=repo.gguf, config=repo.config,
        transformers_info=repo.transformers_info,
    )


@dataclass
class RepoInfo:
    """What ``GET /api/{type}/{repo}[/revision/{rev}]`` shows of a repo at a revision."""

    snap: RepoSnapshot
    entries: list[FileEntry]
    facts: RepoFacts
    bases: list[tuple[str, str]]
    children: int


def repo_info(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str) -> RepoInfo:
    snap, entries = list_tree(hub, principal, repo_type, repo_id, revision, "", recursive=True)
    repo = snap.repo
    visible = visibility(principal)
    if repo.indexed_commit == snap.commit.oid:
        facts = facts_of(repo)
        with hub.db.read() as conn:
            bases = facts_q.base_models(conn, repo.id)
            children = facts_q.children_count(conn, repo.repo_id.lower(), visible) if repo.type == "model" else 0
        return RepoInfo(snap, entries, facts, bases, children)
    # Another revision than the indexed head of main (or its indexing job has not run yet):
    # derive its facts now, from its files.
    facts = compute_facts(hub, repo, RepoFiles(hub, entries), strict=False)
    with hub.db.read() as conn:
        children = facts_q.children_count(conn, repo.repo_id.lower(), visible) if repo.type == "model" else 0
    return RepoInfo(snap, entries, facts, facts.base_models, children)


@dataclass
class ListedRepo:
    """One item of a listing page; ``bases``/``children`` with ``extra``, ``sha``/``files`` with ``full``."""

    repo: Repo
    facts: RepoFacts
    bases: list[tuple[str, str]] = field(default_factory=list)
    children: int = 0
    sha: str | None = None
    files: list[str] | None = None


def list_page(
    hub: Hub, principal: Principal | None, repo_type: str, params: ListParams, full: bool, extra: bool,
) -> tuple[list[ListedRepo], str | None]:
    """One page of ``list_repos`` with what the caller asked to see of each repo, in a number of
    statements that does not grow with the page size (lineage and heads of the whole page at
    once, trees a level of the whole page at once)."""
    rows, cursor = list_repos(hub, principal, repo_type, params)
    items = [ListedRepo(repo, facts_of(repo)) for repo in rows]
    if not items or not (extra or full):
        return items, cursor
    ids = [repo.id for repo in rows]
    with hub.db.read() as conn:
        if extra:
            bases = facts_q.base_models_of(conn, ids)
            keys = [repo.repo_id.lower() for repo in rows if repo.type == "model"]
            children = facts_q.children_counts(conn, keys, visibility(principal))
            for item in items:
                item.bases = bases[item.repo.id]
                item.children = children.get(item.repo.repo_id.lower(), 0)
        heads = refs_q.heads(conn, ids, f"refs/heads/{DEFAULT_BRANCH}") if full else {}
    if full:
        hub.objects.prefetch([Oid(h) for h in heads.values()])
        trees = {pk: commit_info(cast(Commit, hub.objects.get(Oid(head)))).tree for pk, head in heads.items()}
        paths = file_paths(hub, list(trees.values()))
        for item in items:
            head = heads.get(item.repo.id)
            item.sha = head
            item.files = paths[trees[item.repo.id]] if head is not None else []
    return items, cursor


def validate_card(text: str, repo_type: str) -> CardReport:
    """``POST /api/validate-yaml``: a README's metadata checked as the Hub checks it."""
    if repo_type not in ("model", "dataset", "space"):
        raise InvalidInputError("repoType must be model, dataset or space")
    return validate(text, repo_type)


def tags_by_type(hub: Hub, repo_type: str) -> dict[str, list[dict[str, Any]]]:
    """Public tags grouped the way the Hub groups them: by the prefix before ':'."""
    with hub.db.read() as conn:
        counts = search_q.tag_counts(conn, repo_type)
    groups: dict[str, list[dict[str, Any]]] = {}
    for tag, count in sorted(counts.items()):
        kind, sep, label = tag.partition(":")
        group = kind if sep else "other"
        groups.setdefault(group, []).append({"id": tag, "label": label if sep else tag, "type": group,
                                             "count": count})
    return groups


# -- likes -------------------------------------------------------------------------------------


def like(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, liked: bool) -> None:
    if principal is None:
        raise AuthenticationError("Log in to like a repository")
    with hub.db.write() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        if liked:
            signals_q.like(hub.db, conn, principal.account_id, repo.id, utcnow())
        else:
            signals_q.unlike(conn, principal.account_id, repo.id)


def likers(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> list[tuple[str, str]]:
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
        return signals_q.likers(conn, repo.id)


def liked_by(hub: Hub, principal: Principal | None, user: str) -> list[tuple[Repo, datetime]]:
    from modelyard.catalog import accounts as accounts_q

    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, user)
        if account is None:
            raise NotFoundError(f"No user named {user!r}")
        out = []
        for repo_pk, when in signals_q.liked_repo_ids(conn, account.id):
            repo = repo_by_id(conn, repo_pk)
            if repo is not None and can_read(principal, repo):
                out.append((repo, when))
        return out


# -- lineage and evaluation --------------------------------------------------------------------


def children(
    hub: Hub, principal: Principal | None, repo_id: str, relation: str | None
) -> list[tuple[Repo, str]]:
    if relation is not None and relation not in ("adapter", "merge", "quantized", "finetune"):
        raise InvalidInputError("relation must be adapter, merge, quantized or finetune")
    with hub.db.read() as conn:
        found = facts_q.children(conn, repo_id.lower(), relation)
    return [(r, rel) for r, rel in found if can_read(principal, r)]


def leaderboard(
    hub: Hub, principal: Principal | None, task: str, dataset: str, metric: str, limit: int, ascending: bool
) -> list[BoardEntry]:
    if not task or not dataset or not metric:
        raise InvalidInputError("task, dataset and metric are required")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    with hub.db.read() as conn:
        return facts_q.leaderboard(conn, task, dataset, metric, limit, ascending, visibility(principal))
