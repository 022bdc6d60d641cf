"""Server-rendered pages: Jinja2 templates, their filters and the hub's own static assets.

This layer only renders: what a page shows comes from ``services/pages.py`` through the same
access checks as the API, and the routes that serve pages live in ``http/routes/pages.py``.
"""
