"""What a database failure was, said in one place for every caller (the request handlers,
/ready, the start-up migration, the purge): whether waiting can help (a 503 with Retry-After)
or the server itself is at fault (a 500), and the log fields that tell an operator why.

The fields are the driver's own: PostgreSQL's SQLSTATE and primary message (never its DETAIL,
which can quote a row) and the statement's text with its placeholders. No bound value can reach
them: PostgreSQL's data errors (class 22) are those whose primary message quotes the offending
value ("invalid input syntax for type integer: ..."), so theirs is withheld, as is the message of
any value the driver or SQLAlchemy could not convert.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
import structlog
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError, StatementError

from shared.db import SchemaNotReadyError
from shared.db import StatementError as FailedStatement

log = structlog.get_logger()

WITHHELD_MESSAGE = "(withheld: a data error's message can quote the value)"


class FailureKind(StrEnum):
    UNAVAILABLE = "unavailable"  # no connection, or a lost one; the server stopping or starved
    POOL = "pool"  # every connection of the pool in use past the pool timeout
    TIMEOUT = "timeout"  # a statement or lock wait past its time limit
    CONTENTION = "contention"  # a deadlock, a serialization failure
    SCHEMA_PENDING = "schema_pending"  # the start-up migration has not finished
    FAULT = "fault"  # the server's own: a missing table or column, a wrong type, a bug


RETRYABLE_KINDS = frozenset(
    {
        FailureKind.UNAVAILABLE,
        FailureKind.POOL,
        FailureKind.TIMEOUT,
        FailureKind.CONTENTION,
        FailureKind.SCHEMA_PENDING,
    }
)

_PASSING_KINDS = frozenset(
    {FailureKind.TIMEOUT, FailureKind.CONTENTION, FailureKind.SCHEMA_PENDING}
)

# SQLSTATE classes and codes (PostgreSQL's Appendix A) after which the same request can succeed
# once the database is back, less busy or done with the other transaction. The first match wins;
# every other SQLSTATE is a fault of this server's code or schema.
_RETRYABLE_SQLSTATES: tuple[tuple[str, FailureKind], ...] = (
    ("57014", FailureKind.TIMEOUT),  # query_canceled: statement_timeout
    ("55P03", FailureKind.TIMEOUT),  # lock_not_available: lock_timeout, NOWAIT
    ("25P03", FailureKind.TIMEOUT),  # idle_in_transaction_session_timeout
    ("25P04", FailureKind.TIMEOUT),  # transaction_timeout
    ("08", FailureKind.UNAVAILABLE),  # connection exception
    ("28", FailureKind.UNAVAILABLE),  # invalid authorization
    ("53", FailureKind.UNAVAILABLE),  # insufficient resources: connections, disk, memory
    ("57P", FailureKind.UNAVAILABLE),  # shutting down, crashed, cannot connect now
    ("58", FailureKind.UNAVAILABLE),  # system error: I/O outside PostgreSQL
    ("40", FailureKind.CONTENTION),  # transaction rollback: serialization failure, deadlock
)


@dataclass(frozen=True)
class DatabaseFailure:
    kind: FailureKind
    fields: Mapping[str, Any]

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def log_fields(self) -> dict[str, Any]:
        return {"reason": self.kind.value, **self.fields}

    def log(self, event: str, **context: Any) -> None:
        """An error when someone should look (the database out of reach, the pool too small, a
        fault); a warning for what busy or starting services meet in passing."""
        level = log.warning if self.kind in _PASSING_KINDS else log.error
        level(event, **self.log_fields(), **context)


def describe_database_failure(error: BaseException) -> DatabaseFailure | None:
    """What went wrong, if `error` came from the database (None if it did not)."""
    if isinstance(error, SchemaNotReadyError):
        message = str(error) or "the start-up migration has not finished"
        return DatabaseFailure(FailureKind.SCHEMA_PENDING, {"message": message})
    if isinstance(error, PoolTimeout):
        return DatabaseFailure(
            FailureKind.POOL, {"error": "PoolTimeout", "message": _one_line(error)}
        )
    if isinstance(error, FailedStatement):
        # A statement of a request (shared/db/database.py): the driver's error, and its SQL.
        return _driver_failure(error.orig, statement=error.statement)
    # SQLAlchemy's errors come from the migrations, which run on SQLAlchemy.
    if isinstance(error, DBAPIError) and error.orig is not None:
        # (Without the driver's error it is only a StatementError, described below.)
        failure = _driver_failure(error.orig, statement=error.statement)
        if error.connection_invalidated and not failure.retryable:
            # SQLAlchemy saw the connection die under the statement.
            return DatabaseFailure(FailureKind.UNAVAILABLE, failure.fields)
        return failure
    if isinstance(error, DisconnectionError):
        return DatabaseFailure(
            FailureKind.UNAVAILABLE, {"error": type(error).__name__, "message": _one_line(error)}
        )
    if isinstance(error, StatementError):
        # Raised by SQLAlchemy around a statement, not by the driver (a value it could not
        # convert, say): its own message would quote the statement, its cause can quote a value.
        cause = type(error.orig).__name__ if error.orig is not None else type(error).__name__
        return DatabaseFailure(
            FailureKind.FAULT,
            {"error": cause, "message": WITHHELD_MESSAGE, "statement": error.statement},
        )
    if isinstance(error, SQLAlchemyError):
        return DatabaseFailure(
            FailureKind.FAULT, {"error": type(error).__name__, "message": _one_line(error)}
        )
    if isinstance(error, psycopg.Error):
        return _driver_failure(error, statement=None)
    return None


def log_database_failure(event: str, error: BaseException, **context: Any) -> None:
    """Log `event` with what went wrong: a warning if a retry can help, else an error. An
    error that is not the database's is logged with its traceback, as the fault it is."""
    failure = describe_database_failure(error)
    if failure is None:
        log.error(event, exc_info=error, **context)
        return
    failure.log(event, **context)


def _driver_failure(orig: BaseException, *, statement: str | None) -> DatabaseFailure:
    fields: dict[str, Any] = {"error": type(orig).__name__}
    if isinstance(orig, psycopg.Error):
        kind = _postgresql_failure(orig, fields)
    else:
        kind = FailureKind.FAULT
        fields["message"] = _one_line(orig)
    if statement:
        fields["statement"] = statement
    return DatabaseFailure(kind, fields)


def _postgresql_failure(error: psycopg.Error, fields: dict[str, Any]) -> FailureKind:
    sqlstate = error.sqlstate
    fields["sqlstate"] = sqlstate
    if sqlstate is None:
        # libpq's own error, without a SQLSTATE: it could not connect (refused, TLS, channel
        # binding, authentication: libpq reports the server's refusal as text), or lost the
        # connection; or psycopg refused to send something.
        if isinstance(error, psycopg.DataError):
            fields["message"] = WITHHELD_MESSAGE
            return FailureKind.FAULT
        fields["message"] = _one_line(error)
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return FailureKind.UNAVAILABLE
        return FailureKind.FAULT
    if sqlstate.startswith("22"):
        fields["message"] = WITHHELD_MESSAGE
    else:
        fields["message"] = error.diag.message_primary or _one_line(error)
    for prefix, kind in _RETRYABLE_SQLSTATES:
        if sqlstate.startswith(prefix):
            return kind
    return FailureKind.FAULT


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
