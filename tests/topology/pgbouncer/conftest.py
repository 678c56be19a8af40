"""The service through a real PgBouncer: a fresh database on the suite's PostgreSQL server, a
PgBouncer of the test's own in front of it, and the real service process behind that. After
each test the service's logs must hold no traceback, token or secret."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from shared.db import sync_database_url
from tests import factories
from tests.conftest import empty_postgres_database
from tests.topology.pgbouncer.server import PgBouncer, running_pgbouncer


@pytest.fixture
def direct_url(postgres_admin: Engine) -> Iterator[str]:
    """A new, empty database (its direct URL); dropped after the test."""
    with empty_postgres_database(postgres_admin) as url:
        yield url


@pytest.fixture
def direct_engine(direct_url: str) -> Iterator[Engine]:
    engine = create_engine(sync_database_url(direct_url))
    yield engine
    engine.dispose()


@pytest.fixture
def direct_db(direct_engine: Engine) -> Iterator[Session]:
    """A session straight to the database, for factories and for checking what was stored."""
    with Session(direct_engine, expire_on_commit=False) as session:
        factories.bind(session)
        yield session
        factories.bind(None)


@pytest.fixture
def start_pgbouncer(postgres_server_url: str) -> Iterator[Callable[..., PgBouncer]]:
    """Starts PgBouncers in front of the suite's server (see `running_pgbouncer`); all are
    stopped after the test."""
    started: list = []

    def start(**options: object) -> PgBouncer:
        context = running_pgbouncer(postgres_server_url, **options)  # type: ignore[arg-type]
        started.append(context)
        return context.__enter__()

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
