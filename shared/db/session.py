"""The per-request session that owns the transaction, what is logged once it commits, and the
errors of a database not ready."""

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.engine import reads_need_no_transaction
from shared.db.state import app_state


class SchemaNotReadyError(Exception):
    """The start-up migration has not finished: the tables may not be there yet."""


class DatabaseNotReadyError(Exception):
    """The readiness check failed on the database; raised from the database's own error, which
    the handler logs, and answered with 503 whatever it was."""


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Nothing is re-read after commit: the handler already holds what it wrote.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def _session_for_request(request: Request) -> AsyncIterator[AsyncSession]:
    state = app_state(request.app)
    if not state.schema_ready:
        raise SchemaNotReadyError
    async with state.session_factory() as session:
        if request.method in _READ_METHODS and reads_need_no_transaction(state.engine):
            # One statement needs no BEGIN and COMMIT around it: two round trips fewer.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            if not reads_need_no_transaction(state.engine):
                # This very connection found the statement timeout dropped: the read gets a
                # transaction (and its time limit) on the next connection instead.
                await session.close()
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        for log_event in session.info.pop(_AFTER_COMMIT, ()):
            log_event()


def log_after_commit(
    session: AsyncSession, log: Callable[..., Any], event: str, **fields: object
) -> None:
    """Log `event` with `log` (the slice's `log.info`, so the line names its slice) once the
    request's transaction has committed, and never if it rolls back or the commit fails: an
    audit event says that a change was made, which only the commit makes true."""
    session.info.setdefault(_AFTER_COMMIT, []).append(partial(log, event, **fields))


# A session serves one request (`DbSession`), so what it holds under this key is that request's.
_AFTER_COMMIT = "log_after_commit"


_READ_METHODS = frozenset({"GET", "HEAD"})

DbSession = Annotated[AsyncSession, Depends(_session_for_request, scope="function")]
"""The request's session. It commits after the handler returns and before the response is
sent (so a failed commit is never reported as success), rolls back on error, always closes.
A GET runs without a transaction (its one statement is atomic by itself), except
where the statement timeout must be set per transaction (behind a transaction pooler)."""
