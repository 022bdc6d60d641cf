"""The dataset viewer: the schema, row count and a page of rows of a Parquet, CSV/TSV or JSON
Lines file, read by range (never the whole file).

Parquet: the footer gives the schema and the exact row count; rows are read a record batch at a
time, so a page costs the row groups it touches. CSV and JSON Lines: the first ``WINDOW`` bytes
are read and parsed; a file longer than that shows its rows from that window and says the count
is a lower bound.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidInputError
from modelyard.metadata.reader import RangeFile, Read, read_exact
from modelyard.services.auth import Principal
from modelyard.services.files import FileEntry, list_tree, resolve_file
from modelyard.services.hub import Hub
from modelyard.services.repos import RepoSnapshot
from modelyard.storage.base import BlobStoreError

ROWS = 25
WINDOW = 1024 * 1024
CELL_LIMIT = 300
#: Pages past this many rows are not offered (a viewer, not an export).
MAX_ROW = 100_000
VIEWABLE = (".parquet", ".csv", ".tsv", ".jsonl")


@dataclass
class Table:
    columns: list[tuple[str, str]]  # (name, type)
    rows: list[list[str]]
    row_count: int
    exact: bool  # False: ``row_count`` only counts the rows read so far


@dataclass
class ViewerPage:
    snap: RepoSnapshot
    revision: str
    files: list[str]  # every viewable file of the revision
    path: str | None
    page: int
    table: Table | None
    problem: str | None

    @property
    def pages(self) -> int:
        if self.table is None:
            return 0
        return max(1, -(-min(self.table.row_count, MAX_ROW) // ROWS))


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= CELL_LIMIT else text[:CELL_LIMIT] + "…"


def _parquet(read: Read, size: int, page: int) -> Table:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(RangeFile(read, size))
    schema = parquet.schema_arrow
    columns = [(field.name, str(field.type)) for field in schema]
    start, rows = page * ROWS, []
    seen = 0
    for batch in parquet.iter_batches(batch_size=ROWS * 4):
        if seen + batch.num_rows <= start:
            seen += batch.num_rows
            continue
        for row in batch.slice(max(0, start - seen)).to_pylist():
            rows.append([_cell(row.get(name)) for name, _type in columns])
            if len(rows) == ROWS:
                break
        seen += batch.num_rows
        if len(rows) == ROWS:
            break
    return Table(columns, rows, parquet.metadata.num_rows, True)


def _window(read: Read, size: int) -> tuple[str, bool]:
    """The text of the first ``WINDOW`` bytes, cut at the last whole line; whether that is all."""
    data = read_exact(read, 0, min(size, WINDOW), size)
    whole = size <= WINDOW
    if not whole:
        data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8", "replace"), whole


def _csv(read: Read, size: int, page: int, delimiter: str) -> Table:
    text, whole = _window(read, size)
    records = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not records:
        return Table([], [], 0, whole)
    header, body = records[0], records[1:]
    columns = [(name, "string") for name in header]
    rows = [[_cell(v) for v in r] for r in body[page * ROWS : (page + 1) * ROWS]]
    return Table(columns, rows, len(body), whole)


def _jsonl(read: Read, size: int, page: int) -> Table:
    text, whole = _window(read, size)
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"Line {number} is not JSON: {exc.msg}") from exc
        records.append(value if isinstance(value, dict) else {"value": value})
    names: dict[str, str] = {}
    for record in records:
        for key, value in record.items():
            names.setdefault(key, type(value).__name__ if value is not None else "null")
    columns = list(names.items())
    rows = [[_cell(r.get(name)) if name in r else "" for name, _type in columns]
            for r in records[page * ROWS : (page + 1) * ROWS]]
    return Table(columns, rows, len(records), whole)


def _table(hub: Hub, entry: FileEntry, page: int) -> Table:
    from modelyard.services.indexer import RepoFiles

    read, size = RepoFiles(hub, [entry]).reader(entry.path)
    name = entry.path.lower()
    if name.endswith(".parquet"):
        return _parquet(read, size, page)
    if name.endswith((".csv", ".tsv")):
        return _csv(read, size, page, "\t" if name.endswith(".tsv") else ",")
    return _jsonl(read, size, page)


def viewer_page(
    hub: Hub, principal: Principal | None, repo_id: str, revision: str, path: str | None, page: int
) -> ViewerPage:
    """A page of rows of one of a dataset's files (``path``, else the first viewable one). The
    rows are the file's bytes: a gated dataset's need access, as a download does."""
    if not 0 <= page * ROWS < MAX_ROW:
        raise InvalidInputError(f"p must be a page number between 0 and {MAX_ROW // ROWS - 1}")
    snap, entries = list_tree(hub, principal, "dataset", repo_id, revision, "", recursive=True)
    files = sorted(e.path for e in entries if not e.is_dir and e.path.lower().endswith(VIEWABLE))
    chosen = path or (files[0] if files else None)
    if chosen is None:
        return ViewerPage(snap, revision, files, None, 0, None, None)
    if chosen not in files:
        raise InvalidInputError(f"{chosen} is not a Parquet, CSV, TSV or JSON Lines file of this dataset")
    resolved = resolve_file(hub, principal, "dataset", repo_id, snap.commit.oid, chosen)
    try:
        table = _table(hub, resolved.entry, page)
    except (InvalidInputError, BlobStoreError, ValueError, OSError, csv.Error) as exc:
        return ViewerPage(snap, revision, files, chosen, page, None, f"The file could not be read: {exc}")
    return ViewerPage(snap, revision, files, chosen, page, table, None)
