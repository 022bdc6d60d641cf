"""What the web pages show, gathered through the same services and access checks as the API.

The pages render these views and decide nothing: a private repo is missing here exactly as it
is in the API (``RepoNotFound``), a gated file's bytes need the same access as ``/resolve``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from dulwich.objects import Blob, Commit

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import signals as signals_q
from modelyard.catalog.accounts import Account
from modelyard.catalog.discussions import Thread
from modelyard.catalog.facts import BoardEntry
from modelyard.catalog.people import Person
from modelyard.catalog.repos import Repo
from modelyard.catalog.search import PARAM_BUCKETS, Facets
from modelyard.errors import InvalidInputError, NotFoundError
from modelyard.metadata import gguf, safetensors
from modelyard.metadata.cards import front_matter
from modelyard.metadata.evals import EvalResult, parse_model_index
from modelyard.metadata.frameworks import FORMAT_ORDER
from modelyard.metadata.reader import MetadataError
from modelyard.metadata.vocabulary import PIPELINE_TAGS
from modelyard.services import highlight, markdown
from modelyard.services.auth import Principal, can_write
from modelyard.services.collections import CollectionView, get_collection, list_collections
from modelyard.services.discovery import (
    ListedRepo,
    ListParams,
    RepoInfo,
    children,
    facets,
    leaderboard,
    liked_by,
    list_page,
    repo_info,
)
from modelyard.services.discussions import Details
from modelyard.services.discussions import details as discussion_details
from modelyard.services.files import FileEntry, commit_list, large_files, last_commits, list_tree, resolve_file
from modelyard.services.gating import GatedRepoError, check_download
from modelyard.services.hub import Hub, utcnow
from modelyard.services.people import AccountNotFoundError, Overview, members, org_overview, user_overview
from modelyard.services.repos import RepoSnapshot, find_repo, snapshot
from modelyard.services.scans import file_statuses
from modelyard.services.xet import CommitDedup, commit_dedup
from modelyard.storage.base import BlobStoreError
from modelyard.versioning.diff import file_diffs, tree_of
from modelyard.versioning.objects import CommitInfo, commit_info

#: Cards longer than this are not rendered (the file stays downloadable).
CARD_LIMIT = 512 * 1024
#: Text files shown inline up to this size; larger ones get a download link.
TEXT_LIMIT = 1024 * 1024
PAGE_SIZE = 30
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def repo_path(repo_type: str, repo_id: str) -> str:
    """The page of a repo, as on the Hub: ``/NS/NAME`` for models, ``/datasets/NS/NAME``."""
    return f"/{URL_PREFIXES[repo_type]}{quote(repo_id, safe='/')}"


def _within_repo(base_dir: str, target: str) -> str:
    """A relative link's path inside the repo (``..`` never climbs above its root)."""
    joined = posixpath.normpath(posixpath.join("/", base_dir, target)).lstrip("/")
    return "" if joined == "." else joined


def card_links(repo_type: str, repo_id: str, revision: str, base_dir: str = "") -> markdown.Links:
    """Relative links of a card lead to the repo's files at the revision shown: images to their
    bytes (``/resolve``), other links to their page (``/blob``). Absolute and fragment links stay."""
    root = repo_path(repo_type, repo_id)
    rev = quote(revision, safe="")

    def link(tag: str, attribute: str, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme or parts.netloc or value.startswith(("/", "#", "?")):
            return value
        path = quote(_within_repo(base_dir, unquote(parts.path)), safe="/")
        kind = "resolve" if tag in ("img", "audio", "video", "source") else "blob"
        suffix = f"#{parts.fragment}" if parts.fragment else ""
        return f"{root}/{kind}/{rev}/{path}{suffix}"

    return link


@dataclass
class RepoPage:
    info: RepoInfo
    revision: str
    card_html: str | None  # None: no README.md; "" with ``card_note`` when it is not shown
    card_note: str | None
    liked: bool = False  # by the viewer
    evals: list[EvalResult] = field(default_factory=list)  # the card's model-index results
    datasets: list[str] = field(default_factory=list)  # the datasets the card says it was trained on
    children: list[tuple[Repo, str]] = field(default_factory=list)  # models built on it, by relation
    collections: list[CollectionView] = field(default_factory=list)  # those that include it
    downloads: list[int] = field(default_factory=list)  # per day, the last 30 days, oldest first

    @property
    def repo(self) -> Repo:
        return self.info.snap.repo


def _text_of(hub: Hub, entry: FileEntry, limit: int) -> str | None:
    """A regular (not LFS) file's text if it is at most ``limit`` bytes of UTF-8, else None."""
    if entry.is_dir or entry.lfs_sha256 is not None or entry.size > limit:
        return None
    try:
        return cast(Blob, hub.objects.get(entry.oid)).as_raw_string().decode("utf-8")
    except UnicodeDecodeError:
        return None


SPARK_DAYS = 30


def _around(hub: Hub, principal: Principal | None, view: RepoPage) -> RepoPage:
    """What the sidebar shows beside the card: evaluation results, datasets, the models built on
    this one, the collections that include it (those the viewer may see) and daily downloads."""
    repo, facts = view.repo, view.info.facts
    card = facts.card_data or {}
    view.evals = parse_model_index(card["model-index"]).results[:50] if "model-index" in card else []
    view.datasets = [t.removeprefix("dataset:") for t in repo.tags if t.startswith("dataset:")][:20]
    if repo.type == "model":
        view.children = children(hub, principal, repo.repo_id, None)[:20]
    view.collections = list_collections(hub, principal, [], [f"{repo.type}s/{repo.repo_id}"], None, 0, 10)[0]
    today = utcnow().date()
    with hub.db.read() as conn:
        days = signals_q.daily_downloads(conn, repo.id, today - timedelta(days=SPARK_DAYS - 1))
    view.downloads = [days.get(today - timedelta(days=back), 0) for back in range(SPARK_DAYS - 1, -1, -1)]
    return view


@lru_cache(maxsize=256)
def _card_html(oid: str, repo_type: str, repo_id: str, revision: str, text: str) -> str:
    """A card rendered for the page: the same README blob (``oid``) at the same place renders
    the same, so popular pages are rendered once per process (markdown-it is pure Python)."""
    _yaml, body = front_matter(text)
    return markdown.render(body, card_links(repo_type, repo_id, revision))


def repo_page(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str) -> RepoPage:
    info = repo_info(hub, principal, repo_type, repo_id, revision)
    liked = False
    if principal is not None:
        with hub.db.read() as conn:
            liked = signals_q.is_liked(conn, principal.account_id, info.snap.repo.id)
    readme = next((e for e in info.entries if e.path == "README.md" and not e.is_dir), None)
    if readme is None:
        return _around(hub, principal, RepoPage(info, revision, None, None, liked))
    text = _text_of(hub, readme, CARD_LIMIT)
    if text is None:
        return _around(hub, principal, RepoPage(
            info, revision, "", "The model card is too large or not UTF-8 text: download README.md.", liked))
    html = _card_html(readme.oid, repo_type, info.snap.repo.repo_id, revision, text)
    return _around(hub, principal, RepoPage(info, revision, html, None, liked))


@dataclass
class TreePage:
    snap: RepoSnapshot
    revision: str
    path: str
    entries: list[FileEntry]
    last: dict[str, CommitInfo]  # each entry's last commit (the first TREE_LAST_COMMITS entries)
    security: dict[str, dict[str, Any]] = field(default_factory=dict)  # securityFileStatus by path


#: A folder's page names the last commit of this many entries (a walk of the history per page).
TREE_LAST_COMMITS = 100


def tree_page(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, path: str
) -> TreePage:
    """The entries of one folder (directories first), with the commit that last changed each;
    a file's path lists just the file."""
    snap, entries = list_tree(hub, principal, repo_type, repo_id, revision, path, recursive=False)
    entries.sort(key=lambda e: (not e.is_dir, e.path.lower()))
    key = f"last:{snap.commit.oid}:{path.strip('/')}"
    cached = hub.histories.get(key)
    if cached is None:
        cached = tuple(last_commits(hub, snap.commit.oid, [e.path for e in entries[:TREE_LAST_COMMITS]]).items())
        hub.histories.put(key, cached)
    return TreePage(snap, revision, path.strip("/"), entries, dict(cached), file_statuses(hub, entries))


#: A weight file's page lists at most this many tensors.
TENSOR_ROWS = 2000


@dataclass
class Weights:
    """What a weight file's header says: its tensors (name, dtype, shape, parameters), the
    parameters by dtype, and for GGUF its key/value fields. ``problem``: why it could not be read."""

    kind: str  # safetensors | gguf
    tensors: list[tuple[str, str, tuple[int, ...], int]] = field(default_factory=list)
    count: int = 0
    parameters: dict[str, int] = field(default_factory=dict)
    fields: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None

    @property
    def total(self) -> int:
        return sum(self.parameters.values())


@dataclass
class BlobPage:
    repo: Repo
    revision: str
    commit: str
    entry: FileEntry
    lines: list[str] | None  # None: shown as a download (large, binary, LFS or Xet)
    reason: str | None
    weights: Weights | None = None
    highlighted: list[str] | None = None  # the lines as HTML (services/highlight.py), if a lexer knows the file
    image: bool = False  # shown as an image (from /resolve)
    security: dict[str, Any] | None = None  # the file's securityFileStatus (services/scans.py)


#: Files shown as an image on their page (SVG is not: /resolve serves it as text, never to render).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".bmp", ".ico")
IMAGE_LIMIT = 20 * 1000 * 1000


def _weights(hub: Hub, entry: FileEntry) -> Weights | None:
    """The header of a ``.safetensors`` or ``.gguf`` file, read by range (never the weights)."""
    from modelyard.services.indexer import RepoFiles

    kind = "safetensors" if entry.path.endswith(".safetensors") else "gguf" if entry.path.endswith(".gguf") else None
    if kind is None:
        return None
    read, size = RepoFiles(hub, [entry]).reader(entry.path)
    try:
        if kind == "safetensors":
            header = safetensors.parse_header(read, size)
            tensors = sorted(header.tensors.values(), key=lambda t: t.name)
            return Weights(kind, [(t.name, t.dtype, t.shape, t.parameters) for t in tensors[:TENSOR_ROWS]],
                           len(tensors), dict(header.parameters),
                           [(key, _field_text(value)) for key, value in sorted(header.metadata.items())])
        parsed = gguf.parse_header(read, size)
        by_type: dict[str, int] = {}
        for tensor in parsed.tensors:
            by_type[tensor.type_name] = by_type.get(tensor.type_name, 0) + tensor.parameters
        fields = [(key, _field_text(value)) for key, value in sorted(parsed.fields.items())]
        rows = [(t.name, t.type_name, t.dims, t.parameters) for t in parsed.tensors[:TENSOR_ROWS]]  # ggml order
        return Weights(kind, rows, len(parsed.tensors), by_type, fields)
    except (MetadataError, BlobStoreError) as exc:
        return Weights(kind, problem=str(exc))


def _field_text(value: object) -> str:
    text = str(value)
    return text if len(text) <= 300 else text[:300] + "…"


def blob_page(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, path: str
) -> BlobPage:
    """A file of a revision: its text by lines when it is small UTF-8, else why not; for weight
    files, the tensor table of their header. The same access as a download: a gated repo's
    files need access granted."""
    resolved = resolve_file(hub, principal, repo_type, repo_id, revision, path)
    snap_repo = _repo_of(hub, principal, repo_type, repo_id)
    entry = resolved.entry
    weights = _weights(hub, entry)
    image = entry.path.lower().endswith(IMAGE_EXTENSIONS) and entry.size <= IMAGE_LIMIT
    security = file_statuses(hub, [entry]).get(entry.path)
    if resolved.inline is None:
        kind = "Xet" if entry.xet_hash is not None else "LFS"
        return BlobPage(snap_repo, revision, resolved.commit, entry, None, f"Stored with {kind}.", weights,
                        image=image, security=security)
    if len(resolved.inline) > TEXT_LIMIT:
        return BlobPage(snap_repo, revision, resolved.commit, entry, None, "Too large to show.", weights,
                        image=image, security=security)
    try:
        text = resolved.inline.decode("utf-8")
    except UnicodeDecodeError:
        return BlobPage(snap_repo, revision, resolved.commit, entry, None, "A binary file.", weights, image=image,
                        security=security)
    return BlobPage(snap_repo, revision, resolved.commit, entry, text.splitlines(), None, weights,
                    highlight.file_lines(entry.path, text), security=security)


def _repo_of(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str) -> Repo:
    with hub.db.read() as conn:
        return find_repo(conn, principal, repo_type, repo_id)


#: The sorts of the listing API, as the search page offers them.
SORTS = ("trendingScore", "likes", "downloads", "lastModified", "createdAt")


@dataclass
class FacetItem:
    label: str
    count: int
    kind: str  # "filter": a tag filter; "num_parameters": a parameter range
    value: str
    active: bool


@dataclass
class FacetGroup:
    title: str
    items: list[FacetItem]


FACETS_SHOWN = 10
FACET_TITLES = ("Tasks", "Libraries", "Parameters", "Languages", "Licenses", "Formats", "Base models", "Datasets",
                "Other tags")
_LANGUAGE = re.compile(r"[a-z]{2}")


def _facet_title(repo_type: str, tag: str, libraries: dict[str, int]) -> tuple[str, str] | None:
    """The facet a tag belongs to and how it is labelled there (None: not a facet)."""
    if tag in PIPELINE_TAGS:
        return "Tasks", tag
    if tag.startswith("license:"):
        return "Licenses", tag.removeprefix("license:")
    if tag.startswith("language:"):
        return "Languages", tag.removeprefix("language:")
    if repo_type == "model" and _LANGUAGE.fullmatch(tag):
        return "Languages", tag
    if tag.startswith("base_model:"):
        base = tag.removeprefix("base_model:")
        return None if ":" in base else ("Base models", base)  # base_model:finetune:x repeats x
    if tag.startswith("dataset:"):
        return "Datasets", tag.removeprefix("dataset:")
    if tag in FORMAT_ORDER:
        return "Formats", tag
    if tag in libraries:
        return "Libraries", tag
    if tag.startswith(("arxiv:", "region:")):
        return None
    return "Other tags", tag


def facet_groups(repo_type: str, facets: Facets, filters: list[str], num_parameters: str | None) -> list[FacetGroup]:
    """A search's facets, each with its most frequent values (and every active one)."""
    groups: dict[str, list[FacetItem]] = {title: [] for title in FACET_TITLES}
    for tag, count in facets.tags.items():
        placed = _facet_title(repo_type, tag, facets.libraries)
        if placed is not None:
            groups[placed[0]].append(FacetItem(placed[1], count, "filter", tag, tag in filters))
    for label, value, _low, _high in PARAM_BUCKETS:
        count = facets.params.get(label, 0)
        if count or value == num_parameters:
            groups["Parameters"].append(FacetItem(label, count, "num_parameters", value, value == num_parameters))
    out = []
    for title in FACET_TITLES:
        items = groups[title]
        if title != "Parameters":
            items.sort(key=lambda i: (-i.count, i.label))
        shown = [i for n, i in enumerate(items) if n < FACETS_SHOWN or i.active]
        if shown:
            out.append(FacetGroup(title, shown))
    return out


@dataclass
class SearchPage:
    repo_type: str
    query: str
    sort: str
    items: list[ListedRepo]
    next_cursor: str | None
    facets: list[FacetGroup]


def search_page(
    hub: Hub, principal: Principal | None, repo_type: str, query: str, sort: str, filters: list[str],
    num_parameters: str | None, cursor: str | None,
) -> SearchPage:
    params = ListParams(search=[query] if query else [], filters=filters, sort=sort, limit=PAGE_SIZE,
                        num_parameters=num_parameters or None, cursor=cursor)
    items, following = list_page(hub, principal, repo_type, params, full=False, extra=False)
    counted = facets(hub, principal, repo_type, params)
    return SearchPage(repo_type, query, sort, items, following,
                      facet_groups(repo_type, counted, filters, num_parameters or None))


@dataclass
class HomePage:
    trending_models: list[ListedRepo]
    trending_datasets: list[ListedRepo]
    recent: list[ListedRepo]


def home_page(hub: Hub, principal: Principal | None) -> HomePage:
    def top(repo_type: str, sort: str) -> list[ListedRepo]:
        return list_page(hub, principal, repo_type, ListParams(sort=sort, limit=10), full=False, extra=False)[0]

    return HomePage(top("model", "trendingScore"), top("dataset", "trendingScore"), top("model", "lastModified"))


COMMITS_PAGE = 50
#: A commit page shows at most this much diff text; the files past it are listed without it.
DIFF_LIMIT = 1024 * 1024


@dataclass
class CommitsPage:
    repo: Repo
    revision: str
    commits: list[CommitInfo]
    page: int
    has_next: bool
    path: str = ""  # the history of this file or folder only


def commits_page(
    hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str, page: int, path: str = ""
) -> CommitsPage:
    """A page of the revision's history, newest first (``page`` from 0); with ``path``, only the
    commits that changed that file or folder."""
    snap = snapshot(hub, principal, repo_type, repo_id, revision)
    commits = commit_list(hub, snap, path)
    start = max(page, 0) * COMMITS_PAGE
    return CommitsPage(snap.repo, revision, commits[start : start + COMMITS_PAGE], max(page, 0),
                       len(commits) > start + COMMITS_PAGE, path)


@dataclass
class FileDiff:
    path: str
    status: str  # added | deleted | modified
    lines: list[tuple[str, str]]  # (kind: add | del | hunk | meta | ctx, text)


@dataclass
class CommitPage:
    repo: Repo
    commit: CommitInfo
    files: list[FileDiff]
    truncated: bool
    hidden: str | None  # why the diff is not shown (a gated repo's files need access)
    dedup: CommitDedup | None = None


def _lines(text: str) -> tuple[str, list[tuple[str, str]]]:
    status, out = "modified", []
    for line in text.splitlines():
        if line.startswith("new file mode"):
            status = "added"
        elif line.startswith("deleted file mode"):
            status = "deleted"
        if line.startswith(("diff --git", "index ", "new file mode", "deleted file mode", "--- ", "+++ ")):
            continue
        kind = ("hunk" if line.startswith("@@") else "add" if line.startswith("+") else
                "del" if line.startswith("-") else "ctx" if line.startswith(" ") else "meta")
        out.append((kind, line))
    return status, out


def commit_page(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, oid: str) -> CommitPage:
    """A commit and its diff against its first parent, file by file (LFS files as their pointer
    text). The diff shows file contents: a gated repo's need access, as a download does."""
    snap = snapshot(hub, principal, repo_type, repo_id, oid)
    try:
        with hub.db.read() as conn:
            check_download(conn, principal, snap.repo)
    except GatedRepoError:
        return CommitPage(snap.repo, snap.commit, [], False, "The changes of a gated repo's files are shown "
                          "to those who have access to them.")
    parent = tree_of(hub.objects, snap.commit.parents[0]) if snap.commit.parents else None
    diffs, truncated = file_diffs(hub.objects, parent, snap.commit.tree, DIFF_LIMIT)
    files = []
    for path, text in diffs:
        status, lines = _lines(text)
        files.append(FileDiff(path, status, lines))
    return CommitPage(snap.repo, snap.commit, files, truncated, None, _dedup(hub, snap.repo, snap.commit))


def _dedup(hub: Hub, repo: Repo, commit: CommitInfo) -> CommitDedup | None:
    """Xet's savings on a commit's new large files (kept per repo and commit: they never change);
    None when it brings none, or when a file's xorbs are gone (a purge)."""
    key = f"dedup:{repo.id}:{commit.oid}"
    cached = hub.histories.get(key)
    if cached is None:
        parent = commit.parents[0] if commit.parents else None
        after = large_files(hub, commit.tree)
        before = large_files(hub, tree_of(hub.objects, parent)) if parent is not None else set()
        try:
            with hub.db.read() as conn:
                since = repo.created_at
                if parent is not None:
                    made = objects_q.repo_commit_time(conn, repo.id, parent)
                    since = made or commit_info(cast(Commit, hub.objects.get(parent))).date.replace(tzinfo=None)
                cached = (commit_dedup(conn, before, after, since),)
        except NotFoundError:
            cached = (None,)
        hub.histories.put(key, cached)
    found: CommitDedup | None = cached[0]
    return found


COLLECTIONS_PAGE = 30


@dataclass
class CollectionsPage:
    owner: str
    sort: str
    collections: list[CollectionView]
    page: int
    has_next: bool


def collections_page(hub: Hub, principal: Principal | None, owner: str, sort: str, page: int) -> CollectionsPage:
    """A page of the collections the viewer may see (of one owner, if named), each with its
    first items."""
    page = max(page, 0)
    found, more = list_collections(hub, principal, [owner] if owner else [], [], sort, page * COLLECTIONS_PAGE,
                                   COLLECTIONS_PAGE)
    return CollectionsPage(owner, sort, found, page, more)


def collection_page(hub: Hub, principal: Principal | None, slug: str) -> CollectionView:
    """One collection with every item the viewer may see (404 for a private one they may not)."""
    return get_collection(hub, principal, slug)


PROFILE_REPOS = 30


@dataclass
class ProfilePage:
    overview: Overview
    models: list[ListedRepo]
    datasets: list[ListedRepo]
    members: list[Person]  # an org's
    collections: list[CollectionView]
    likes: list[Repo]  # a user's, those the viewer may read

    @property
    def account(self) -> Account:
        return self.overview.account


def profile_page(hub: Hub, principal: Principal | None, name: str) -> ProfilePage:
    """A user's or an organization's page: who, their repos, collections and (users) likes,
    all as the viewer may see them (private ones only for the account and its orgs' members)."""
    with hub.db.read() as conn:
        account = accounts_q.by_name(conn, name)
    if account is None:
        raise AccountNotFoundError(f"No user or organization named {name!r}")
    is_org = account.kind == "org"
    overview = org_overview(hub, principal, account.name) if is_org else user_overview(hub, principal, account.name)

    def repos(repo_type: str) -> list[ListedRepo]:
        params = ListParams(author=account.name, sort="lastModified", limit=PROFILE_REPOS)
        return list_page(hub, principal, repo_type, params, full=False, extra=False)[0]

    people = members(hub, principal, account.name) if is_org else []
    collections, _more = list_collections(hub, principal, [account.name], [], None, 0, 12)
    likes = [] if is_org else [repo for repo, _when in liked_by(hub, principal, account.name)[:PROFILE_REPOS]]
    return ProfilePage(overview, repos("model"), repos("dataset"), people, collections, likes)


@dataclass
class Bar:
    entry: BoardEntry
    width: float  # 0–100: the value's share of the best value's scale (for the chart)


@dataclass
class LeaderboardPage:
    task: str
    dataset: str
    metric: str
    ascending: bool
    bars: list[Bar]


def leaderboard_page(
    hub: Hub, principal: Principal | None, task: str, dataset: str, metric: str, ascending: bool
) -> LeaderboardPage:
    """Models ranked by a metric on a dataset for a task (their cards' ``model-index``), with
    bar lengths for the chart; an empty board until all three are given."""
    if not (task and dataset and metric):
        return LeaderboardPage(task, dataset, metric, ascending, [])
    entries = leaderboard(hub, principal, task, dataset, metric, 50, ascending)
    values = [e.value for e in entries]
    low, high = min(values, default=0.0), max(values, default=0.0)
    floor = min(0.0, low)
    span = (high - floor) or 1.0
    bars = [Bar(e, max(2.0, 100.0 * (e.value - floor) / span)) for e in entries]
    return LeaderboardPage(task, dataset, metric, ascending, bars)


@dataclass
class ThreadPage:
    repo: Repo
    details: Details
    files: list[FileDiff]  # a pull request's changes, file by file (None of them without access)
    may_write: bool  # merge, and change others' threads

    @property
    def thread(self) -> Thread:
        return self.details.thread


def diff_by_file(diff: str | None) -> list[FileDiff]:
    """A unified diff cut at each ``diff --git`` header."""
    if not diff:
        return []
    out = []
    for piece in re.split(r"(?m)^(?=diff --git )", diff):
        if not piece.startswith("diff --git "):
            continue
        header = piece.split("\n", 1)[0]
        path = header.split(" b/", 1)[1] if " b/" in header else header.removeprefix("diff --git ")
        status, lines = _lines(piece)
        out.append(FileDiff(path, status, lines))
    return out


def thread_page(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, num: int) -> ThreadPage:
    """A discussion or pull request with its events, and a pull request's changes (for those who
    may download the repo's files, as in the API)."""
    found = discussion_details(hub, principal, repo_type, repo_id, num, with_diff=True)
    with hub.db.read() as conn:
        repo = find_repo(conn, principal, repo_type, repo_id)
    return ThreadPage(repo, found, diff_by_file(found.diff), can_write(principal, repo))


def writable_namespaces(principal: Principal) -> list[str]:
    """Where the signed-in user may create repos: their own namespace and orgs they write in."""
    orgs = sorted(name for name, role in principal.orgs.values() if role in ("write", "admin"))
    return [principal.name, *orgs]


def editable_text(hub: Hub, principal: Principal | None, repo_type: str, repo_id: str, revision: str,
                  path: str) -> BlobPage:
    """A text file to edit in the page (a small UTF-8 file kept in git, not LFS): refused otherwise."""
    found = blob_page(hub, principal, repo_type, repo_id, revision, path)
    if found.lines is None:
        raise InvalidInputError(f"{path} cannot be edited in the browser: {found.reason or 'not a small text file'}")
    return found
