"""The engine: the database URL, what the connection goes through, and the statement timeout."""

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.config import DbPooler, Settings

log = structlog.get_logger()


class DatabaseUrlError(ValueError):
    pass


# Where DATABASE_URL is wrong, or missing where the embedded server cannot be started for it.
POSTGRESQL_REQUIRED = (
    "the Tasks API runs on PostgreSQL only: set DATABASE_URL to a postgresql:// URL, or leave it "
    "unset and start the service with `uv run main.py`, which then starts an embedded "
    "PostgreSQL (its data in EMBEDDED_POSTGRES_DIR)"
)


def async_database_url(raw_url: str) -> URL:
    """The SQLAlchemy URL for psycopg 3, the one driver.

    `postgres://`, `postgresql://` and `postgresql+psycopg://` are all accepted, with their query
    string (Neon's `sslmode=require&channel_binding=require`, a Unix socket's `host=/path`)
    passed to libpq unchanged.
    """
    try:
        url = make_url(raw_url)
    except ArgumentError as error:
        raise DatabaseUrlError(f"DATABASE_URL is not a valid URL; {POSTGRESQL_REQUIRED}") from error
    if url.get_backend_name() not in {"postgres", "postgresql"}:
        raise DatabaseUrlError(
            f"DATABASE_URL is a {url.get_backend_name()!r} URL; {POSTGRESQL_REQUIRED}"
        )
    if url.drivername not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise DatabaseUrlError(
            f"DATABASE_URL driver {url.drivername!r} is not supported; use postgresql://"
        )
    return url.set(drivername="postgresql+psycopg")


def sync_database_url(raw_url: str) -> URL:
    """The same database, for migrations and scripts (psycopg serves both)."""
    return async_database_url(raw_url)


def configured_database_url(settings: Settings) -> str:
    """`DATABASE_URL` as given, or, when the run command started the embedded server, that."""
    if settings.database_url is None:
        raise DatabaseUrlError(f"DATABASE_URL is not set; {POSTGRESQL_REQUIRED}")
    return settings.database_url.get_secret_value()


NEON_POOLER_HOST_MARK = "-pooler."
SUPABASE_POOLER_HOST_SUFFIX = "pooler.supabase.com"


@dataclass(frozen=True)
class ConnectionPlan:
    """What the PostgreSQL connection goes through, and what that allows; each with its why."""

    pooler: DbPooler  # `none` or `transaction`, never `auto`
    pooler_reason: str
    prepared_statements: bool
    prepared_statements_reason: str

    def log_fields(self) -> dict[str, object]:
        return {
            "database_pooler": self.pooler.value,
            "database_pooler_reason": self.pooler_reason,
            "prepared_statements": self.prepared_statements,
            "prepared_statements_reason": self.prepared_statements_reason,
        }


def connection_plan(settings: Settings) -> ConnectionPlan:
    """`DB_POOLER` and `DB_PREPARED_STATEMENTS` resolved against the database URL."""
    url = async_database_url(configured_database_url(settings))
    host = (url.host or "").lower()
    if settings.db_pooler is not DbPooler.AUTO:
        pooler, pooler_reason = settings.db_pooler, "DB_POOLER set explicitly"
    elif NEON_POOLER_HOST_MARK in host:
        pooler, pooler_reason = DbPooler.TRANSACTION, "host name matched Neon's pooler (-pooler.)"
    elif host.endswith(SUPABASE_POOLER_HOST_SUFFIX):
        pooler = DbPooler.TRANSACTION
        pooler_reason = f"host name matched Supabase's pooler ({SUPABASE_POOLER_HOST_SUFFIX})"
    else:
        pooler, pooler_reason = DbPooler.NONE, "default: the host name is no known pooler's"
    if settings.db_prepared_statements is not None:
        prepared = settings.db_prepared_statements
        prepared_reason = f"DB_PREPARED_STATEMENTS={str(prepared).lower()}"
    elif pooler is DbPooler.TRANSACTION:
        prepared = False
        prepared_reason = (
            "off behind a transaction pooler (DB_PREPARED_STATEMENTS=true if it tracks them)"
        )
    else:
        prepared, prepared_reason = True, "on for a direct connection (after 5 uses)"
    return ConnectionPlan(pooler, pooler_reason, prepared, prepared_reason)


# Engines whose statement timeout is set by `SET LOCAL` in each transaction rather than once per
# connection: behind a transaction pooler, or where the startup option was found dropped.
_timeout_per_transaction: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def create_engine(settings: Settings) -> AsyncEngine:
    url = async_database_url(configured_database_url(settings))
    plan = connection_plan(settings)
    # application_name is one of the few startup parameters a pooler passes on (PgBouncer keeps
    # it per client); `options` is refused by one ("unsupported startup parameter").
    connect_args: dict[str, Any] = {
        "application_name": "tasks-api",
        "connect_timeout": settings.db_connect_timeout_seconds,
    }
    if not plan.prepared_statements:
        # psycopg prepares a statement on the server after its fifth use. Behind a pooler that
        # does not track them, the next transaction may run on a server connection where that
        # name is missing or is another client's statement: errors, or the wrong statement.
        connect_args["prepare_threshold"] = None
    timeout_ms = round(settings.db_statement_timeout_seconds * 1000)
    per_transaction = plan.pooler is DbPooler.TRANSACTION
    if timeout_ms and not per_transaction:
        given = url.query.get("options")
        connect_args["options"] = " ".join(
            filter(
                None, [given if isinstance(given, str) else None, _statement_timeout(timeout_ms)]
            )
        )
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        # A round trip per checkout, and worth it: a connection the database dropped (a restart,
        # Neon's suspend) is replaced before a request sees it. Pinging only connections idle
        # for a second gained 6% and lost the first request after a quick restart.
        pool_pre_ping=True,
        # Exception messages would otherwise carry bound values, i.e. the text of tasks.
        hide_parameters=True,
        connect_args=connect_args,
    )
    if not timeout_ms:
        return engine
    if per_transaction:
        _timeout_per_transaction.add(engine.sync_engine)
    else:
        event.listen(
            engine.sync_engine,
            "connect",
            _check_the_timeout_arrived(
                engine.sync_engine,
                timeout_ms,
                prepared_by_default=plan.prepared_statements
                and settings.db_prepared_statements is None,
            ),
        )

    def limit_this_transaction(connection: Connection) -> None:
        # A transaction-mode pooler would not keep a session's SET for our next transaction,
        # and hands a SET made outside one to whichever client comes next.
        if connection.engine in _timeout_per_transaction:
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")

    event.listen(engine.sync_engine, "begin", limit_this_transaction)
    return engine


def _check_the_timeout_arrived(
    engine: Engine, timeout_ms: int, *, prepared_by_default: bool
) -> Callable[[Any, Any], None]:
    """A `connect` hook: the statement timeout sent as a startup option must be in force. A
    pooler told to ignore that option (`ignore_startup_parameters = options`) drops it without
    an error; then the engine sets it per transaction instead, and says so."""

    def check(dbapi_connection: Any, record: Any) -> None:
        if engine not in _timeout_per_transaction:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            in_force = int(cursor.fetchone()[0])
            cursor.close()
            dbapi_connection.rollback()
            if in_force == timeout_ms:
                return
            _timeout_per_transaction.add(engine)
            log.warning(
                "database.statement_timeout_dropped",
                asked_ms=timeout_ms,
                in_force_ms=in_force,
                hint="something between here and PostgreSQL (a pooler ignoring the `options` "
                "startup parameter?) dropped the statement timeout; it is now set per "
                "transaction and prepared statements are off unless DB_PREPARED_STATEMENTS=true. "
                "Behind a transaction pooler, set DB_POOLER=transaction",
            )
        if prepared_by_default:
            # Most likely a transaction pooler: treat it as one.
            record.driver_connection.prepare_threshold = None

    return check


def reads_need_no_transaction(engine: AsyncEngine) -> bool:
    """Whether GET requests may run their statement outside a transaction (a statement is atomic
    and sees one snapshot by itself). Where the statement time limit is set per transaction
    (behind a transaction pooler), reads keep their transaction, and their limit.
    """
    return engine.sync_engine not in _timeout_per_transaction


def _statement_timeout(milliseconds: int) -> str:
    return f"-c statement_timeout={milliseconds}"
