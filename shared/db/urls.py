"""The database URL (PostgreSQL's only), and what the connection goes through."""

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from shared.config import DbPooler, Settings


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


def libpq_url(settings: Settings) -> URL:
    """The URL psycopg's pool connects with (a `postgresql://` URI, its query string passed to
    libpq as it is); rendered with its password to connect, without it to be logged."""
    return async_database_url(configured_database_url(settings)).set(drivername="postgresql")
