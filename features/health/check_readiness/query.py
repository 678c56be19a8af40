from sqlalchemy import column, select, table

from shared.db import DatabaseSession, Statement

# Alembic's own bookkeeping table: one row, the revision the database is at.
_alembic_version = table("alembic_version", column("version_num"))
_SCHEMA_REVISION = Statement(select(_alembic_version.c.version_num))


async def find_schema_revision(session: DatabaseSession) -> str | None:
    row = await session.one_or_none(_SCHEMA_REVISION)
    return row[0] if row is not None else None
