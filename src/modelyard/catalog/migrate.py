"""Schema migrations (Alembic), applied by ``modelyard db upgrade`` and on ``serve``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from modelyard.catalog.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision (safe to run concurrently on PostgreSQL)."""
    with db.engine.connect() as conn:
        if not db.is_sqlite:
            # One migrator at a time when several servers start together.
            conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
            conn.commit()
        try:
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
        finally:
            if not db.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
                conn.commit()
