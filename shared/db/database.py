"""The connection pool (psycopg's own), and the session a request runs its statements in.

Every statement runs on psycopg's async pool directly: SQL compiled once (`Statement`), values
sent as they are, rows read by psycopg. What the pool does not do for us, and why:

- **No ping before each checkout.** A connection is checked without a round trip: one that
  the server closed while it sat idle (a restart, Neon's suspend) has already said so on its
  socket, which is looked at before the connection is handed out, and such a connection is
  replaced. A SELECT whose connection breaks under it anyway is run once more on a fresh one;
  a write never is, since it may have reached the server.
- **An outage is answered at once, in the driver's words.** While the pool's own reconnection
  backs off, a request does not wait for it: the first failure to connect is its answer, and
  once the database was found down, each request tries a connection itself, so the first one
  after the outage succeeds (and the pool is renewed, with no back-off pending).
- **The statement timeout** is a startup option on a direct connection, checked once per
  connection: where something dropped it (a pooler told to ignore it), and behind a transaction
  pooler, it is set with `SET LOCAL` in a transaction around each request instead.
- **Autocommit unless asked.** A statement alone is atomic by itself: no BEGIN and COMMIT, two
  round trips fewer. A handler that needs several statements to stand or fall together asks for
  `session.transaction()`.
"""

import asyncio
import contextlib
import select
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

import psycopg
import structlog
from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ConnStatus, ExecStatus, TransactionStatus
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared.config import DbPooler, Settings
from shared.db.state import app_state
from shared.db.statements import RowT, Statement
from shared.db.urls import ConnectionPlan, connection_plan, libpq_url

log = structlog.get_logger()


class SchemaNotReadyError(Exception):
    """The start-up migration has not finished: the tables may not be there yet."""


class DatabaseNotReadyError(Exception):
    """The readiness check failed on the database; raised from the database's own error, which
    the handler logs, and answered with 503 whatever it was."""


class StatementError(Exception):
    """A statement the database (or the driver) refused: the driver's error, with the SQL that
    was run (its placeholders, never its values) for the log line."""

    def __init__(self, error: psycopg.Error, sql: str) -> None:
        super().__init__(str(error))
        self.orig = error
        self.statement = sql


class _UtcTimestamptzLoader(TimestamptzLoader):
    """`timestamptz` read back in UTC, whatever the session's `TimeZone`: the API's timestamps
    end in `Z` on every server."""

    def load(self, data: Any) -> datetime:
        return super().load(data).astimezone(UTC)


_A_WINTER_AND_A_SUMMER_DAY = (datetime(2026, 1, 15), datetime(2026, 7, 15))


def _is_utc(zone: tzinfo) -> bool:
    """Whether a time zone is UTC by another name (UTC, Etc/UTC, GMT, Zulu, ...)."""
    return all(zone.utcoffset(day) == timedelta(0) for day in _A_WINTER_AND_A_SUMMER_DAY)


class Database:
    """The pool, and what was learnt about the connections it makes."""

    def __init__(self, settings: Settings) -> None:
        self.plan: ConnectionPlan = connection_plan(settings)
        self.conninfo = libpq_url(settings).render_as_string(hide_password=False)
        self.statement_timeout_ms = round(settings.db_statement_timeout_seconds * 1000)
        # Behind a transaction pooler a session's SET would not last to our next transaction
        # (and would reach the pooler's next client), so the limit is set in each transaction.
        self.timeout_per_transaction = bool(self.statement_timeout_ms) and (
            self.plan.pooler is DbPooler.TRANSACTION
        )
        self._prepare = self.plan.prepared_statements
        self._prepared_by_default = (
            self.plan.prepared_statements and settings.db_prepared_statements is None
        )
        self._settings = settings
        # The error of the last attempt to connect, while none has succeeded since.
        self._down: psycopg.OperationalError | None = None
        self._connect_failed: asyncio.Future[psycopg.OperationalError] | None = None
        # Made by `open`, in the event loop that serves the application (the pool's workers
        # are tasks of that loop), and dropped by `close`.
        self._pool: AsyncConnectionPool | None = None
        # The pool an outage left behind, closing (a reference, so that the task runs to its end).
        self._closing: asyncio.Task[None] | None = None
        # Connections handed out by `checkout` and not yet given back, whichever pool's.
        self._connections_out = 0
        # Connections going back to the pool after the request that waited for them was
        # cancelled (references, so that the tasks run to their end).
        self._returning: set[asyncio.Future[None]] = set()

    # -- the pool ------------------------------------------------------------------------------

    def _connection_options(self) -> dict[str, Any]:
        # application_name is one of the few startup parameters a pooler passes on (PgBouncer
        # keeps it per client); `options` is refused by one ("unsupported startup parameter").
        options: dict[str, Any] = {
            "application_name": "tasks-api",
            "connect_timeout": self._settings.db_connect_timeout_seconds,
            "autocommit": True,
        }
        if self.statement_timeout_ms and not self.timeout_per_transaction:
            given = conninfo_to_dict(self.conninfo).get("options")
            timeout = f"-c statement_timeout={self.statement_timeout_ms}"
            options["options"] = f"{given} {timeout}" if given else timeout
        if not self._prepare:
            # psycopg prepares a statement on the server after its fifth use. Behind a pooler
            # that does not track them, the next transaction may run on a server connection
            # where that name is missing or is another client's statement.
            options["prepare_threshold"] = None
        return options

    def _new_pool(self) -> AsyncConnectionPool:
        database = self

        class _Connection(AsyncConnection):
            # How the request waiting for a connection hears at once that connecting failed,
            # rather than after the pool's back-off and timeout.
            @classmethod
            async def connect(cls, *args: Any, **kwargs: Any) -> "_Connection":  # type: ignore[override]
                try:
                    connection = await super().connect(*args, **kwargs)
                except psycopg.OperationalError as error:
                    database._note_connect_failure(error)
                    raise
                database._down = None
                return connection

        settings = self._settings
        return AsyncConnectionPool(
            self.conninfo,
            connection_class=_Connection,
            kwargs=self._connection_options,
            # None held open while idle: a serverless database (Neon) may then suspend.
            min_size=0,
            max_size=settings.db_pool_size + settings.db_max_overflow,
            timeout=settings.db_pool_timeout_seconds,
            max_lifetime=settings.db_pool_recycle_seconds,
            # Connections beyond what the load needs are closed after a minute unused.
            max_idle=60,
            configure=self._configure,
            open=False,
            name="tasks-api",
        )

    async def open(self) -> None:
        """Start a pool (at the application's start): it connects when a request needs it."""
        # What an earlier pool learnt belongs to its event loop (an app started again, as the
        # tests do, runs in a new one).
        self._down, self._connect_failed = None, None
        self._pool = self._new_pool()
        await self._pool.open(wait=False)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def stats(self) -> dict[str, int]:
        """The pool's figures (psycopg_pool's names: `pool_size`, `pool_available`, ...)."""
        return self._pool.get_stats() if self._pool is not None else {}

    def _open_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise psycopg.OperationalError(
                "the connection pool is not open: the application has not started or has stopped"
            )
        return self._pool

    def _note_connect_failure(self, error: psycopg.OperationalError) -> None:
        self._down = error
        if self._connect_failed is not None and not self._connect_failed.done():
            self._connect_failed.set_result(error)
        self._connect_failed = None

    async def _configure(self, connection: AsyncConnection) -> None:
        if not _is_utc(connection.info.timezone):
            # psycopg's own (compiled) loader already gives UTC where the session's TimeZone is
            # UTC, as on most servers; elsewhere each timestamp is converted (in Python).
            connection.adapters.register_loader("timestamptz", _UtcTimestamptzLoader)
        if self.statement_timeout_ms and not self.timeout_per_transaction:
            await self._check_the_timeout_arrived(connection)
        if not self._prepare or (self.timeout_per_transaction and self._prepared_by_default):
            connection.prepare_threshold = None

    async def _check_the_timeout_arrived(self, connection: AsyncConnection) -> None:
        """The statement timeout sent as a startup option must be in force. A pooler told to
        ignore that option (`ignore_startup_parameters = options`) drops it without an error;
        then it is set per transaction instead, and the log says so."""
        cursor = await connection.execute(
            "SELECT setting FROM pg_settings WHERE name = 'statement_timeout'"
        )
        row = await cursor.fetchone()
        in_force = int(row[0]) if row is not None else 0
        if in_force == self.statement_timeout_ms:
            return
        self.timeout_per_transaction = True
        log.warning(
            "database.statement_timeout_dropped",
            asked_ms=self.statement_timeout_ms,
            in_force_ms=in_force,
            hint="something between here and PostgreSQL (a pooler ignoring the `options` "
            "startup parameter?) dropped the statement timeout; it is now set per "
            "transaction and prepared statements are off unless DB_PREPARED_STATEMENTS=true. "
            "Behind a transaction pooler, set DB_POOLER=transaction",
        )

    async def checkout(self) -> tuple[AsyncConnection, AsyncConnectionPool]:
        """A connection, and the pool to give it back to."""
        try:
            return await self._checkout()
        except PoolTimeout as error:
            # psycopg_pool says how long it waited; an operator also needs to know for what.
            size = self._settings.db_pool_size + self._settings.db_max_overflow
            raise PoolTimeout(
                f"all {size} connections of the pool (DB_POOL_SIZE + DB_MAX_OVERFLOW) stayed in "
                f"use: {error}"
            ) from error

    async def _checkout(self) -> tuple[AsyncConnection, AsyncConnectionPool]:
        pool = self._open_pool()
        if self._down is not None and not pool.get_stats().get("pool_available", 0):
            # With idle connections at hand (a failure to connect beside them, such as the
            # server's connection limit) there is nothing to probe.
            await self._probe()
            pool = self._open_pool()
        # Each connection the server closed while it was idle is dropped (and replaced by the
        # pool) on the spot; the pool's own `check` would wait longer after each one it found.
        for _ in range(self._settings.db_pool_size + self._settings.db_max_overflow):
            connection = await self._connection_from(pool)
            if _still_connected(connection):
                self._connections_out += 1
                return connection, pool
            await connection.close()
            await pool.putconn(connection)
        connection = await self._connection_from(pool)
        self._connections_out += 1
        return connection, pool

    async def give_back(self, connection: AsyncConnection, pool: AsyncConnectionPool) -> None:
        """Return a connection `checkout` gave, to the pool it came from."""
        self._connections_out -= 1
        await pool.putconn(connection)

    async def _connection_from(self, pool: AsyncConnectionPool) -> AsyncConnection:
        if pool.get_stats().get("pool_available", 0):
            return await pool.getconn()
        # None idle: the pool connects (or a connection comes back). The first failure to
        # connect ends the wait, rather than the pool's timeout after its back-off.
        if self._connect_failed is None:
            self._connect_failed = asyncio.get_running_loop().create_future()
        connect_failed = self._connect_failed
        getting = asyncio.ensure_future(pool.getconn())
        try:
            await asyncio.wait((getting, connect_failed), return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                await asyncio.wait((getting,))
        except BaseException:
            # This request was cancelled while it waited: a connection given to it meanwhile
            # goes back to the pool, or the pool would have one fewer for good.
            getting.cancel()
            getting.add_done_callback(self._give_back_if_given(pool))
            raise
        if getting.cancelled():
            raise psycopg.OperationalError(str(connect_failed.result()))
        return getting.result()  # the connection, or the pool's own error (its timeout)

    def _give_back_if_given(
        self, pool: AsyncConnectionPool
    ) -> Callable[["asyncio.Future[AsyncConnection]"], None]:
        def give_back(getting: "asyncio.Future[AsyncConnection]") -> None:
            if not getting.cancelled() and getting.exception() is None:
                returning = asyncio.ensure_future(pool.putconn(getting.result()))
                self._returning.add(returning)
                returning.add_done_callback(self._returning.discard)

        return give_back

    async def _probe(self) -> None:
        """The database was found down: connect once, now. A failure is this request's answer;
        a success ends the outage, and a new pool replaces the one still backing off."""
        options = self._connection_options()
        try:
            connection = await AsyncConnection.connect(self.conninfo, **options)
        except psycopg.OperationalError as error:
            self._down = error
            raise
        await connection.close()
        if self._down is None:
            return  # another request ended the outage meanwhile
        self._down = None
        old = self._open_pool()
        if old.get_stats().get("pool_available", 0) or self._connections_out:
            # The pool has connections, idle or serving: it was a passing failure, not an
            # outage, and a second pool beside this one would only double the connections.
            return
        await self.open()
        log.info("database.reconnected")
        # Connections still out return to the old pool, which closes them.
        self._closing = asyncio.get_running_loop().create_task(old.close())

    def session(self) -> "DatabaseSession":
        return DatabaseSession(self)


def _still_connected(connection: AsyncConnection) -> bool:
    """Whether an idle connection is still there, without a round trip. An idle connection has
    nothing to read: whatever arrived while it sat in the pool (the server's "terminating
    connection" as it shut down or restarted, the end of the stream) says it is going away. At
    worst a connection with a stray notice is replaced too: a reconnection, where handing out a
    dead one would fail a request."""
    pgconn = connection.pgconn
    if pgconn.status != ConnStatus.OK:
        return False
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    return not poller.poll(0)


_CONNECTION_LOST = (psycopg.OperationalError, psycopg.InterfaceError)


class DatabaseSession:
    """The statements of one request (or one piece of upkeep), on one connection taken when the
    first statement runs and given back at the end.

    Each statement commits by itself unless it runs inside `transaction()` or after `begin()`,
    or the whole session is one transaction because the statement timeout must be set per
    transaction (behind a transaction pooler). What is to happen once a change is committed
    (`after_commit`) happens then, and never if it rolls back.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._connection: AsyncConnection | None = None
        self._pool: AsyncConnectionPool | None = None
        self._in_transaction = False
        # Callbacks waiting for the open transaction's commit.
        self._on_commit: list[Callable[[], object]] = []

    async def _connect(self) -> AsyncConnection:
        if self._connection is None:
            self._connection, self._pool = await self._database.checkout()
            if self._database.timeout_per_transaction:
                await self._begin(self._connection, with_timeout=True)
        return self._connection

    async def begin(self) -> None:
        """Make the rest of the session one transaction, committed when the session finishes:
        for a statement that must not outlive the ones after it (a person's `users` row written
        for a change that may then find nothing to change)."""
        # Connecting first: behind a transaction pooler that begins the session's transaction.
        connection = await self._connect()
        if not self._in_transaction:
            await self._begin(connection, with_timeout=False)

    async def _begin(self, connection: AsyncConnection, *, with_timeout: bool) -> None:
        await connection.execute(b"BEGIN")
        self._in_transaction = True
        timeout_ms = self._database.statement_timeout_ms
        if with_timeout and timeout_ms:
            # A transaction-mode pooler hands a SET made outside a transaction to whichever
            # client comes next; SET LOCAL ends with ours.
            await connection.execute(f"SET LOCAL statement_timeout = {timeout_ms}".encode())

    async def _run(
        self, statement: Statement[RowT], values: Mapping[str, Any]
    ) -> tuple[list[RowT], int]:
        first_on_connection = self._connection is None
        # A failure to connect (or to begin) is raised as it is: the driver's or the pool's.
        connection = await self._connect()
        try:
            return await self._execute(connection, statement, values)
        except _CONNECTION_LOST as error:
            if not (first_on_connection and statement.idempotent and connection.broken):
                raise StatementError(error, statement.sql) from error
        # The connection broke under a read that was the first thing it ran: nothing was
        # changed and nothing is lost by reading again, once, on a fresh connection.
        await self._release()
        connection = await self._connect()
        try:
            return await self._execute(connection, statement, values)
        except psycopg.Error as error:
            raise StatementError(error, statement.sql) from error

    async def _execute(
        self, connection: AsyncConnection, statement: Statement[RowT], values: Mapping[str, Any]
    ) -> tuple[list[RowT], int]:
        cursor = connection.cursor(row_factory=statement.row_factory)
        try:
            await cursor.execute(statement.query, statement.values(values))
            # (Asked of the result itself: `cursor.description` would build its columns.)
            result = cursor.pgresult
            returned_rows = result is not None and result.status == ExecStatus.TUPLES_OK
            rows = await cursor.fetchall() if returned_rows else []
        except _CONNECTION_LOST:
            raise
        except psycopg.Error as error:
            raise StatementError(error, statement.sql) from error
        return rows, cursor.rowcount

    async def all(self, statement: Statement[RowT], **values: Any) -> list[RowT]:
        """Every row the statement returns."""
        rows, _ = await self._run(statement, values)
        return rows

    async def one_or_none(self, statement: Statement[RowT], **values: Any) -> RowT | None:
        """The statement's one row (its first, if it returned more), or None."""
        rows, _ = await self._run(statement, values)
        return rows[0] if rows else None

    async def execute(self, statement: Statement[Any], **values: Any) -> int:
        """Run a statement for its effect; how many rows it changed."""
        _, changed = await self._run(statement, values)
        return changed

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """The statements in the block commit together at its end, or none does."""
        # Connecting first: behind a transaction pooler that begins the session's transaction.
        await self._connect()
        if self._in_transaction:
            yield  # inside the session's transaction already, which commits when it finishes
            return
        await self.begin()
        try:
            yield
        except BaseException:
            await self._roll_back()
            raise
        await self._commit()

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call `callback` once what the session has done so far is committed: at once if it
        is (a statement that ran by itself), else when the transaction commits; never if it
        rolls back."""
        if self._in_transaction:
            self._on_commit.append(callback)
        else:
            callback()

    async def _commit(self) -> None:
        if self._in_transaction and self._connection is not None:
            try:
                await self._connection.execute(b"COMMIT")
            except psycopg.Error as error:
                raise StatementError(error, "COMMIT") from error
        self._in_transaction = False
        callbacks, self._on_commit = self._on_commit, []
        for callback in callbacks:
            callback()

    async def _roll_back(self) -> None:
        self._on_commit.clear()
        self._in_transaction = False
        connection = self._connection
        if (
            connection is not None
            and not connection.broken
            and connection.info.transaction_status != TransactionStatus.IDLE
        ):
            with contextlib.suppress(psycopg.Error):
                await connection.rollback()

    async def finish(self) -> None:
        """Commit the session's transaction, if one is open, and give the connection back."""
        try:
            await self._commit()
        finally:
            await self._release()

    async def abandon(self) -> None:
        """Roll back whatever is uncommitted and give the connection back."""
        try:
            await self._roll_back()
        finally:
            await self._release()

    async def _release(self) -> None:
        connection, pool = self._connection, self._pool
        self._connection = self._pool = None
        self._in_transaction = False
        if connection is not None and pool is not None:
            await self._database.give_back(connection, pool)

    async def __aenter__(self) -> "DatabaseSession":
        return self

    async def __aexit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if error_type is None:
            await self.finish()
        else:
            await self.abandon()


async def _session_for_request(request: Request) -> AsyncIterator[DatabaseSession]:
    state = app_state(request.app)
    if not state.schema_ready:
        raise SchemaNotReadyError
    session = state.database.session()
    try:
        yield session
    except BaseException:
        await session.abandon()
        raise
    await session.finish()


def log_after_commit(
    session: DatabaseSession, log: Callable[..., Any], event: str, **fields: object
) -> None:
    """Log `event` with `log` (the slice's `log.info`, so the line names its slice) once the
    change is committed, and never if it rolls back or the commit fails: an audit event says
    that a change was made, which only the commit makes true."""
    session.after_commit(lambda: log(event, **fields))


DbSession = Annotated[DatabaseSession, Depends(_session_for_request, scope="function")]
"""The request's database session. Its statements commit before the response is sent (each by
itself, or together in `session.transaction()`), so a failed commit is never reported as
success; whatever is uncommitted when the handler raises is rolled back; the connection is
always given back."""
