"""Route modules, one per API area."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.http.app import Router


def register(router: Router) -> None:
    from modelyard.http.routes import (
        collections,
        commits,
        discovery,
        files,
        lfs,
        lfs_files,
        misc,
        people,
        repos,
        spaces,
        xet,
    )

    for module in (misc, discovery, repos, files, commits, lfs, lfs_files, xet, spaces, collections, people):
        module.register(router)
