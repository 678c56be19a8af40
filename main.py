"""The Tasks API.

uv run main.py                     serve (migrating the database as it starts)
uv run main.py token <user_id>     print a token the configured server accepts
uv run main.py migrate             bring the database to the latest revision, then exit

With DATABASE_URL unset, `serve` and `migrate` start an embedded PostgreSQL first (its data in
EMBEDDED_POSTGRES_DIR, `.postgres/` by default, kept between runs) and stop it when they end.
"""

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import httpx2
import structlog
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from features.registry import include_public_routers, include_task_routers
from migrations import head_revision, upgrade_database
from shared.auth import KnownUsers
from shared.config import Settings
from shared.db import (
    AppState,
    Database,
    DatabaseUrlError,
    app_state,
    async_database_url,
    configured_database_url,
    libpq_url,
    purge_expired_idempotency_keys,
)
from shared.db.embedded import embedded_postgres
from shared.db_failures import log_database_failure
from shared.docs import install_documentation
from shared.drain import Drain, Supervisor, drain_before_stopping
from shared.edge import EdgeMiddleware
from shared.logging import configure_logging, document_request_id
from shared.problems import install_problem_handlers, problem_openapi
from shared.tokens import create_token_verifier, mint_token

API_DESCRIPTION = """Each person's todo list, for the frontend's REST calls.

Every `/api/` route needs `Authorization: Bearer <token>`, a token from the frontend's Better Auth
(a JWT, or a session token where configured) whose user is the `{user_id}` of the path. Errors
are RFC 9457 problem details (`application/problem+json`) carrying the request id that
`X-Request-ID` also returns."""

PURGE_INTERVAL_SECONDS = 3600

log = structlog.get_logger()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application from settings (read from the environment when not given)."""
    settings = settings or Settings()
    configure_logging(settings)
    database = Database(settings)
    # For Better Auth's key set: one client, so connections to the frontend are reused.
    http_client = httpx2.AsyncClient(follow_redirects=False)
    verifier = create_token_verifier(settings, http_client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info(
            "app.started",
            environment=settings.app_env.value,
            database=libpq_url(settings).render_as_string(hide_password=True),
            shared_secret_tokens=verifier.shared_secret is not None,
            jwks_url=verifier.public_keys.key_set.url if verifier.public_keys else None,
            **database.plan.log_fields(),
        )
        await database.open()
        upkeep = asyncio.create_task(_keep_the_database(app, settings))
        # Everything built so far (modules, routes, the middleware stack Starlette built before
        # calling this, the OpenAPI document, pools, caches) lives as long as the process: out of
        # the collector's generations, full collections stop walking it while serving. No
        # gc.collect() first: start-up leaves about 60 cyclic objects, and a full collection
        # would add 70 ms or more to each worker's start.
        gc.freeze()
        yield
        # Back into the collector, so a process that starts apps one after another (the tests)
        # can collect what a stopped one leaves.
        gc.unfreeze()
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
        await http_client.aclose()
        await database.close()
        log.info("app.stopped")

    app = FastAPI(
        title="Tasks API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served by install_documentation, from the service's own assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    state = AppState(
        database=database,
        known_users=KnownUsers(),
        schema_revision=head_revision(),
        schema_ready=not settings.migrate_on_start,
        drain=Drain(settings.drain_seconds),
    )
    state.install(app)

    install_problem_handlers(app)
    include_public_routers(app.router)
    # Public too: /docs, /redoc and their assets (the OpenAPI document itself is FastAPI's).
    install_documentation(app)
    include_task_routers(app.router)

    # One pass (shared/edge.py), in this order: CORS, the request's id and log line, the header
    # and body limits, the token, HEAD as GET, and only then the routes; every response gets
    # the security headers (and, while draining, `Connection: close`). What a browser may send
    # and read is what the OpenAPI document declares, read when the middleware stack is built,
    # once every route is in.
    app.add_middleware(
        EdgeMiddleware,
        verifier=verifier,
        drain=state.drain,
        production=settings.is_production,
        document=lambda: app.openapi(),
        cors_origins=settings.cors_origins,
    )

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_request_id(problem_openapi(FastAPI.openapi(app)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _keep_the_database(app: FastAPI, settings: Settings) -> None:
    """Migrate first if asked (the purge needs the tables), then purge expired keys hourly."""
    state = app_state(app)
    if not state.schema_ready:
        await _migrate_until_done(state, settings)
    await _purge_idempotency_keys_hourly(state.database)


async def _migrate_until_done(state: AppState, settings: Settings) -> None:
    """Bring the database to this code's schema, waiting for it if it is down: the service
    starts anyway and becomes ready when the database returns."""
    delay = 1.0
    while True:
        try:
            # Alembic is synchronous; a thread keeps the event loop answering meanwhile.
            await asyncio.to_thread(upgrade_database, configured_database_url(settings))
        except Exception as error:
            # Down, refused (a password, TLS, pg_hba) or a migration that failed: the log line
            # says which, with the database's SQLSTATE and message.
            log_database_failure("database.migration_failed", error, retry_in_seconds=delay)
        else:
            state.schema_ready = True
            log.info("database.migrated", revision=state.schema_revision)
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def _purge_idempotency_keys_hourly(database: Database) -> None:
    """Delete expired idempotency keys now and every hour, for as long as the app runs."""
    while True:
        try:
            async with database.session() as session:
                purged = await purge_expired_idempotency_keys(session)
            if purged:
                log.info("idempotency_keys.purged", count=purged)
        except Exception as error:
            # The database may be down for a while; the next round tries again.
            log_database_failure("idempotency_keys.purge_failed", error)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def create_served_app() -> FastAPI:
    """The application as `main.py` serves it: SIGTERM drains it before uvicorn stops it
    (shared/drain.py). uvicorn calls this in each worker, after installing its signal handlers."""
    app = create_app()
    drain_before_stopping(app_state(app).drain)
    return app


class _Terminated(BaseException):
    """SIGTERM, raised where the process was (past any `except Exception`), so that what it
    started is stopped on the way out."""


def _raise_terminated(_signal: int, _frame: object) -> None:
    raise _Terminated


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    """The settings with their database: DATABASE_URL's, or an embedded PostgreSQL started for
    the block (and stopped after it) when DATABASE_URL is unset.

    The embedded server's URL also goes into this process's environment: uvicorn's workers read
    their settings from it, so that however many there are, they share the one server."""
    if settings.database_url is not None:
        yield settings
        return
    # uvicorn ends by raising the SIGTERM it handled once more, under the handler it found: the
    # default one would end the process on the spot and leave the embedded server running.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        with embedded_postgres(settings.embedded_postgres_dir) as url:
            os.environ["DATABASE_URL"] = url
            try:
                yield settings.model_copy(update={"database_url": SecretStr(url)})
            finally:
                del os.environ["DATABASE_URL"]
    except _Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        # The server is stopped: now end as SIGTERM would have.
        signal.raise_signal(signal.SIGTERM)


def _serve(settings: Settings) -> None:
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        # Named, not "auto": auto falls back, silently, to asyncio and the pure-Python h11 parser
        # when uvloop or httptools cannot be imported, and every request then costs more.
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "server_header": False,
        # date_header stays on: RFC 9110 asks an origin server with a clock for Date, and uvicorn
        # formats it once a second, not per request (bench/uvicorn_options.py: within the noise).
        # SIGTERM: stop accepting, let requests in flight finish (at most this long), then exit.
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        # With WORKERS > 1: a worker still starting on a busy machine is not a hung one.
        "timeout_worker_healthcheck": settings.worker_healthcheck_timeout_seconds,
    }
    if settings.workers == 1:
        uvicorn.run("main:create_served_app", **options)
        return
    config = uvicorn.Config("main:create_served_app", **options)
    Supervisor(config, sockets=[tcp_listening_socket(config.bind_socket())]).run()


def tcp_listening_socket(bound: socket.socket) -> socket.socket:
    """The workers' shared socket, declared as TCP.

    uvicorn creates it without naming the protocol, and asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections of a socket whose protocol says TCP. With several workers
    every response therefore waited for the client's delayed acknowledgement, 40 ms each."""
    tcp = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    tcp.set_inheritable(True)
    return tcp


def _print_token(settings: Settings, arguments: argparse.Namespace) -> None:
    print(
        mint_token(
            settings,
            arguments.user_id,
            email=arguments.email,
            name=arguments.name,
            lifetime=timedelta(minutes=arguments.minutes),
        )
    )


def _parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py", description="The Tasks API.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the API (the default)")
    commands.add_parser("migrate", help="bring the database to the latest revision")
    token = commands.add_parser("token", help="print a token the configured server accepts")
    token.add_argument("user_id")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--minutes", type=int, default=60, help="lifetime (default 60)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = _parse_arguments(argv)
    try:
        settings = Settings()
        if settings.database_url is not None:
            async_database_url(settings.database_url.get_secret_value())
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            print(f"configuration error: {field + ': ' if field else ''}{message}", file=sys.stderr)
        return 2
    except DatabaseUrlError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if arguments.command == "token":
        if settings.jwt_secret is None:
            print(
                "configuration error: `token` signs with BETTER_AUTH_SECRET, which is not set; "
                "with BETTER_AUTH_URL alone, tokens come from Better Auth's /api/auth/token",
                file=sys.stderr,
            )
            return 2
        _print_token(settings, arguments)
        return 0
    with _database(settings) as with_database:
        if arguments.command == "migrate":
            url = configured_database_url(with_database)
            upgrade_database(url)
            rendered = make_url(url).render_as_string(hide_password=True)
            log.info("database.migrated", database=rendered)
        else:
            _serve(with_database)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
