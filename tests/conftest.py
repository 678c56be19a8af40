"""The suite runs against a fresh PostgreSQL database; the contract tests (`tests/features/`)
run a second time with the app connecting through a real PgBouncer in transaction mode
(`DB_POOLER=transaction`), factories and checks going direct.

The server is the one at TASKS_TEST_POSTGRES_URL (a superuser's URL; CI points it at the machine's
server) when that is set, otherwise an embedded PostgreSQL of the suite's own, in a temporary
folder deleted afterwards, so the suite never skips for want of PostgreSQL. With
TASKS_TEST_REQUIRE_POSTGRES=1 (set by CI) TASKS_TEST_POSTGRES_URL must be set and reachable.
Each test starts with empty tables and leaves them empty.
"""

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from main import create_app
from migrations import upgrade_database
from shared.config import Settings
from shared.db import IdempotencyKey, Task, User, app_state, sync_database_url
from shared.db.embedded import embedded_postgres
from shared.tokens import mint_token
from tests import factories
from tests.topology.pgbouncer.server import PgBouncer, running_pgbouncer

# Whatever a developer's shell or .env says must not leak into the settings under test.
for _name in Settings.model_fields:
    os.environ.pop(_name.upper(), None)

TEST_SECRET = "test-secret-of-more-than-thirty-two-bytes-0123456789"


def settings_for_test(*, env_file: Path | None = None, **values: Any) -> Settings:
    """Settings from `values` alone: no developer's `.env` is read (unless `env_file` names one)."""
    # `_env_file` is pydantic-settings' own init argument, missing from the signature pyright
    # derives from the fields (a typing gap of the library, not of this call).
    return Settings(_env_file=env_file, **values)  # pyright: ignore[reportCallIssue]


GIVEN_POSTGRES_URL = os.environ.get("TASKS_TEST_POSTGRES_URL") or None
REQUIRE_POSTGRES = os.environ.get("TASKS_TEST_REQUIRE_POSTGRES") == "1"
FEATURE_TESTS = Path(__file__).resolve().parent / "features"
# The contract's tests also run through a transaction pooler; the others need not, so that the
# suite's time does not grow by half.
THROUGH_PGBOUNCER = "pgbouncer"


@dataclass(frozen=True)
class DatabaseUnderTest:
    url: str  # what the app connects to
    engine: Engine  # straight to the database: for factories and for checking what was stored
    pooler: str = "auto"  # the app's DB_POOLER


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def beside_the_contract(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return (
            callspec is not None
            and callspec.params.get("database") == THROUGH_PGBOUNCER
            and not item.path.is_relative_to(FEATURE_TESTS)
        )

    left_out = [item for item in items if beside_the_contract(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not beside_the_contract(item)]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A superuser's URL on the suite's PostgreSQL server: TASKS_TEST_POSTGRES_URL's, or an
    embedded server's, started for the session and deleted with its data afterwards."""
    if GIVEN_POSTGRES_URL is not None:
        yield GIVEN_POSTGRES_URL
        return
    if REQUIRE_POSTGRES:
        pytest.fail("TASKS_TEST_REQUIRE_POSTGRES=1, but TASKS_TEST_POSTGRES_URL names no server")
    with (
        tempfile.TemporaryDirectory(prefix="tasks-test-postgres-") as folder,
        embedded_postgres(Path(folder) / "data", keep_data=False) as url,
    ):
        yield make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin(postgres_server_url: str) -> Iterator[Engine]:
    """A connection to the PostgreSQL server's maintenance database, to create databases."""
    admin = create_engine(sync_database_url(postgres_server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        admin.dispose()
        pytest.fail(f"no PostgreSQL server at TASKS_TEST_POSTGRES_URL: {error.orig}")
    yield admin
    admin.dispose()


@contextmanager
def empty_postgres_database(admin: Engine) -> Iterator[str]:
    """A new, empty database on the server (its URL), dropped afterwards whatever happens."""
    name = f"tasks_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _postgres_database(admin: Engine) -> Iterator[DatabaseUnderTest]:
    with empty_postgres_database(admin) as url:
        upgrade_database(url)
        engine = create_engine(sync_database_url(url))
        try:
            yield DatabaseUnderTest(url, engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def suite_pgbouncer(postgres_server_url: str) -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the suite's PostgreSQL server."""
    with running_pgbouncer(postgres_server_url, pool_mode="transaction") as bouncer:
        yield bouncer


def _pgbouncer_database(admin: Engine, bouncer: PgBouncer) -> Iterator[DatabaseUnderTest]:
    with empty_postgres_database(admin) as direct_url:
        pooled_url = bouncer.url(direct_url)
        upgrade_database(pooled_url)  # migrations, too, work through the pooler
        engine = create_engine(sync_database_url(direct_url))
        try:
            yield DatabaseUnderTest(pooled_url, engine, pooler="transaction")
        finally:
            engine.dispose()


@pytest.fixture(scope="session", params=["postgresql", THROUGH_PGBOUNCER])
def database(request: pytest.FixtureRequest) -> Iterator[DatabaseUnderTest]:
    if request.param == THROUGH_PGBOUNCER:
        yield from _pgbouncer_database(
            request.getfixturevalue("postgres_admin"), request.getfixturevalue("suite_pgbouncer")
        )
    else:
        yield from _postgres_database(request.getfixturevalue("postgres_admin"))


@pytest.fixture(scope="session")
def settings(database: DatabaseUnderTest) -> Settings:
    return settings_for_test(
        database_url=database.url,
        db_pooler=database.pooler,
        better_auth_secret=TEST_SECRET,
        migrate_on_start=False,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def _running_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def db(database: DatabaseUnderTest) -> Iterator[Session]:
    """A session on the test database, for factories and for checking what was stored."""
    # Objects a factory made keep their values after commit: they are what the test arranged.
    with Session(database.engine, expire_on_commit=False) as session:
        factories.bind(session)
        yield session
        factories.bind(None)
    with database.engine.begin() as connection:
        connection.execute(delete(IdempotencyKey))
        connection.execute(delete(Task))
        connection.execute(delete(User))


@pytest.fixture
def client(_running_client: TestClient, app: FastAPI, db: Session) -> Iterator[TestClient]:
    """The app over HTTP, with empty tables before and after the test."""
    yield _running_client
    app_state(app).known_users.clear()


@pytest.fixture
def auth_headers(settings: Settings) -> Callable[..., dict[str, str]]:
    """Headers with a real token for `user_id` (claims such as email and name as keywords)."""

    def headers_for(
        user_id: str, *, lifetime: timedelta = timedelta(minutes=15), **claims: Any
    ) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {mint_token(settings, user_id, lifetime=lifetime, **claims)}"
        }

    return headers_for


@pytest.fixture
def start_service(tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Starts the real service (`python main.py`, production settings) with extra settings and
    stops it after the test; then its logs must hold no token, no secret and, unless the start
    said `tracebacks_expected=True`, no traceback, whatever the test did to it."""
    from tests.service import Service, running_service

    started: list[tuple[Service, bool]] = []
    with ExitStack() as stack:

        def start(
            database_url: str, *, tracebacks_expected: bool = False, **settings: str
        ) -> Service:
            production = {
                "APP_ENV": "production",
                "DATABASE_URL": database_url,
                "BETTER_AUTH_SECRET": TEST_SECRET,
                "MIGRATE_ON_START": "false",
            }
            service = stack.enter_context(running_service(tmp_path, **{**production, **settings}))
            started.append((service, tracebacks_expected))
            return service

        yield start
    for service, tracebacks_expected in started:
        logs = service.logs()
        assert TEST_SECRET not in logs
        assert "eyJ" not in logs  # the start of every JWT's header
        assert tracebacks_expected or "Traceback" not in logs, logs
