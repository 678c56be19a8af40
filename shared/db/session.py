"""The per-request session that owns the transaction, and the errors of a database not ready."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.engine import reads_need_no_transaction


class SchemaNotReadyError(Exception):
    """The start-up migration has not finished: the tables may not be there yet."""


class DatabaseNotReadyError(Exception):
    """The readiness check failed on the database; raised from the database's own error, which
    the handler logs, and answered with 503 whatever it was."""


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Nothing is re-read after commit: the handler already holds what it wrote.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def _session_for_request(request: Request) -> AsyncIterator[AsyncSession]:
    if not request.app.state.schema_ready:
        raise SchemaNotReadyError
    session_factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with session_factory() as session:
        engine: AsyncEngine = request.app.state.engine
        if request.method in _READ_METHODS and reads_need_no_transaction(engine):
            # One statement needs no BEGIN and COMMIT around it: two round trips fewer.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            if not reads_need_no_transaction(engine):
                # This very connection found the statement timeout dropped: the read gets a
                # transaction (and its time limit) on the next connection instead.
                await session.close()
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


_READ_METHODS = frozenset({"GET", "HEAD"})

DbSession = Annotated[AsyncSession, Depends(_session_for_request, scope="function")]
"""The request's session. It commits after the handler returns and before the response is
sent (so a failed commit is never reported as success), rolls back on error, always closes.
A GET runs without a transaction (its one statement is atomic by itself), except
where the statement timeout must be set per transaction (behind a transaction pooler)."""
