"""Alembic migrations, and the locked upgrade that the run command performs at start-up."""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL

from shared.db import sync_database_url

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An arbitrary constant: every instance of this service agrees on it, nothing else uses it.
MIGRATION_LOCK_KEY = 7_391_254_026
# The newest revision in versions/, stated rather than read from there at start-up: reading it
# imports Alembic, which serving never needs otherwise (MIGRATE_ON_START=false), and costs each
# worker 1 to 2 s on a busy machine (bench/RESULTS.md). tests/test_startup.py checks that it
# is Alembic's head: a new revision fails that test until this names it.
SCHEMA_REVISION = "0004"


def head_revision() -> str:
    """The revision this code's schema is at: what a ready database must report."""
    return SCHEMA_REVISION


def alembic_config(connection: Connection | None = None) -> "Config":
    # Alembic is imported here, when migrating, never by serving alone.
    from alembic.config import Config

    config = Config(toml_file=PROJECT_ROOT / "pyproject.toml")
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["connection"] = connection
    return config


def migration_engine(url: URL) -> Engine:
    """An engine for migrating that works through any pooler, transaction mode included (no
    startup options, no server-side prepared statements, which such a pooler would leave on its
    server connection for another client to collide with)."""
    return create_engine(url, connect_args={"prepare_threshold": None})


def upgrade_database(raw_url: str) -> None:
    """Bring the database to the latest revision; safe when several processes start at once.

    The upgrade runs in one transaction holding an advisory lock (so a transaction pooler keeps
    it on one server connection), so a second process waits, then finds the schema current.
    """
    from alembic import command

    url = sync_database_url(raw_url)
    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()
