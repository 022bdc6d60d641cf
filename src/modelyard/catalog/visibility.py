"""Which private repos a caller may see, as SQL: what listings, counts and deduplication filter
by, so that they match ``services.auth.can_read`` repo by repo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, true

from modelyard.catalog.tables import repos


@dataclass(frozen=True)
class Visibility:
    """Public repos are visible to everyone; private ones as these sets say. Built by
    ``services.auth.visibility``."""

    #: owners all of whose private repos are visible (the caller, orgs the caller administers)
    owners: frozenset[int] = frozenset()
    #: owners whose private repos outside resource groups are visible (the caller's other orgs)
    ungrouped: frozenset[int] = frozenset()
    #: resource groups whose private repos are visible (the caller's groups)
    groups: frozenset[int] = frozenset()
    everything: bool = False  # a site admin

    def repos(self, table: Any = repos) -> ColumnElement[bool]:
        """The condition on ``table`` (``repos`` or an alias of it) a visible repo meets."""
        if self.everything:
            return true()
        conds: list[ColumnElement[bool]] = [table.c.private.is_(False)]
        if self.owners:
            conds.append(table.c.owner_id.in_(sorted(self.owners)))
        if self.ungrouped:
            conds.append(and_(table.c.owner_id.in_(sorted(self.ungrouped)), table.c.resource_group_id.is_(None)))
        if self.groups:
            conds.append(table.c.resource_group_id.in_(sorted(self.groups)))
        return or_(*conds)

    @property
    def member_of(self) -> frozenset[int] | None:
        """Owners whose private things other than repos (collections) are visible; None: all."""
        return None if self.everything else self.owners | self.ungrouped


EVERYTHING = Visibility(everything=True)
PUBLIC = Visibility()
