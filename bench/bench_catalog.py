"""Catalog search latency on a generated 100,000-repo catalog (SQLite and PostgreSQL).

The generator writes what the indexer would write for each repo (catalog columns, tags, the
full-text entry) with realistic distributions: Zipf-like licenses, tasks, libraries and
languages; log-uniform parameter counts from 1M to 70B; card text of ~150 words drawn from a
5,000-word vocabulary. Then `list_models` with search + two filters + sort, first page of 50,
is timed over loopback against a live server (one HTTP request at a time).

Usage: python -m bench.bench_catalog [--repos 100000] [--requests 300] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
from sqlalchemy import insert, select, update
from tests.support.server import SEED, TOKENS, LiveServer, postgres_database

from modelyard.catalog import groups as groups_q
from modelyard.catalog import search as search_q
from modelyard.catalog.database import Database
from modelyard.catalog.tables import accounts, repo_tags, repos

LICENSES = ["apache-2.0", "mit", "cc-by-4.0", "other", "llama3", "gemma", "cc-by-nc-4.0", "bsd-3-clause"]
TASKS = ["text-generation", "text-classification", "sentence-similarity", "feature-extraction",
         "token-classification", "fill-mask", "translation", "summarization", "image-classification",
         "automatic-speech-recognition"]
LIBRARIES = ["transformers", "sentence-transformers", "gguf", "peft", "diffusers", "timm", "onnx"]
LANGUAGES = ["en", "fr", "de", "es", "zh", "ja", "ru", "ar", "hi", "pt"]


def zipf_choice(rng: random.Random, items: list[str]) -> str:
    weights = [1 / (i + 1) for i in range(len(items))]
    return rng.choices(items, weights)[0]


def generate(database_url: str, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    db = Database(database_url)
    try:
        with db.write() as conn:
            owner = conn.execute(select(accounts.c.id).where(accounts.c.name_lower == "acme")).scalar_one()
        if db.is_sqlite:
            _insert_rows(db, rng, owner, n)
        else:
            _copy_rows(db, rng, owner, n)
    finally:
        db.dispose()


VOCABULARY = [f"w{i}" for i in range(5000)] + ["model", "fine-tuned", "embedding", "chat", "bert", "llama",
                                                  "mistral", "quantized", "sentence", "vision"]
BATCH = 2000


def _repo(rng: random.Random, i: int, owner: int, seq: int, base: datetime) -> tuple[dict[str, Any], str, str]:
    """One generated repo: its row, the name text and the card text the indexer is given."""
    lic, task, lib = zipf_choice(rng, LICENSES), zipf_choice(rng, TASKS), zipf_choice(rng, LIBRARIES)
    langs = {zipf_choice(rng, LANGUAGES) for _ in range(rng.randint(1, 3))}
    params = int(10 ** rng.uniform(6, math.log10(70e9)))
    name = f"{rng.choice(VOCABULARY)}-{task.split('-')[0]}-{i}"
    tags = [lib, task, f"license:{lic}", *sorted(langs)]
    when = base + timedelta(seconds=rng.randint(0, 365 * 86400))
    row = {
        "uid": uuid.uuid4().hex, "type": "model", "namespace": "acme", "name": name, "key": f"acme/{name}".lower(),
        "owner_id": owner, "private": rng.random() < 0.05, "created_at": when,
        "last_modified": when + timedelta(days=rng.randint(0, 30)), "used_storage": params * 2,
        "downloads": int(rng.paretovariate(1.2) * 10), "downloads_all_time": 0,
        "likes": int(rng.paretovariate(1.5)), "trending_score": rng.random() * 100,
        "tags": json.dumps(tags), "library_name": lib, "pipeline_tag": task, "num_parameters": params,
        "created_seq": seq, "change_seq": seq,
    }
    words = " ".join(rng.choice(VOCABULARY) for _ in range(150))
    return row, f"acme {name} acme/{name}", f"# {name}\n{words} {' '.join(tags)}"


def _start() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(days=365)


def _insert_rows(db: Database, rng: random.Random, owner: int, n: int) -> None:
    """Through the hub's own statements (``set_search_text``), a batch per transaction."""
    base = _start()
    for start in range(0, n, BATCH):
        with db.write() as conn:
            seq = search_q.next_seq(conn)
            made = [_repo(rng, i, owner, seq, base) for i in range(start, min(start + BATCH, n))]
            rows = [m[0] for m in made]
            conn.execute(insert(repos), rows)
            ids = dict(conn.execute(
                select(repos.c.key, repos.c.id).where(repos.c.key.in_([r["key"] for r in rows]))
            ).all())
            tag_rows = []
            for row, name, body in made:
                tags = json.loads(row["tags"])
                tag_rows += [{"repo_id": ids[row["key"]], "tag": t} for t in set(tags)]
                search_q.set_search_text(db, conn, ids[row["key"]], name, body, tags)
            conn.execute(insert(repo_tags), tag_rows)


#: PostgreSQL: the same rows written with COPY, the secondary indexes dropped during the load and
#: built again after it (a million rows one statement each took hours here); the search vector is
#: written as ``set_search_text`` computes it, which ``_check_vectors`` confirms on a sample.
COPY_COLUMNS = ["id", "uid", "type", "namespace", "name", "key", "owner_id", "private", "created_at",
                "last_modified", "used_storage", "downloads", "downloads_all_time", "likes", "trending_score",
                "tags", "library_name", "pipeline_tag", "num_parameters", "created_seq", "change_seq",
                "search_vector"]


def _tsvector(name: str, body: str, tags: list[str], words: set[str]) -> str:
    """``set_search_text``'s vector in tsvector's text form (lexemes carry no positions, so its
    weights do not show: the vector is the set of name, body and tag lexemes); its words are
    added to ``words`` (what it writes to search_lexemes)."""
    lexemes = set(search_q.search_tokens([name])) | set(search_q.search_tokens([body[:200_000]]))
    words |= lexemes
    lexemes |= {search_q.TAG_LEXEME + t for t in tags}
    return " ".join("'" + x.replace("\\", "\\\\").replace("'", "''") + "'" for x in sorted(lexemes))


def _copy_rows(db: Database, rng: random.Random, owner: int, n: int) -> None:
    base = _start()
    samples: list[tuple[int, str, str, list[str]]] = []
    words: set[str] = set()
    with db.write() as conn:
        dropped = [r.indexdef for r in conn.exec_driver_sql(
            "SELECT indexdef, indexname FROM pg_indexes WHERE tablename IN ('repos', 'repo_tags') AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )]
        names = [d.split(" INDEX ", 1)[1].split(" ON ", 1)[0] for d in dropped]
        for name in names:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        first = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM repos").scalar_one())
    raw = db.engine.raw_connection()
    try:
        pg = cast(psycopg.Connection[Any], raw.driver_connection)
        cur = pg.cursor()
        for start in range(0, n, 10 * BATCH):
            counted = pg.execute("UPDATE catalog_counter SET value = value + 1 WHERE id = 1 RETURNING value").fetchone()
            assert counted is not None
            seq = int(counted[0])
            made = [_repo(rng, i, owner, seq, base) for i in range(start, min(start + 10 * BATCH, n))]
            if start == 0:
                samples = [(first + k, m[1], m[2], json.loads(m[0]["tags"])) for k, m in enumerate(made[:20])]
            with cur.copy(f"COPY repos ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for k, (row, name, body) in enumerate(made):
                    row["id"] = first + start + k
                    row["search_vector"] = _tsvector(name, body, json.loads(row["tags"]), words)
                    copy.write_row([row[c] for c in COPY_COLUMNS])
            with cur.copy("COPY repo_tags (repo_id, tag) FROM STDIN") as copy:
                for row, _name, _body in made:
                    for tag in set(json.loads(row["tags"])):
                        copy.write_row([row["id"], tag])
            pg.commit()
        cur.execute("SELECT setval(pg_get_serial_sequence('repos', 'id'), (SELECT max(id) FROM repos))")
        cur.execute("CREATE TEMPORARY TABLE new_lexemes (lexeme text)")
        with cur.copy("COPY new_lexemes (lexeme) FROM STDIN") as copy:
            for word in sorted(words):
                copy.write_row([word])
        cur.execute("INSERT INTO search_lexemes SELECT lexeme FROM new_lexemes ON CONFLICT DO NOTHING")
        pg.commit()
    finally:
        raw.close()
    with db.write() as conn:
        for definition in dropped:
            conn.exec_driver_sql(definition)
        conn.exec_driver_sql("ANALYZE")
    _check_vectors(db, samples)


def _check_vectors(db: Database, samples: list[tuple[int, str, str, list[str]]]) -> None:
    """The copied vectors equal what the hub's indexer writes for the same text: a sample is
    indexed again by ``set_search_text`` and compared."""
    query = "SELECT search_vector::text FROM repos WHERE id = %(id)s"
    with db.write() as conn:
        for repo_id, name, body, tags in samples:
            copied = conn.exec_driver_sql(query, {"id": repo_id}).scalar_one()
            search_q.set_search_text(db, conn, repo_id, name, body, tags)
            indexed = conn.exec_driver_sql(query, {"id": repo_id}).scalar_one()
            if copied != indexed:
                raise AssertionError(f"generated vector differs from the indexer's for repo {repo_id}")
        missing = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT DISTINCT unnest(tsvector_to_array(search_vector)) AS w FROM repos "
            "WHERE id IN (SELECT id FROM repos ORDER BY id DESC LIMIT 1000)) v WHERE w NOT LIKE 't|%%' AND "
            "NOT EXISTS (SELECT 1 FROM search_lexemes WHERE lexeme = w)"
        ).scalar_one()
        if missing:
            raise AssertionError(f"{missing} generated words are missing from search_lexemes")


QUERIES = [
    "search=model&filter=license:apache-2.0&filter=en&sort=downloads&limit=50",
    "search=llama&filter=transformers&filter=license:mit&sort=lastModified&limit=50",
    "search=embedding&filter=sentence-similarity&filter=en&sort=likes&limit=50",
    "search=w42&filter=license:apache-2.0&filter=fr&sort=createdAt&limit=50",
    "search=chat&filter=text-generation&filter=license:llama3&sort=trendingScore&limit=50",
]


#: Resource groups made in ``acme`` after generating: two thirds of the private repos go in one of
#: them, and ``carol`` (an ``acme`` reader) is in two. Her searches then filter by "public, or
#: ungrouped in acme, or in my groups" (``catalog/visibility.py``): the member case.
GROUPS = 20
MEMBER_GROUPS = 2


def make_groups(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn:
            acme = conn.execute(select(accounts.c.id).where(accounts.c.name_lower == "acme")).scalar_one()
            carol = conn.execute(select(accounts.c.id).where(accounts.c.name_lower == "carol")).scalar_one()
            now = datetime.now(UTC).replace(tzinfo=None)
            ids = [groups_q.create(conn, acme, f"team-{k}", "", now).id for k in range(GROUPS)]
            for gid in ids[:MEMBER_GROUPS]:
                groups_q.set_role(conn, gid, carol, "read")
            conn.execute(
                update(repos).where(repos.c.private.is_(True), repos.c.id % 3 != 0)
                .values(resource_group_id=ids[0] + repos.c.id % GROUPS)
            )
            conn.exec_driver_sql("ANALYZE")
    finally:
        db.dispose()


def measure(url: str, requests: int, token: str | None = None) -> dict[str, Any]:
    latencies = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=30, headers=headers) as client:
        for q in QUERIES:  # warm-up
            client.get(f"{url}/api/models?{q}").raise_for_status()
        for i in range(requests):
            q = QUERIES[i % len(QUERIES)]
            t0 = time.perf_counter()
            r = client.get(f"{url}/api/models?{q}")
            latencies.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    latencies.sort()
    return {
        "requests": requests,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "max_ms": round(latencies[-1], 2),
    }


def run_backend(backend: str, n: int, requests: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-catalog-"))
    if backend == "postgresql":
        ctx = postgres_database()
        url = ctx.__enter__()
    else:
        ctx, url = None, None
    try:
        live = LiveServer(data_dir, url, backend)
        live.cli("db", "upgrade")
        live.seed(SEED)
        t0 = time.perf_counter()
        generate(url or f"sqlite:///{data_dir / 'modelyard.db'}", n)
        make_groups(url or f"sqlite:///{data_dir / 'modelyard.db'}")
        generated = time.perf_counter() - t0
        live.start()
        try:
            result = measure(live.url, requests)
            member = measure(live.url, requests, TOKENS["carol"])
        finally:
            live.stop()
        result.update({f"member_{k}": v for k, v in member.items() if k.endswith("_ms")})
        result.update({"backend": backend, "repos": n, "generate_s": round(generated, 1)})
        return result
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="100 requests per backend")
    args = parser.parse_args()
    requests = 100 if args.quick else args.requests
    results = [run_backend(b, args.repos, requests) for b in ("sqlite", "postgresql")]
    for r in results:
        ok = r["p50_ms"] < 20 and r["p99_ms"] < 100
        print(f"{r['backend']:>10}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms "
              f"({'meets' if ok else 'MISSES'} p50<20 ms, p99<100 ms)", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"bench": "catalog", "results": results}, indent=2))


def _ok(r: dict[str, Any]) -> bool:
    member = r.get("member_p50_ms", 0) < 20 and r.get("member_p99_ms", 0) < 100
    return bool(r["p50_ms"] < 20 and r["p99_ms"] < 100 and member)


def met(result: dict[str, Any]) -> bool:
    return all(_ok(r) for r in result["results"])


def headline(result: dict[str, Any]) -> str:
    return "; ".join(f"{r['backend']}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
                     + (f" (org member in resource groups: p50 {r['member_p50_ms']} ms, p99 {r['member_p99_ms']} ms)"
                        if "member_p50_ms" in r else "")
                     for r in result["results"])


def markdown(result: dict[str, Any]) -> str:
    lines = ["| backend | repos | requests | caller | p50 ms | p99 ms | max ms | target p50 < 20 ms, p99 < 100 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        verdict = "met" if _ok(r) else "**not met**"
        lines.append(f"| {r['backend']} | {r['repos']:,} | {r['requests']} | anonymous | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['max_ms']} | {verdict} |")
        if "member_p50_ms" in r:
            lines.append(f"| {r['backend']} | {r['repos']:,} | {r['requests']} | org member in {MEMBER_GROUPS} of "
                         f"{GROUPS} resource groups | {r['member_p50_ms']} | {r['member_p99_ms']} | "
                         f"{r['member_max_ms']} | {verdict} |")
    lines += ["", "Queries (cycled): " + "; ".join(f"`{q}`" for q in QUERIES)]
    return "\n".join(lines)


NOTES = """\
**How.** SQLite: the full-text matches (FTS5) drive the query by primary key, tag filters are
primary-key probes, and only the matches are sorted. PostgreSQL: words and tags go into one
tsvector (tags as literal lexemes), so a search with tag filters is one GIN lookup, materialised
before the sort. Searching words shorter than 4 letters match whole words only.

**At a million repos (PostgreSQL).** A search word of 4 letters or more is a prefix. GIN's own
prefix match (``'llama':*``) gathers every posting of every word with that prefix before it can
intersect them with the other terms: 36 ms for ``llama`` at a million repos, against 6 ms for the
exact word. So a prefix is looked up in ``search_lexemes`` (every word of every vector, kept in
the same transaction as the vector) and searched as the words it stands for when they are few
(``('llama' | 'llama3')``). The page's ids are then picked from the matches' own sort and filter
columns, so each matching row is visited once. On 2026-12-04 the first 1M run gave p50 38.1 ms
and p99 99.5 ms; these two changes brought the slowest query from 61 to 21 ms (median of 20).
PostgreSQL catalogs are generated with COPY (secondary indexes dropped during the load and built
after it); a sample of the generated vectors is indexed again by the hub's ``set_search_text``
and compared, and the words are checked to be in ``search_lexemes``.

**Members of resource groups.** The same queries are also timed as ``carol``, a reader of ``acme``
in 2 of its 20 resource groups, which hold two thirds of its private repos: her searches filter
by "public, or ungrouped in acme, or in my groups" (``catalog/visibility.py``). The first run of
this case (2026-12-04) took 1.5 to 11 s a search on PostgreSQL at 100,000 repos: the statement's
materialised matches lacked ``resource_group_id``, so the condition stayed a reference to
``repos``, correlated with the outer row (fixed; ``unit/test_search_statements.py``).

**This machine (2026-12-04 19:05).** The million-repo run misses its p50 target here (23.8 ms).
Not the change: the code from before resource groups (3f376b6), run side by side on the same
machine, measured p50 29.4 ms and p99 44.4 ms at a million repos, and 11.2 ms at 100,000 repos
against 11.2 ms for this code (the 13:18 run, on another machine, measured 6.9 ms). The member
case costs about 3 ms more than the anonymous one at both sizes."""


if __name__ == "__main__":
    main()
