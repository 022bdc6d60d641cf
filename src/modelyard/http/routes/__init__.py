"""Route modules, one per API area."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.http.app import Router


def register(router: Router) -> None:
    from modelyard.http.routes import (
        account_pages,
        buckets,
        collections,
        commits,
        contribute_pages,
        discovery,
        discussions,
        files,
        gating,
        git,
        groups,
        lfs,
        lfs_files,
        misc,
        ops,
        pages,
        people,
        repos,
        settings,
        settings_pages,
        spaces,
        webhooks,
        xet,
    )

    # The pages last: no API route is ever taken by a page.
    modules = (ops, misc, discovery, repos, buckets, files, commits, discussions, lfs, lfs_files, xet, spaces,
               collections, people, gating, git, groups, webhooks, settings, account_pages, settings_pages,
               contribute_pages, pages)
    for module in modules:
        module.register(router)
