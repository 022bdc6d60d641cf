"""Spaces: static Spaces served as web pages. No app runtime (gradio, streamlit, docker) runs here.

A static Space's files are served at ``/spaces/{namespace}/{name}/`` from the head of ``main``;
the route sends them in a sandbox (``http/routes/spaces.py``), as documents of an opaque origin
that can neither read the hub's origin nor act with the visitor's credentials.
"""

from __future__ import annotations

from modelyard.errors import EntryNotFoundError, NotFoundError
from modelyard.metadata.cards import parse_card
from modelyard.services.auth import Principal
from modelyard.services.files import ResolvedFile, resolve_file
from modelyard.services.hub import Hub
from modelyard.services.repos import DEFAULT_BRANCH

#: What a folder of a static Space serves (``app_file`` may name another page for the root).
INDEX = "index.html"


class SpaceNotServedError(NotFoundError):
    """The Space exists but is not a static one: its app would need a runtime this hub lacks."""


def static_file(hub: Hub, principal: Principal | None, repo_id: str, page: str) -> ResolvedFile:
    """The file of a static Space at ``page`` (a path; ``""`` or a folder ending in ``/`` is its
    index), read at the head of ``main`` as the Space's card there declares it."""
    try:
        readme = resolve_file(hub, principal, "space", repo_id, DEFAULT_BRANCH, "README.md")
    except EntryNotFoundError:
        readme = None
    card = parse_card(readme.inline.decode("utf-8", "replace")) if readme and readme.inline else None
    sdk = card.data.get("sdk") if card is not None else None
    if sdk != "static":
        raise SpaceNotServedError(
            f"The Space {repo_id} uses the {sdk or 'unknown'} SDK: this hub stores its files but runs no app; "
            "only static Spaces are served"
        )
    assert readme is not None and card is not None
    if page == "":
        app_file = card.data.get("app_file")
        page = app_file if isinstance(app_file, str) and app_file else INDEX
    elif page.endswith("/"):
        page += INDEX
    # The same commit as the card: a commit landing meanwhile cannot mix two versions.
    return resolve_file(hub, principal, "space", repo_id, readme.commit, page)
