"""Route modules, one per API area."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.http.app import Router


def register(router: Router) -> None:
    from modelyard.http.routes import commits, files, lfs, misc, repos

    for module in (misc, repos, files, commits, lfs):
        module.register(router)
