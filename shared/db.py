"""The database: the tables, the engine, and the per-request session that owns the transaction."""

import re
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    delete,
    event,
)
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.config import DbPooler, Settings

log = structlog.get_logger()

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 1000
USER_ID_MAX_LENGTH = 255


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back in UTC, on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no zone; everything we store is UTC, so naive means UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """A person, as the frontend's Better Auth knows them; `id` is the token's subject."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=USER_ID_MAX_LENGTH)
    # Neither is unique: the id is the identity, and an email may move between accounts.
    email: str | None = Field(default=None, sa_type=String)
    name: str | None = Field(default=None, sa_type=String)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)
    # Kept by database triggers on `tasks` (migration 0002), never written by the application.
    task_count: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    completed_count: int = Field(
        default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"}
    )


class Task(SQLModel, table=True):
    """One item of one person's todo list."""

    __tablename__ = "tasks"
    # Each sort order of the list, and the status filter under the default order, reads one
    # person's rows in index order and stops after a page.
    __table_args__ = (
        Index("ix_tasks_user_id_newest_first", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_id_title", "user_id", "title", "id"),
        Index("ix_tasks_user_id_completed_created", "user_id", "completed", "created_at", "id"),
        # The search's trigram indexes exist on PostgreSQL only (migration 0003 says why).
        *(
            Index(
                f"ix_tasks_{column}_trigrams",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
                info={"only_on": "postgresql"},
            ).ddl_if(dialect="postgresql")
            for column in ("title", "description")
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            # SQLite only auto-assigns ids to a column declared exactly INTEGER PRIMARY KEY.
            BigInteger().with_variant(Integer(), "sqlite"),
            Identity(),
            primary_key=True,
        ),
    )
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", max_length=USER_ID_MAX_LENGTH)
    title: str = Field(max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    completed: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Bumped by every change, in the same UPDATE: the task's ETag.
    version: int = Field(default=1, sa_type=BigInteger, sa_column_kwargs={"server_default": "1"})


class IdempotencyKey(SQLModel, table=True):
    """A create request's `Idempotency-Key`, with the response it got, replayed for a retry."""

    __tablename__ = "idempotency_keys"

    user_id: str = Field(
        foreign_key="users.id", ondelete="CASCADE", primary_key=True, max_length=USER_ID_MAX_LENGTH
    )
    key: str = Field(primary_key=True, max_length=255)
    request_fingerprint: str = Field(max_length=64)
    task_id: int = Field(sa_type=BigInteger)
    response_body: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


def _reject_unstorable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8:
    # both would fail inside the database as a 500, so they are refused at the edge.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


StorableText = AfterValidator(_reject_unstorable_text)
"""Marks a request string as text the database can store (`Annotated[str, StorableText]`)."""


def _reject_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# What the tasks table accepts, for request models: one rule, whichever slice writes it. The
# patterns only document the validators (no NUL; a title not blank), so clients know those are
# a 400; they are not checked a second time.
TaskTitle = Annotated[
    str,
    PydanticField(
        min_length=1,
        max_length=TITLE_MAX_LENGTH,
        json_schema_extra={"pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"},
    ),
    StorableText,
    AfterValidator(_reject_blank),
]
TaskDescription = Annotated[
    str,
    PydanticField(max_length=DESCRIPTION_MAX_LENGTH, json_schema_extra={"pattern": r"^[^\x00]*$"}),
    StorableText,
]


# What a task's request body may hold besides its own fields: one rule for every slice that
# takes one (create, update, complete). Google's AIP-203 is the anchor: a field the server sets
# is ignored when a client sends it, so a frontend may send back the task it received; and
# nothing a client sends is silently lost, so an unknown field is refused, unless it is `null`,
# which says there is no value to lose (forms send `due_date: null` for a field they have but
# this API does not).
SERVER_SET_FIELDS = frozenset({"id", "user_id", "created_at", "updated_at"})
"""Fields of a task the server sets. The owner is always the token's subject, so a `user_id` is
ignored whatever it names: the path already had to name that subject (or the request is a 403),
and no body can move a task to another person's list."""

TASK_FIELDS = SERVER_SET_FIELDS | {"title", "description", "completed"}

_IGNORED = (
    "Set by the server: ignored when sent, whatever its value, so a task received may be sent "
    "back as it is."
)
_UNKNOWN = (
    "Any other field must be null (then it is ignored); a field this API does not have, "
    "with a value, is a 400 that names it, so no value sent is silently dropped."
)


def unknown_field_reason(name: str) -> str:
    """Why an unknown field with a value was refused, for the 400's `errors` and `detail`."""
    if name in TASK_FIELDS:
        return "not a field of this request"
    return "not a field of this API"


def _document_the_rule(schema: dict[str, Any]) -> None:
    # The document says what the app accepts: the server's fields with any value, other fields
    # only as null. Generated clients and Schemathesis read exactly this. Said with JSON Schema
    # 2020-12's `unevaluatedProperties` (OpenAPI 3.1's dialect), not `additionalProperties`:
    # TypeScript generators turn the latter into an index signature of `null` that every named
    # field then fails to satisfy, so a generated client could not even send a title.
    properties = schema.setdefault("properties", {})
    for name in sorted(SERVER_SET_FIELDS):
        properties.setdefault(name, {"description": _IGNORED})
    schema.pop("additionalProperties", None)
    schema["unevaluatedProperties"] = {"type": "null", "description": _UNKNOWN}


class TaskRequestBody(BaseModel):
    """The base of every task request body: strict types, the server's fields ignored, unknown
    fields ignored when null and refused otherwise."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_document_the_rule)

    @model_validator(mode="before")
    @classmethod
    def _ignore_what_loses_nothing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # not an object: the model's own validation refuses it
        own = cls.model_fields
        return {
            name: value
            for name, value in data.items()
            if name in own or (name not in SERVER_SET_FIELDS and value is not None)
        }


def is_storable_text(value: str) -> bool:
    try:
        _reject_unstorable_text(value)
    except ValueError:
        return False
    return True


class DatabaseUrlError(ValueError):
    pass


def async_database_url(raw_url: str) -> URL:
    """The SQLAlchemy URL for the async drivers: psycopg 3 for PostgreSQL, aiosqlite for SQLite.

    `postgres://`, `postgresql://` and `postgresql+psycopg://` are all accepted, with their query
    string (Neon's `sslmode=require&channel_binding=require`) passed to libpq unchanged.
    """
    try:
        url = make_url(raw_url)
    except ArgumentError as error:
        raise DatabaseUrlError("DATABASE_URL is not a valid database URL") from error
    backend = url.get_backend_name()
    if backend in {"postgres", "postgresql"}:
        if url.drivername not in {"postgres", "postgresql", "postgresql+psycopg"}:
            raise DatabaseUrlError(
                f"DATABASE_URL driver {url.drivername!r} is not supported; use postgresql://"
            )
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(
        f"DATABASE_URL must be a PostgreSQL or SQLite URL, not {url.drivername!r}"
    )


def sync_database_url(raw_url: str) -> URL:
    """The same database through the synchronous drivers, for migrations and scripts."""
    url = async_database_url(raw_url)
    return url.set(drivername="sqlite") if url.get_backend_name() == "sqlite" else url


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _enable_sqlite_integrity(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() folds ASCII only; searches must fold "É" as PostgreSQL's ILIKE does.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite, and without them deletes do not cascade.
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers proceed while a writer commits; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # The driver's own BEGIN is deferred: a transaction that reads, then writes, fails at once
    # with "database is locked" if another wrote meanwhile. We begin each one ourselves instead.
    dbapi_connection.isolation_level = None


def _begin_immediately(connection: Any) -> None:
    # Take SQLite's write lock at the start (waiting up to busy_timeout for it), so concurrent
    # requests queue up instead of failing midway. PostgreSQL needs none of this.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


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
    url = async_database_url(settings.database_url_or_default)
    if url.get_backend_name() == "sqlite":
        return ConnectionPlan(DbPooler.NONE, "SQLite file", False, "SQLite file")
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
    url = async_database_url(settings.database_url_or_default)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_integrity)
        event.listen(engine.sync_engine, "begin", _begin_immediately)
        return engine
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
    """Whether GET requests may run their statement outside a transaction (PostgreSQL, where a
    statement is atomic and sees one snapshot by itself). Where the statement time limit is set
    per transaction (behind a transaction pooler), reads keep their transaction, and their limit.
    """
    return (
        engine.dialect.name == "postgresql" and engine.sync_engine not in _timeout_per_transaction
    )


def _statement_timeout(milliseconds: int) -> str:
    return f"-c statement_timeout={milliseconds}"


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
On PostgreSQL a GET runs without a transaction (its one statement is atomic by itself), except
where the statement timeout must be set per transaction (behind a transaction pooler)."""


# A task's version is its entity tag (RFC 9110): it changes whenever the task changes. A list
# of tags is split at commas, so a tag holding a comma (never one of ours) is not accepted.
_TAG = r'[ \t]*(W/)?"([\x21\x23-\x2b\x2d-\x7e\x80-\xff]*)"[ \t]*'
_ENTITY_TAG = re.compile(_TAG)
# What `versions_in` accepts, stated in the OpenAPI document, so clients (and Schemathesis)
# know a malformed header is a 400.
_ENTITY_TAG_LIST_PATTERN = rf"^[ \t]*\*[ \t]*$|^{_TAG}(,{_TAG})*$"


def entity_tag(version: int) -> str:
    return f'"{version}"'


def versions_in(header: str, *, weak_matches: bool) -> set[int] | None:
    """The versions an `If-Match` / `If-None-Match` header names; None for `*` (any version).

    `If-Match` compares strongly (a weak tag matches nothing), `If-None-Match` weakly. Tags this
    service did not issue match nothing. A header that is not a list of tags is a ValueError.
    """
    if header.strip(" \t") == "*":
        return None
    versions = set()
    for part in header.split(","):
        match = _ENTITY_TAG.fullmatch(part)
        if match is None:
            raise ValueError('must be "*" or a list of entity tags such as "3"')
        weak, tag = match.groups()
        if (weak and not weak_matches) or not tag.isdigit():
            continue
        versions.add(int(tag))
    return versions


def _entity_tag_list(header: str | None) -> str | None:
    if header is not None:
        versions_in(header, weak_matches=True)  # raises on a malformed list
    return header


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Change only if the task is still at this version (its ETag, e.g. "3"); '
        "otherwise 412 and nothing changes.",
    ),
    AfterValidator(_entity_tag_list),
    # Absent or a string, never null, and malformed when it does not match (a 400).
    WithJsonSchema({"type": "string", "pattern": _ENTITY_TAG_LIST_PATTERN}),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="Answer 304 without a body if the task is still at this version (its ETag).",
    ),
    AfterValidator(_entity_tag_list),
    # Absent or a string, never null, and malformed when it does not match (a 400).
    WithJsonSchema({"type": "string", "pattern": _ENTITY_TAG_LIST_PATTERN}),
]


async def purge_expired_idempotency_keys(session: AsyncSession) -> int:
    """Delete the idempotency keys past their 24 hours; how many went."""
    statement = delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) < utc_now())
    return (await session.exec(statement)).rowcount
