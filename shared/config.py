"""Settings read from the environment and `.env`, checked once at start-up."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Long enough to pass the length check, and refused in production, so a development
# token can never be valid against a production deployment.
DEVELOPMENT_SECRET = "development-secret-for-local-use-only-not-for-production"  # noqa: S105
MINIMUM_SECRET_BYTES = 32
SHARED_SECRET_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
# What Better Auth's JWT plugin can sign with (EdDSA by default), and their RSA/EC siblings.
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
BETTER_AUTH_JWKS_PATH = "/api/auth/jwks"
BETTER_AUTH_SESSION_PATH = "/api/auth/get-session"
# With DATABASE_URL unset, `main.py` starts an embedded PostgreSQL with its data here.
DEFAULT_EMBEDDED_POSTGRES_DIR = Path(__file__).resolve().parent.parent / ".postgres"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class DbPooler(StrEnum):
    """What the PostgreSQL connection goes through (`DB_POOLER`)."""

    # `transaction` for the pooler host names of Neon (`-pooler.`) and Supabase
    # (`pooler.supabase.com`), `none` for any other host.
    AUTO = "auto"
    # Straight to PostgreSQL, or a pooler in session mode: one server connection per client.
    NONE = "none"
    # A transaction-mode pooler (PgBouncer, Supavisor, Neon's): each transaction may run on
    # another server connection, so nothing may outlive a transaction.
    TRANSACTION = "transaction"


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every variable the service reads; `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    # Unset: `main.py` starts an embedded PostgreSQL (shared/db/embedded.py) in this folder,
    # kept between runs; a relative path is taken from the working directory.
    database_url: SecretStr | None = None
    embedded_postgres_dir: Path = DEFAULT_EMBEDDED_POSTGRES_DIR
    # The pool (psycopg's) holds at most their sum, opened as needed and closed after a minute
    # unused; a pool as large as a worker's useful concurrency, and requests queueing for it,
    # serve more than a larger one (bench/RESULTS.md).
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Neon suspends an idle compute after five minutes and its pooler drops idle
    # connections; recycling sooner keeps connections from ageing into that.
    db_pool_recycle_seconds: int = Field(default=240, ge=1)
    # A statement running longer is cancelled by PostgreSQL and answered 503, so one slow query
    # or a lock held elsewhere cannot hold a connection (and a client) indefinitely. 0: no limit.
    db_statement_timeout_seconds: float = Field(default=10.0, ge=0, le=3600)
    db_pooler: DbPooler = DbPooler.AUTO
    # Server-side prepared statements (psycopg prepares a statement after its fifth use). Unset:
    # on for a direct connection, off behind a transaction pooler, where they reach another
    # client's server connection unless the pooler tracks them (PgBouncer 1.21+ with
    # `max_prepared_statements`, as Neon's does): true says it does; false: off everywhere.
    db_prepared_statements: bool | None = None
    # Without it a database host that drops packets makes each new connection wait minutes.
    db_connect_timeout_seconds: int = Field(default=5, ge=2, le=300)
    migrate_on_start: bool = True
    # On SIGTERM, requests in flight get this long to finish before the worker exits.
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # On SIGTERM, first this long of serving on while /ready answers 503 and every response
    # closes its connection, so that a balancer's health check takes the instance out before
    # it stops accepting (shared/drain.py). 0: no drain.
    drain_seconds: float = Field(default=10.0, ge=0, le=600)
    # With WORKERS > 1, uvicorn's supervisor kills a worker that does not answer its health
    # check within this long, starting or serving. uvicorn's 5 s killed workers that were still
    # importing on a busy machine; a slow start must never be mistaken for a hung worker.
    worker_healthcheck_timeout_seconds: int = Field(default=60, ge=5, le=3600)

    better_auth_secret: SecretStr | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256"]
    better_auth_url: str | None = None
    better_auth_jwks_url: str | None = None
    jwks_algorithms: Annotated[list[str], NoDecode] = ["EdDSA"]
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    # A token naming an unknown key may refetch the key set at most this often, so a rotation
    # is seen within seconds while garbage `kid`s cannot hammer the frontend.
    jwks_refetch_interval_seconds: float = Field(default=5.0, ge=0)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # Better Auth session tokens (its bearer plugin), checked by asking the frontend's
    # get-session. A check is kept this long, so a sign-out is honoured within it.
    better_auth_session_tokens: bool = False
    better_auth_session_cache_seconds: float = Field(default=30.0, ge=0, le=300)
    # A refused token is refused again without asking for this long.
    better_auth_session_refused_seconds: float = Field(default=30.0, ge=0, le=3600)
    better_auth_session_cache_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    # Lookups of tokens not in the caches, per worker: a token bucket refilled at this rate and
    # holding at most the burst, so made-up tokens cannot flood the frontend.
    better_auth_session_lookups_per_second: float = Field(default=20.0, gt=0, le=10_000)
    better_auth_session_lookup_burst: int = Field(default=100, ge=1, le=100_000)
    better_auth_session_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # JWTs that verified are remembered, per worker, until their `exp`: at most this many
    # (least recently used dropped first). 0: every request checks its token's signature.
    jwt_cache_entries: int = Field(default=10_000, ge=0, le=1_000_000)

    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None

    _split_lists = field_validator(
        "jwt_algorithms", "jwks_algorithms", "cors_origins", mode="before"
    )(_comma_separated)

    @field_validator("jwt_algorithms")
    @classmethod
    def _only_shared_secret_algorithms(cls, algorithms: list[str]) -> list[str]:
        unknown = sorted(set(algorithms) - SHARED_SECRET_ALGORITHMS)
        if unknown or not algorithms:
            allowed = ", ".join(sorted(SHARED_SECRET_ALGORITHMS))
            raise ValueError(f"must be a non-empty list of {allowed}; got {algorithms}")
        return algorithms

    @field_validator("jwks_algorithms")
    @classmethod
    def _only_public_key_algorithms(cls, algorithms: list[str]) -> list[str]:
        unknown = sorted(set(algorithms) - PUBLIC_KEY_ALGORITHMS)
        if unknown or not algorithms:
            allowed = ", ".join(sorted(PUBLIC_KEY_ALGORITHMS))
            raise ValueError(f"must be a non-empty list of {allowed}; got {algorithms}")
        return algorithms

    @field_validator("better_auth_url", "better_auth_jwks_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/") if url is not None else None

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        # Browsers send the bearer token with credentials, which a wildcard would expose.
        if "*" in origins:
            raise ValueError("list the frontend origins explicitly; '*' is not allowed")
        return origins

    @field_validator(
        "jwt_issuer",
        "jwt_audience",
        "database_url",
        "better_auth_secret",
        "better_auth_url",
        "better_auth_jwks_url",
        "log_format",
        "db_prepared_statements",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # `.env.example` lists every variable, many left empty: empty means "use the default".
        return None if value == "" else value

    @field_validator("embedded_postgres_dir", mode="before")
    @classmethod
    def _empty_means_default_folder(cls, value: object) -> object:
        return DEFAULT_EMBEDDED_POSTGRES_DIR if value == "" else value

    @field_validator("db_pooler", mode="before")
    @classmethod
    def _any_case_pooler(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _production_needs_real_configuration(self) -> "Settings":
        problems = []
        if self.better_auth_session_tokens and self.better_auth_url is None:
            problems.append(
                "BETTER_AUTH_SESSION_TOKENS=true needs BETTER_AUTH_URL: session tokens are "
                f"checked by asking the frontend's {BETTER_AUTH_SESSION_PATH}"
            )
        secret = self.better_auth_secret
        if secret is not None and len(secret.get_secret_value().encode()) < MINIMUM_SECRET_BYTES:
            problems.append(
                f"BETTER_AUTH_SECRET must be at least {MINIMUM_SECRET_BYTES} bytes "
                "(generate one with: openssl rand -base64 32)"
            )
        if self.app_env is Environment.PRODUCTION:
            if self.database_url is None:
                problems.append(
                    "DATABASE_URL is required in production (the embedded PostgreSQL is for "
                    "development)"
                )
            if secret is None and self.jwks_url is None:
                problems.append(
                    "BETTER_AUTH_URL (or BETTER_AUTH_JWKS_URL) or BETTER_AUTH_SECRET is required "
                    "in production, to verify tokens"
                )
            elif secret is not None and secret.get_secret_value() == DEVELOPMENT_SECRET:
                problems.append("BETTER_AUTH_SECRET must not be the development secret")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.app_env is Environment.PRODUCTION

    @property
    def jwks_url(self) -> str | None:
        """Where Better Auth publishes its public keys, if tokens are verified against them."""
        if self.better_auth_jwks_url is not None:
            return self.better_auth_jwks_url
        if self.better_auth_url is not None:
            return self.better_auth_url + BETTER_AUTH_JWKS_PATH
        return None

    @property
    def session_lookup_url(self) -> str | None:
        """Where Better Auth session tokens are checked, if they are accepted."""
        if self.better_auth_session_tokens and self.better_auth_url is not None:
            return self.better_auth_url + BETTER_AUTH_SESSION_PATH
        return None

    @property
    def jwks_issuer(self) -> str | None:
        return self.jwt_issuer or self.better_auth_url

    @property
    def jwks_audience(self) -> str | None:
        return self.jwt_audience or self.better_auth_url

    @property
    def jwt_secret(self) -> SecretStr | None:
        """The HS256 secret, if shared-secret tokens are accepted: the configured one, or in
        development with no key set configured, a built-in one so the service runs as it is."""
        if self.better_auth_secret is not None:
            return self.better_auth_secret
        if not self.is_production and self.jwks_url is None:
            return SecretStr(DEVELOPMENT_SECRET)
        return None

    @property
    def renders_json_logs(self) -> bool:
        if self.log_format is None:
            return self.is_production
        return self.log_format == "json"
