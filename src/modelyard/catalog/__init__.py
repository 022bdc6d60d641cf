"""SQL tables, migrations and queries (SQLite and PostgreSQL)."""
