"""Collections and their items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, or_, select, update

from modelyard.catalog.tables import accounts, collection_items, collections


@dataclass(frozen=True)
class Collection:
    id: int
    oid: str
    owner_id: int
    owner_name: str
    owner_fullname: str
    owner_kind: str
    title: str
    title_key: str
    description: str | None
    private: bool
    theme: str
    position: int
    upvotes: int
    updated_at: datetime


@dataclass(frozen=True)
class Item:
    id: int
    oid: str
    collection_id: int
    item_type: str
    repo_id: int | None
    target_id: int | None
    position: int
    note: str | None


_SELECT = select(
    collections, accounts.c.name.label("owner_name"), accounts.c.fullname.label("owner_fullname"),
    accounts.c.kind.label("owner_kind"),
).join(accounts, accounts.c.id == collections.c.owner_id)


def _collection(row: Any) -> Collection:
    return Collection(
        id=row.id, oid=row.oid, owner_id=row.owner_id, owner_name=row.owner_name,
        owner_fullname=row.owner_fullname, owner_kind=row.owner_kind, title=row.title, title_key=row.title_key,
        description=row.description, private=bool(row.private), theme=row.theme, position=row.position,
        upvotes=row.upvotes, updated_at=row.updated_at,
    )


def _item(row: Any) -> Item:
    return Item(row.id, row.oid, row.collection_id, row.item_type, row.repo_id, row.target_id, row.position,
                row.note)


def by_oid(conn: Connection, oid: str) -> Collection | None:
    row = conn.execute(_SELECT.where(collections.c.oid == oid)).first()
    return None if row is None else _collection(row)


def by_ids(conn: Connection, ids: list[int]) -> dict[int, Collection]:
    if not ids:
        return {}
    return {r.id: _collection(r) for r in conn.execute(_SELECT.where(collections.c.id.in_(set(ids))))}


def by_title_key(conn: Connection, owner_id: int, title_key: str) -> Collection | None:
    row = conn.execute(
        _SELECT.where(collections.c.owner_id == owner_id, collections.c.title_key == title_key)
    ).first()
    return None if row is None else _collection(row)


def create(conn: Connection, *, oid: str, owner_id: int, title: str, title_key: str, description: str | None,
           private: bool, theme: str, now: datetime) -> None:
    """A new collection, last in its owner's list."""
    position = conn.execute(
        select(func.count()).select_from(collections).where(collections.c.owner_id == owner_id)
    ).scalar_one()
    conn.execute(insert(collections).values(
        oid=oid, owner_id=owner_id, title=title, title_key=title_key, description=description, private=private,
        theme=theme, position=int(position), upvotes=0, created_at=now, updated_at=now,
    ))


def update_collection(conn: Connection, collection_id: int, **values: Any) -> None:
    conn.execute(update(collections).where(collections.c.id == collection_id).values(**values))


def delete_collection(conn: Connection, collection: Collection) -> None:
    conn.execute(delete(collections).where(collections.c.id == collection.id))
    _renumber(conn, _owner_rows(conn, collection.owner_id), collections)


def _owner_rows(conn: Connection, owner_id: int) -> list[int]:
    return list(conn.execute(
        select(collections.c.id).where(collections.c.owner_id == owner_id)
        .order_by(collections.c.position, collections.c.id)
    ).scalars())


def _item_rows(conn: Connection, collection_id: int) -> list[int]:
    return list(conn.execute(
        select(collection_items.c.id).where(collection_items.c.collection_id == collection_id)
        .order_by(collection_items.c.position, collection_items.c.id)
    ).scalars())


def _renumber(conn: Connection, ids: list[int], table: Any) -> None:
    """Positions 0..n-1 in the given order (only the rows whose position changes are written)."""
    rows = conn.execute(select(table.c.id, table.c.position).where(table.c.id.in_(ids)))
    current: dict[int, int] = {r.id: r.position for r in rows}
    for position, row_id in enumerate(ids):
        if current.get(row_id) != position:
            conn.execute(update(table).where(table.c.id == row_id).values(position=position))


def _moved(ids: list[int], row_id: int, position: int) -> list[int]:
    rest = [i for i in ids if i != row_id]
    position = max(0, min(position, len(rest)))
    return rest[:position] + [row_id] + rest[position:]


def move_collection(conn: Connection, collection: Collection, position: int) -> None:
    """Place a collection at ``position`` in its owner's list; the others keep their order."""
    _renumber(conn, _moved(_owner_rows(conn, collection.owner_id), collection.id, position), collections)


def items(conn: Connection, collection_ids: list[int]) -> dict[int, list[Item]]:
    """The items of several collections at once, each list in position order."""
    out: dict[int, list[Item]] = {cid: [] for cid in collection_ids}
    if not collection_ids:
        return out
    rows = conn.execute(
        select(collection_items).where(collection_items.c.collection_id.in_(collection_ids))
        .order_by(collection_items.c.collection_id, collection_items.c.position, collection_items.c.id)
    )
    for row in rows:
        out[row.collection_id].append(_item(row))
    return out


def item_by_oid(conn: Connection, collection_id: int, oid: str) -> Item | None:
    row = conn.execute(
        select(collection_items).where(collection_items.c.collection_id == collection_id,
                                       collection_items.c.oid == oid)
    ).first()
    return None if row is None else _item(row)


def has_item(conn: Connection, collection_id: int, item_key: str) -> bool:
    return conn.execute(
        select(collection_items.c.id).where(collection_items.c.collection_id == collection_id,
                                            collection_items.c.item_key == item_key)
    ).first() is not None


def add_item(conn: Connection, *, oid: str, collection_id: int, item_type: str, repo_id: int | None,
             target_id: int | None, item_key: str, note: str | None, now: datetime) -> None:
    """A new item, last in its collection."""
    position = conn.execute(
        select(func.count()).select_from(collection_items).where(collection_items.c.collection_id == collection_id)
    ).scalar_one()
    conn.execute(insert(collection_items).values(
        oid=oid, collection_id=collection_id, item_type=item_type, repo_id=repo_id, target_id=target_id,
        item_key=item_key, position=int(position), note=note, created_at=now,
    ))


def update_item(conn: Connection, item: Item, note: str | None, position: int | None) -> None:
    if note is not None:
        conn.execute(update(collection_items).where(collection_items.c.id == item.id).values(note=note or None))
    if position is not None:
        ids = _moved(_item_rows(conn, item.collection_id), item.id, position)
        _renumber(conn, ids, collection_items)


def delete_item(conn: Connection, item: Item) -> None:
    conn.execute(delete(collection_items).where(collection_items.c.id == item.id))
    _renumber(conn, _item_rows(conn, item.collection_id), collection_items)


def touch(conn: Connection, collection_id: int, now: datetime) -> None:
    update_collection(conn, collection_id, updated_at=now)


def listing(owner_ids: list[int] | None, item_keys: list[str] | None, visible: frozenset[int] | None,
            sort: str) -> Select[Any]:
    """The collections a caller may see (public ones, and private ones of ``visible`` owners;
    None: all), filtered by owners and by items they hold (any of), in ``sort`` order."""
    stmt = _SELECT
    if visible is not None:
        stmt = stmt.where(or_(collections.c.private.is_(False), collections.c.owner_id.in_(visible)))
    if owner_ids is not None:
        stmt = stmt.where(collections.c.owner_id.in_(owner_ids))
    if item_keys is not None:
        holding = select(collection_items.c.collection_id).where(collection_items.c.item_key.in_(item_keys))
        stmt = stmt.where(collections.c.id.in_(holding))
    if sort in ("upvotes", "trending"):  # no upvote history here: trending is the most upvoted, freshest first
        order = [collections.c.upvotes.desc(), collections.c.updated_at.desc()]
    else:
        order = [collections.c.updated_at.desc()]
    return stmt.order_by(*order, collections.c.id.desc())


def list_page(conn: Connection, stmt: Select[Any], offset: int, size: int) -> tuple[list[Collection], bool]:
    """One page of ``listing``; True if there is more after it."""
    rows = conn.execute(stmt.offset(offset).limit(size + 1)).all()
    return [_collection(r) for r in rows[:size]], len(rows) > size
