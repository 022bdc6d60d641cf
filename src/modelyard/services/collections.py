"""Collections: curated, ordered lists of repos (and other collections) kept by a user or an org.

Who may do what: a public collection is readable by everyone, a private one only by its owner
(the user, or any member of the owning org) and site admins; anyone else is answered exactly
like a missing collection (404). Changing a collection needs a write token and the write or
admin role in the owning namespace (for a user: being that user). Items are checked against
the caller too: a repo or collection the caller cannot read cannot be added (404, as if it did
not exist), and an item the reader cannot see is left out of what they are shown.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import collections as collections_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog.collections import Collection, Item
from modelyard.catalog.repos import Repo
from modelyard.errors import ConflictError, InvalidInputError, NotFoundError, RepoNotFoundError
from modelyard.ids import HOSTED_REPO_TYPES, PLURALS
from modelyard.services.auth import (
    READ,
    REPO_NOT_FOUND,
    WRITE,
    Principal,
    can_read,
    check_namespace_write,
    global_allows,
    require_writer,
    visibility,
)
from modelyard.services.hub import Hub, utcnow

#: The Hub's collection themes.
THEMES = ("orange", "blue", "green", "purple", "pink", "indigo")
DEFAULT_THEME = "orange"
MAX_TITLE = 100
MAX_DESCRIPTION = 150  # the limits the client's docstrings give
MAX_NOTE = 500
#: Items shown per collection in listings (the client's docstring: "truncated to 4 items").
LISTED_ITEMS = 4
SORTS = ("lastModified", "trending", "upvotes")
_OID = re.compile(r"\A[0-9a-f]{24}\Z")


class CollectionNotFoundError(NotFoundError):
    """No such collection, or a private one the caller may not see."""


class CollectionExistsError(ConflictError):
    """The namespace has a collection of that title already; ``slug`` names it (the client
    reads it from the 409 body to fetch the collection with ``exists_ok``)."""

    def __init__(self, message: str, slug: str) -> None:
        super().__init__(message)
        self.slug = slug


class ItemExistsError(ConflictError):
    """The item is in the collection already."""


class ItemNotFoundError(NotFoundError):
    """No item with that ``_id`` in the collection."""


@dataclass(frozen=True)
class ItemView:
    """An item with what it points at (exactly one of ``repo`` and ``target``)."""

    item: Item
    repo: Repo | None
    target: Collection | None


@dataclass(frozen=True)
class CollectionView:
    collection: Collection
    items: list[ItemView]

    @property
    def slug(self) -> str:
        return slug_of(self.collection)


def slug_of(collection: Collection) -> str:
    """``owner/title-slug-<oid>``, as the Hub spells them: only the oid is used to find it."""
    return f"{collection.owner_name}/{collection.title_key}-{collection.oid}"


def title_key(title: str) -> str:
    """The title as it appears in the slug: lowercase letters and digits joined by ``-``."""
    key = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return key[:80].strip("-") or "collection"


def _oid_of(slug: str) -> tuple[str, str]:
    namespace, sep, rest = slug.partition("/")
    oid = rest.rsplit("-", 1)[-1]
    if not sep or not namespace or not _OID.match(oid):
        raise CollectionNotFoundError(f"Collection {slug!r} not found")
    return namespace, oid


def can_read_collection(principal: Principal | None, collection: Collection) -> bool:
    if not collection.private:
        return True
    if principal is None or not global_allows(principal, READ):
        return False  # a fine-grained token sees only public collections, unless it reads everything
    return principal.is_admin or principal.org_role(collection.owner_id) is not None


def _find(conn: Connection, principal: Principal | None, slug: str) -> Collection:
    namespace, oid = _oid_of(slug)
    found = collections_q.by_oid(conn, oid)
    if found is None or found.owner_name.lower() != namespace.lower() or not can_read_collection(principal, found):
        raise CollectionNotFoundError(f"Collection {slug!r} not found")
    return found


def _find_writable(conn: Connection, principal: Principal | None, slug: str) -> Collection:
    found = _find(conn, principal, slug)
    check_namespace_write(principal, found.owner_id, found.owner_name)
    return found


def authorize_write(hub: Hub, principal: Principal | None, slug: str) -> None:
    """Refuse a change to a collection from the URL and the token alone, before the body is read."""
    with hub.db.read() as conn:
        _find_writable(conn, principal, slug)


def authorize_create(hub: Hub, principal: Principal | None) -> None:
    """A new collection needs a write token (the namespace is checked with the body)."""
    require_writer(hub, principal, WRITE)


def set_resource_group(hub: Hub, principal: Principal | None, slug: str, body: dict[str, Any]) -> None:
    """Collections are not put in resource groups here (repos are: services/groups.py): taking
    a collection out of every group (``null``) is done already; naming one is refused."""
    with hub.db.read() as conn:
        _find_writable(conn, principal, slug)
    if body.get("resourceGroupId") is not None:
        raise InvalidInputError("Collections are not put in resource groups on this hub (repos are)")


def _views(conn: Connection, principal: Principal | None, found: list[Collection],
           limit: int | None = None) -> list[CollectionView]:
    """Collections with the items the caller may see, in three statements whatever their number."""
    by_collection = collections_q.items(conn, [c.id for c in found])
    every = [i for items in by_collection.values() for i in items]
    repos = repos_q.by_ids(conn, [i.repo_id for i in every if i.repo_id is not None])
    targets = collections_q.by_ids(conn, [i.target_id for i in every if i.target_id is not None])
    out = []
    for collection in found:
        shown: list[ItemView] = []
        for item in by_collection[collection.id]:
            repo = repos.get(item.repo_id) if item.repo_id is not None else None
            target = targets.get(item.target_id) if item.target_id is not None else None
            if (repo is not None and can_read(principal, repo)) or (
                target is not None and can_read_collection(principal, target)
            ):
                shown.append(ItemView(item, repo, target))
        out.append(CollectionView(collection, shown[:limit] if limit is not None else shown))
    return out


def get_collection(hub: Hub, principal: Principal | None, slug: str) -> CollectionView:
    """A collection with all the items the caller may see."""
    with hub.db.read() as conn:
        return _views(conn, principal, [_find(conn, principal, slug)])[0]


def _item_keys(conn: Connection, principal: Principal | None, wanted: list[str]) -> list[str]:
    """``models/ns/name``-style filters -> item keys; ones that name nothing the caller can see
    match nothing (a private repo's presence in collections must not show)."""
    keys = []
    for value in wanted:
        kind, sep, rest = value.partition("/")
        if not sep or kind not in (*PLURALS, "papers", "collections"):
            raise InvalidInputError(f"Invalid item {value!r}: expected e.g. 'models/namespace/name'")
        if kind in PLURALS and rest.count("/") == 1:
            namespace, name = rest.split("/")
            repo = repos_q.get(conn, PLURALS[kind], namespace, name)
            if repo is not None and can_read(principal, repo):
                keys.append(f"repo:{repo.id}")
        elif kind == "collections":
            with contextlib.suppress(CollectionNotFoundError):
                keys.append(f"collection:{_find(conn, principal, rest).id}")
    return keys


def list_collections(
    hub: Hub, principal: Principal | None, owners: list[str], items: list[str], sort: str | None,
    offset: int, size: int,
) -> tuple[list[CollectionView], bool]:
    """A page of the collections the caller may see (each with its first items), and whether
    more follow."""
    if sort is not None and sort not in SORTS:
        raise InvalidInputError(f"Invalid sort {sort!r}: expected one of {', '.join(SORTS)}")
    with hub.db.read() as conn:
        owner_ids: list[int] | None = None
        if owners:
            accounts = [accounts_q.by_name(conn, name) for name in owners]
            owner_ids = [a.id for a in accounts if a is not None]
        item_keys = _item_keys(conn, principal, items) if items else None
        stmt = collections_q.listing(owner_ids, item_keys, visibility(principal).member_of, sort or "lastModified")
        found, more = collections_q.list_page(conn, stmt, offset, size)
        return _views(conn, principal, found, LISTED_ITEMS), more


def _text(body: dict[str, Any], key: str, limit: int, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidInputError(f"'{key}' is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInputError(f"'{key}' must be a non-empty string" if required else f"'{key}' must be a string")
    if len(value) > limit:
        raise InvalidInputError(f"'{key}' may hold at most {limit} characters")
    return value.strip() if required else value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidInputError(f"'{key}' must be true or false")
    return value


def create_collection(hub: Hub, principal: Principal | None, body: dict[str, Any]) -> CollectionView:
    """A new collection in ``namespace`` (the caller's own by default); 409 naming the existing
    collection's slug if the namespace has one of that title already."""
    caller = require_writer(hub, principal, WRITE)
    if body.get("resourceGroupId") is not None:
        raise InvalidInputError("Collections are not put in resource groups on this hub (repos are)")
    title = _text(body, "title", MAX_TITLE, required=True)
    assert title is not None
    description = _text(body, "description", MAX_DESCRIPTION)
    private = bool(_flag(body, "private"))
    namespace = body.get("namespace", caller.name)
    if not isinstance(namespace, str) or not namespace:
        raise InvalidInputError("'namespace' must be a user or organization name")
    key = title_key(title)
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, namespace)
        if owner is None:
            raise NotFoundError(f"No user or organization named {namespace!r}")
        check_namespace_write(caller, owner.id, owner.name)
        existing = collections_q.by_title_key(conn, owner.id, key)
        if existing is not None:
            raise CollectionExistsError(f"A collection titled {title!r} exists already", slug_of(existing))
        oid = secrets.token_hex(12)
        try:
            with conn.begin_nested():
                collections_q.create(conn, oid=oid, owner_id=owner.id, title=title, title_key=key,
                                     description=description or None, private=private, theme=DEFAULT_THEME,
                                     now=utcnow())
        except IntegrityError as exc:  # the same title created meanwhile (PostgreSQL: no write lock)
            raced = collections_q.by_title_key(conn, owner.id, key)
            if raced is None:
                raise
            raise CollectionExistsError(f"A collection titled {title!r} exists already", slug_of(raced)) from exc
        created = collections_q.by_oid(conn, oid)
        assert created is not None
        return CollectionView(created, [])


def update_collection(hub: Hub, principal: Principal | None, slug: str, body: dict[str, Any]) -> CollectionView:
    """Change any of ``title``, ``description``, ``position``, ``private``, ``theme``."""
    unknown = set(body) - {"title", "description", "position", "private", "theme"}
    if unknown:
        raise InvalidInputError(f"Unknown field(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    title = _text(body, "title", MAX_TITLE)
    if title is not None:
        if not title.strip():
            raise InvalidInputError("'title' must not be empty")
        values.update(title=title.strip(), title_key=title_key(title))
    description = _text(body, "description", MAX_DESCRIPTION)
    if description is not None:
        values["description"] = description or None
    private = _flag(body, "private")
    if private is not None:
        values["private"] = private
    theme = body.get("theme")
    if theme is not None:
        if theme not in THEMES:
            raise InvalidInputError(f"Invalid theme {theme!r}: expected one of {', '.join(THEMES)}")
        values["theme"] = theme
    position = _position(body.get("position"))
    with hub.db.write() as conn:
        found = _find_writable(conn, principal, slug)
        key = values.get("title_key")
        if key is not None and key != found.title_key:
            clash = collections_q.by_title_key(conn, found.owner_id, key)
            if clash is not None:
                raise CollectionExistsError(f"A collection titled {title!r} exists already", slug_of(clash))
        collections_q.update_collection(conn, found.id, updated_at=utcnow(), **values)
        if position is not None:
            collections_q.move_collection(conn, found, position)
        updated = collections_q.by_oid(conn, found.oid)
        assert updated is not None
        return _views(conn, principal, [updated])[0]


def _position(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError("'position' must be a non-negative integer")
    return value


def delete_collection(hub: Hub, principal: Principal | None, slug: str) -> None:
    with hub.db.write() as conn:
        collections_q.delete_collection(conn, _find_writable(conn, principal, slug))


def _target(
    conn: Connection, principal: Principal | None, item_type: str, item_id: str
) -> tuple[Repo | None, Collection | None]:
    """What an item would point at, if the caller may read it; else 404 as if it did not exist."""
    if item_type in HOSTED_REPO_TYPES:
        if item_id.count("/") != 1:
            raise RepoNotFoundError(REPO_NOT_FOUND)
        namespace, name = item_id.split("/")
        repo = repos_q.get(conn, item_type, namespace, name)
        if repo is None or not can_read(principal, repo):
            raise RepoNotFoundError(REPO_NOT_FOUND)
        return repo, None
    if item_type == "collection":
        return None, _find(conn, principal, item_id)
    if item_type in ("paper", "bucket"):
        raise InvalidInputError(f"This hub has no {item_type}s: only models, datasets, spaces and collections")
    raise InvalidInputError(f"Invalid item type {item_type!r}: expected model, dataset, space or collection")


def add_item(hub: Hub, principal: Principal | None, slug: str, body: dict[str, Any]) -> CollectionView:
    """Add a repo or a collection at the end of the collection (409 if it is there already)."""
    item = body.get("item")
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("type"), str):
        raise InvalidInputError("'item' must be an object with 'id' and 'type' strings")
    note = _text(body, "note", MAX_NOTE)
    with hub.db.write() as conn:
        found = _find_writable(conn, principal, slug)
        repo, target = _target(conn, principal, item["type"], item["id"])
        if target is not None and target.id == found.id:
            raise InvalidInputError("A collection cannot hold itself")
        key = f"repo:{repo.id}" if repo is not None else f"collection:{target.id}"  # type: ignore[union-attr]
        if collections_q.has_item(conn, found.id, key):
            raise ItemExistsError(f"{item['id']} is in the collection already")
        try:
            with conn.begin_nested():
                collections_q.add_item(
                    conn, oid=secrets.token_hex(12), collection_id=found.id, item_type=item["type"],
                    repo_id=repo.id if repo is not None else None, target_id=target.id if target is not None else None,
                    item_key=key, note=note or None, now=utcnow(),
                )
        except IntegrityError as exc:  # added meanwhile by a concurrent request
            raise ItemExistsError(f"{item['id']} is in the collection already") from exc
        collections_q.touch(conn, found.id, utcnow())
        return _views(conn, principal, [collections_q.by_oid(conn, found.oid) or found])[0]


def update_item(hub: Hub, principal: Principal | None, slug: str, item_oid: str, body: dict[str, Any]) -> None:
    """Change an item's ``note`` (empty: none) or ``position``."""
    unknown = set(body) - {"note", "position"}
    if unknown:
        raise InvalidInputError(f"Unknown field(s): {', '.join(sorted(unknown))}")
    note = _text(body, "note", MAX_NOTE)
    position = _position(body.get("position"))
    with hub.db.write() as conn:
        found = _find_writable(conn, principal, slug)
        item = collections_q.item_by_oid(conn, found.id, item_oid)
        if item is None:
            raise ItemNotFoundError(f"No item {item_oid!r} in collection {slug!r}")
        collections_q.update_item(conn, item, note, position)
        collections_q.touch(conn, found.id, utcnow())


def delete_item(hub: Hub, principal: Principal | None, slug: str, item_oid: str) -> None:
    with hub.db.write() as conn:
        found = _find_writable(conn, principal, slug)
        item = collections_q.item_by_oid(conn, found.id, item_oid)
        if item is None:
            raise ItemNotFoundError(f"No item {item_oid!r} in collection {slug!r}")
        collections_q.delete_item(conn, item)
        collections_q.touch(conn, found.id, utcnow())
