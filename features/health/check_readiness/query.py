from sqlalchemy import column, select, table
from sqlmodel.ext.asyncio.session import AsyncSession

# Alembic's own bookkeeping table: one row, the revision the database is at.
_alembic_version = table("alembic_version", column("version_num"))


async def find_schema_revision(session: AsyncSession) -> str | None:
    return await session.scalar(select(_alembic_version.c.version_num))
