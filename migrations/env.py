"""Alembic's entry point: runs on the connection `upgrade_database` passes, or on DATABASE_URL."""

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import shared.db  # noqa: F401  (registers the tables on SQLModel.metadata)
from migrations import migration_engine
from shared.config import Settings
from shared.db import configured_database_url, sync_database_url

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = migration_engine(sync_database_url(configured_database_url(Settings())))
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=sync_database_url(configured_database_url(Settings())),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
