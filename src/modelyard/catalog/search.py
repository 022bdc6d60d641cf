"""Catalog search: full-text match, tag filters, sorting and snapshot-stable pagination.

Full text lives outside the portable metadata: an FTS5 table ``repo_fts`` (rowid = repo id) on
SQLite, a ``search_vector`` tsvector column with a GIN index on PostgreSQL (migration 0002).

Pagination is stable under concurrent writes. Every change of a sort key (last modified,
downloads, likes, trending score) takes the next value of a catalog-wide sequence and logs the
values it replaced. A cursor remembers the sequence number of its first page; later pages see
each repo with the sort values it had then (repos created since are left out), so a walk
neither repeats nor skips a repo while commits land.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from modelyard.catalog.database import Database
from modelyard.catalog.repos import Repo, _repo
from modelyard.catalog.tables import catalog_counter, repo_sort_log, repo_tags, repos
from modelyard.catalog.visibility import Visibility

SORT_KEYS = ("lastModified", "createdAt", "downloads", "likes", "trendingScore")
SORT_COLUMNS = {
    "lastModified": repos.c.last_modified,
    "createdAt": repos.c.created_at,
    "downloads": repos.c.downloads,
    "likes": repos.c.likes,
    "trendingScore": repos.c.trending_score,
}
#: How long a pagination cursor keeps its snapshot; older cursors are refused.
CURSOR_LIFETIME = timedelta(hours=1)
_TOKEN = re.compile(r"\w+", re.UNICODE)
TAG_LEXEME = "t|"
#: Shorter search words match whole words only: a 1-3 letter prefix matches most of a catalog.
PREFIX_MIN = 4


def next_seq(conn: Connection) -> int:
    """Take the next catalog sequence number (inside the caller's write transaction)."""
    conn.execute(update(catalog_counter).where(catalog_counter.c.id == 1).values(value=catalog_counter.c.value + 1))
    return int(conn.execute(select(catalog_counter.c.value).where(catalog_counter.c.id == 1)).scalar_one())


def current_seq(conn: Connection) -> int:
    return int(conn.execute(select(catalog_counter.c.value).where(catalog_counter.c.id == 1)).scalar_one())


def change_sort_keys(conn: Connection, repo_id: int, **values: Any) -> None:
    """Update sort keys (and anything else in ``values``), logging the old sort values first.

    The repo's row is locked (PostgreSQL) before the catalog counter: every writer takes a repo's
    row before the counter (a commit holds it already), so two of them never wait on each other
    in a cycle. A writer changing several repos locks them all first (``services/tallies.py``)."""
    old = conn.execute(
        select(repos.c.last_modified, repos.c.downloads, repos.c.likes, repos.c.trending_score)
        .where(repos.c.id == repo_id).with_for_update(key_share=True)
    ).first()
    if old is None:
        return
    seq = next_seq(conn)
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(repo_sort_log.insert().values(
        repo_id=repo_id, seq=seq, last_modified=old.last_modified, downloads=old.downloads,
        likes=old.likes, trending_score=old.trending_score, at=now,
    ))
    if seq % 1000 == 0:  # now and then, forget what no live cursor can still need
        conn.execute(delete(repo_sort_log).where(repo_sort_log.c.at < now - CURSOR_LIFETIME))
    conn.execute(update(repos).where(repos.c.id == repo_id).values(change_seq=seq, **values))


def set_search_text(
    db: Database, conn: Connection, repo_id: int, name: str, body: str, tags: list[str] | None = None
) -> None:
    """(Re)index a repo's searchable text: its id, card text and tags. (On PostgreSQL the
    ``setweight`` calls have no effect: ``array_to_tsvector`` makes lexemes without positions,
    which carry no weight. Nothing ranks by weight, so none is needed.)

    On PostgreSQL the tags also go into the vector as literal lexemes ``t|<tag>``, so that a
    search with tag filters is one GIN lookup that intersects posting lists; on SQLite they go
    into the FTS5 table's ``tags`` column as one token each (``tag_token``), to the same end.
    """
    if db.is_sqlite:
        conn.execute(text("DELETE FROM repo_fts WHERE rowid = :id"), {"id": repo_id})
        conn.execute(text("INSERT INTO repo_fts (rowid, name, body, tags) VALUES (:id, :name, :body, :tags)"),
                     {"id": repo_id, "name": name, "body": body,
                      "tags": " ".join(tag_token(t) for t in sorted(set(tags or [])))})
    else:
        # Lexemes are the same \w+ tokens the query side makes (PostgreSQL's own parser reads
        # "1e84ba" as a number and "r-x-0" as a hyphenated word, which searches would miss).
        names = sorted(set(search_tokens([name])))
        words = sorted(set(search_tokens([body[:200_000]])) - set(names))
        conn.execute(
            text("UPDATE repos SET search_vector = setweight(array_to_tsvector(CAST(:name AS text[])), 'A') || "
                 "setweight(array_to_tsvector(CAST(:body AS text[])), 'B') || "
                 "setweight(array_to_tsvector(CAST(:tags AS text[])), 'D') WHERE id = :id"),
            {"id": repo_id, "name": names, "body": words, "tags": [TAG_LEXEME + t for t in tags or []]},
        )
        # Every word lexeme of every vector is in search_lexemes (migration 0014), in the same
        # transaction: prefix searches are expanded from it (``_expand``). New words only, in
        # one order, so concurrent indexers never wait on each other in a cycle.
        conn.execute(_NEW_LEXEMES, {"words": sorted(set(names) | set(words))})


def tag_token(tag: str) -> str:
    """A tag as one FTS5 token (the unicode61 tokenizer would split ``license:mit`` in three):
    ``t`` and the hex of its UTF-8 bytes, as migration 0013 writes it with SQL's ``hex()``."""
    return "t" + tag.encode("utf-8").hex()


def delete_search_text(db: Database, conn: Connection, repo_id: int) -> None:
    if db.is_sqlite:
        conn.execute(text("DELETE FROM repo_fts WHERE rowid = :id"), {"id": repo_id})


def search_tokens(terms: list[str]) -> list[str]:
    return [t.lower() for term in terms for t in _TOKEN.findall(term)]


@dataclass(frozen=True)
class Cursor:
    """Where a page walk stands: the snapshot it reads, and the last (sort value, id) served."""

    seq: int
    value: Any
    last_id: int


@dataclass(frozen=True)
class SearchQuery:
    repo_type: str
    search: list[str]
    author: str | None
    filters: list[str]
    pipeline_tag: str | None
    min_params: int | None
    max_params: int | None
    gated: bool | None
    sort: str
    limit: int
    cursor: Cursor | None
    visible: Visibility  # which private repos the caller may see


_NEW_LEXEMES = text(
    "INSERT INTO search_lexemes (lexeme) SELECT w FROM unnest(CAST(:words AS text[])) AS w "
    "WHERE NOT EXISTS (SELECT 1 FROM search_lexemes WHERE lexeme = w) ORDER BY w ON CONFLICT DO NOTHING"
)
#: A prefix standing for more words than this is left to GIN's own prefix match.
EXPAND_MAX = 32
_PREFIXED = text(
    "SELECT lexeme FROM search_lexemes WHERE lexeme >= :p AND lexeme < :p || chr(1114111) ORDER BY lexeme LIMIT :n"
)


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsquery(conn: Connection, tokens: list[str], tags: list[str]) -> str:
    """PostgreSQL: one tsquery for words and tags, so that GIN intersects the posting lists in
    one index scan. Words of ``PREFIX_MIN`` letters or more match as prefixes (``_expand``)."""
    terms = [_expand(conn, t) if len(t) >= PREFIX_MIN else _quoted(t) for t in tokens]
    return " & ".join(terms + [_quoted(TAG_LEXEME + tag) for tag in tags])


def _expand(conn: Connection, prefix: str) -> str:
    """A prefix term as the words it stands for (``('llama' | 'llamas')``), looked up in
    search_lexemes, which holds every word of every vector; GIN's prefix match (``'llama':*``)
    gathers every posting of every such word before it can intersect, which costs more than the
    rest of a search at a million repos. Only when a prefix stands for many words is it left as
    a prefix match."""
    words = [str(r[0]) for r in conn.execute(_PREFIXED, {"p": prefix, "n": EXPAND_MAX + 1})]
    if len(words) > EXPAND_MAX:
        return _quoted(prefix) + ":*"
    if not words:  # no vector holds such a word: nothing can match
        return _quoted(prefix)
    return "(" + " | ".join(_quoted(w) for w in words) + ")"


def _conditions(
    db: Database, conn: Connection, q: SearchQuery, with_match: bool = True, tsq: str | None = None
) -> list[ColumnElement[bool]]:
    """What a match of ``q`` satisfies. On PostgreSQL, words and tag filters are one full-text
    condition (``tsq`` when the caller has built it), left out with ``with_match=False``
    (``search`` then applies it itself)."""
    tokens = search_tokens(q.search)
    type_col: Any = repos.c.type
    if db.is_sqlite and tokens:
        # Drive the query from the full-text matches by primary key, whatever the statistics
        # say: `+col` keeps SQLite from choosing a (type, ...) index instead.
        type_col = literal_column("+repos.type")
    conds: list[ColumnElement[bool]] = [type_col == q.repo_type]
    if not q.visible.everything:
        conds.append(q.visible.repos())
    tag_filters = list(q.filters)
    if tokens and db.is_sqlite:
        # Words in the name and body, tags in their column: FTS5 intersects the posting lists.
        words = " AND ".join(f'"{t}"' + ("*" if len(t) >= PREFIX_MIN else "") for t in tokens)
        match = " AND ".join([f"{{name body}} : ({words})", *(f'tags : "{tag_token(tag)}"' for tag in tag_filters)])
        conds.append(repos.c.id.in_(text("SELECT rowid FROM repo_fts WHERE repo_fts MATCH :m").bindparams(m=match)))
        tag_filters = []
    elif (tokens or tag_filters) and not db.is_sqlite:
        if with_match:
            # Materialised first, so the planner looks the matches up in the GIN index instead
            # of walking the sort index and testing every row's vector.
            match_sql = "SELECT id FROM repos WHERE search_vector @@ CAST(:q AS tsquery)"
            matches = (
                text(match_sql).bindparams(q=tsq if tsq is not None else _tsquery(conn, tokens, tag_filters))
                .columns(id=Integer).cte("matches")
                .prefix_with("MATERIALIZED")
            )
            conds.append(repos.c.id.in_(select(matches.c.id)))
        tag_filters = []
    if not tokens and any(s.strip() for s in q.search):
        conds.append(repos.c.id < 0)  # only punctuation: nothing can match
    if q.author:
        conds.append(repos.c.key.startswith(q.author.lower() + "/", autoescape=True))
    for tag in tag_filters:  # a primary-key probe per candidate row
        conds.append(exists().where(repo_tags.c.repo_id == repos.c.id, repo_tags.c.tag == tag))
    if q.pipeline_tag:
        conds.append(repos.c.pipeline_tag == q.pipeline_tag)
    if q.min_params is not None:
        conds.append(repos.c.num_parameters >= q.min_params)
    if q.max_params is not None:
        conds.append(repos.c.num_parameters <= q.max_params)
    if q.gated is not None:
        conds.append(repos.c.gated.is_not(None) if q.gated else repos.c.gated.is_(None))
    return conds


def _sort_value(repo: Repo, sort: str) -> Any:
    return {
        "lastModified": repo.last_modified, "createdAt": repo.created_at, "downloads": repo.downloads,
        "likes": repo.likes, "trendingScore": repo.trending_score,
    }[sort]


def search(db: Database, conn: Connection, q: SearchQuery) -> tuple[list[Repo], Cursor | None]:
    """One page of matching repos, newest/highest first, and the cursor of the next page."""
    seq = q.cursor.seq if q.cursor else current_seq(conn)
    sort_col = SORT_COLUMNS[q.sort]
    tokens = search_tokens(q.search)
    tsq = _tsquery(conn, tokens, list(q.filters)) if not db.is_sqlite and (tokens or q.filters) else None
    matching = _conditions(db, conn, q, tsq=tsq)
    conds = [*matching, repos.c.created_seq <= seq]  # (repos created since the snapshot are left out)
    page_conds = [repos.c.created_seq <= seq, repos.c.change_seq <= seq]  # as of the snapshot
    if q.cursor is not None:  # and after the cursor
        value, last_id = q.cursor.value, q.cursor.last_id
        page_conds.append(or_(sort_col < value, and_(sort_col == value, repos.c.id < last_id)))
    order_col: Any = sort_col
    if db.is_sqlite and tokens:
        # Drive the query from the full-text matches (usually few) rather than by walking the
        # sort index and probing each row: `+col` keeps SQLite from using the index to sort.
        order_col = literal_column(f"+repos.{sort_col.name}")
    if tsq is not None:
        rows = conn.execute(_matched_page(db, conn, q, tsq, sort_col, page_conds))
    else:
        rows = conn.execute(
            select(repos).where(*matching, *page_conds).order_by(order_col.desc(), repos.c.id.desc()).limit(q.limit + 1)
        )
    candidates: list[tuple[Any, int, Repo]] = [(_sort_value(r, q.sort), r.id, r) for r in map(_repo, rows)]
    # Repos changed after the snapshot: place them by the values they had at the snapshot. Few
    # as a rule, so find them by the change_seq index first and filter those alone.
    changed_ids = [r.id for r in conn.execute(select(repos.c.id).where(repos.c.change_seq > seq))]
    changed = []
    for start in range(0, len(changed_ids), 500):
        chunk = changed_ids[start : start + 500]
        changed += [_repo(r) for r in conn.execute(select(repos).where(*conds, repos.c.id.in_(chunk)))]
    if changed:
        snapshot = _values_at(conn, [r.id for r in changed], seq)
        for repo in changed:
            value = snapshot.get(repo.id, {}).get(q.sort, _sort_value(repo, q.sort))
            if q.cursor is None or (value, repo.id) < (q.cursor.value, q.cursor.last_id):
                candidates.append((value, repo.id, repo))
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    page = candidates[: q.limit]
    if len(candidates) > q.limit:
        value, last_id, _ = page[-1]
        return [c[2] for c in page], Cursor(seq, value, last_id)
    return [c[2] for c in page], None


def _matched_page(
    db: Database, conn: Connection, q: SearchQuery, tsq: str, sort_col: Any, page_conds: list[ColumnElement[bool]]
) -> Any:
    """PostgreSQL, words or tag filters: the statement of a page's rows. The GIN scan's visit of
    each match's row takes the columns the filters and the sort read (materialised), the page's
    ids are picked from those, and only the page's rows are read in full: each match's row is
    visited once, not once by the scan and again to filter and sort it."""
    # Every column a condition reads (``_conditions``, ``Visibility.repos``): one left out would
    # stay a reference to ``repos``, correlated with the outer statement's row, and the page would
    # be filtered row by row instead.
    wanted = [repos.c.id, repos.c.type, repos.c.private, repos.c.owner_id, repos.c.resource_group_id, repos.c.key,
              repos.c.pipeline_tag, repos.c.num_parameters, repos.c.gated, repos.c.created_seq, repos.c.change_seq,
              sort_col]
    found = (
        select(*wanted).where(text("repos.search_vector @@ CAST(:tsq AS tsquery)").bindparams(tsq=tsq))
        .cte("found").prefix_with("MATERIALIZED")
    )
    adapter = ClauseAdapter(found)
    conds = [*_conditions(db, conn, q, with_match=False), *page_conds]
    ids = (
        select(found.c.id).where(*(adapter.traverse(c) for c in conds))
        .order_by(adapter.traverse(sort_col).desc(), found.c.id.desc()).limit(q.limit + 1)
    )
    return select(repos).where(repos.c.id.in_(ids)).order_by(sort_col.desc(), repos.c.id.desc())


def _values_at(conn: Connection, repo_ids: list[int], seq: int) -> dict[int, dict[str, Any]]:
    """Each repo's sort values as of ``seq``: the oldest logged values replaced after it."""
    out: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        select(repo_sort_log)
        .where(repo_sort_log.c.repo_id.in_(repo_ids), repo_sort_log.c.seq > seq)
        .order_by(repo_sort_log.c.repo_id, repo_sort_log.c.seq)
    )
    for row in rows:
        if row.repo_id not in out:
            out[row.repo_id] = {
                "lastModified": row.last_modified, "downloads": row.downloads, "likes": row.likes,
                "trendingScore": row.trending_score,
            }
    return out


#: Parameter-count buckets of the search page's facet: (label, num_parameters filter, low, high).
PARAM_BUCKETS: tuple[tuple[str, str, int | None, int | None], ...] = (
    ("< 100M", "max:100M", None, 100_000_000),
    ("100M – 1B", "min:100M,max:1B", 100_000_000, 1_000_000_000),
    ("1B – 10B", "min:1B,max:10B", 1_000_000_000, 10_000_000_000),
    ("10B – 100B", "min:10B,max:100B", 10_000_000_000, 100_000_000_000),
    ("> 100B", "min:100B", 100_000_000_000, None),
)


@dataclass(frozen=True)
class Facets:
    """How many of a search's matches carry each tag, library and parameter bucket."""

    tags: dict[str, int]
    libraries: dict[str, int]
    params: dict[str, int]  # bucket label -> count


def facet_counts(db: Database, conn: Connection, q: SearchQuery, top: int = 400) -> Facets:
    """Counts over every match of ``q`` (its sort and cursor aside): the ``top`` tags, libraries,
    and the parameter buckets. Three grouped scans of the matches."""
    conds = _conditions(db, conn, q)
    matches = select(repos.c.id).where(*conds).subquery()
    tag_rows = conn.execute(
        select(repo_tags.c.tag, func.count().label("n"))
        .where(repo_tags.c.repo_id.in_(select(matches.c.id)))
        .group_by(repo_tags.c.tag).order_by(func.count().desc(), repo_tags.c.tag).limit(top)
    )
    lib_rows = conn.execute(
        select(repos.c.library_name, func.count()).where(*conds, repos.c.library_name.is_not(None))
        .group_by(repos.c.library_name)
    )
    buckets: list[Any] = []
    for _label, _filter, low, high in PARAM_BUCKETS:
        cond = and_(
            repos.c.num_parameters >= low if low is not None else repos.c.num_parameters.is_not(None),
            repos.c.num_parameters <= high if high is not None else repos.c.num_parameters.is_not(None),
        )
        buckets.append(func.sum(case((cond, 1), else_=0)).label(f"b{len(buckets)}"))
    row = conn.execute(select(*buckets).where(*conds)).first()
    params = {label: int((row[i] if row is not None else 0) or 0) for i, (label, *_rest) in enumerate(PARAM_BUCKETS)}
    return Facets({r.tag: int(r.n) for r in tag_rows}, {r[0]: int(r[1]) for r in lib_rows}, params)


def tag_counts(conn: Connection, repo_type: str) -> dict[str, int]:
    rows = conn.execute(
        select(repo_tags.c.tag, func.count())
        .select_from(repo_tags.join(repos, repos.c.id == repo_tags.c.repo_id))
        .where(repos.c.type == repo_type, repos.c.private.is_(False))
        .group_by(repo_tags.c.tag)
    )
    return {r[0]: int(r[1]) for r in rows}


def parse_cursor_value(sort: str, raw: Any) -> Any:
    if sort in ("lastModified", "createdAt"):
        return datetime.fromisoformat(str(raw))
    if sort == "trendingScore":
        return float(raw)
    return int(raw)
