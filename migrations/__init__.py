"""Alembic migrations, and the locked upgrade that the run command performs at start-up."""

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
SCHEMA_REVISION = "0003"


def schema_object_filter(dialect_name: str) -> Callable[..., bool]:
    """Alembic's `include_object` hook: leaves out what the code declares for another database
    only (`info={"only_on": ...}`), so comparing the schema with the code finds no difference."""

    def include_object(schema_object: Any, *_: Any) -> bool:
        only_on = getattr(schema_object, "info", {}).get("only_on")
        return only_on in (None, dialect_name)

    return include_object


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


@contextmanager
def _file_lock(database_path: str) -> Iterator[None]:
    with open(f"{database_path}.migrate.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def migration_engine(url: URL) -> Engine:
    """An engine for migrating: on PostgreSQL one that works through any pooler, transaction
    mode included (no startup options, no server-side prepared statements, which such a pooler
    would leave on its server connection for another client to collide with)."""
    if url.get_backend_name() == "postgresql":
        return create_engine(url, connect_args={"prepare_threshold": None})
    return create_engine(url)


def upgrade_database(raw_url: str) -> None:
    """Bring the database to the latest revision; safe when several processes start at once.

    PostgreSQL: the upgrade runs in one transaction holding an advisory lock (so a transaction
    pooler keeps it on one server connection), so a second process waits, then finds the schema
    current. SQLite: a lock file beside the database does the same.
    """
    from alembic import command

    url = sync_database_url(raw_url)
    engine = migration_engine(url)
    try:
        if url.get_backend_name() == "postgresql":
            with engine.begin() as connection:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                command.upgrade(alembic_config(connection), "head")
        else:
            database_path = url.database or ""
            lock = _file_lock(database_path) if database_path not in {"", ":memory:"} else None
            with lock or _no_lock(), engine.begin() as connection:
                # SQLite rebuilds a table to alter it; with foreign keys on, dropping the old
                # copy of `users` would cascade into `tasks`.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
