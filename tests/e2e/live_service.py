"""The real service (`python main.py`) on a fresh PostgreSQL database, for the tests that drive it
from outside the way a frontend does: a browser, a generated TypeScript client."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from migrations import upgrade_database
from shared.db import sync_database_url
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, empty_postgres_database, settings_for_test
from tests.service import Service, running_service


def token_for(user_id: str) -> str:
    """A token the service started here accepts, for `user_id`."""
    settings = settings_for_test(better_auth_secret=TEST_SECRET)
    return mint_token(settings, user_id)


@contextmanager
def service_on_fresh_postgres(admin: Engine, workdir: Path) -> Iterator[tuple[Service, Session]]:
    """The service on a new, migrated database, and a session on that database to check what it
    stored; both gone afterwards, whatever happened."""
    with empty_postgres_database(admin) as url:
        upgrade_database(url)
        engine = create_engine(sync_database_url(url))
        try:
            with (
                running_service(
                    workdir,
                    DATABASE_URL=url,
                    BETTER_AUTH_SECRET=TEST_SECRET,
                    MIGRATE_ON_START="false",
                ) as service,
                Session(engine, expire_on_commit=False) as session,
            ):
                yield service, session
        finally:
            engine.dispose()
