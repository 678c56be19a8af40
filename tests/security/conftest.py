"""What the security tests share: apps under other token configurations, and ways to prove that a
refused request cost the database nothing."""

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from main import create_app
from shared.config import Settings
from shared.db import Task, User, app_state
from tests.routes import RequestBodies
from tests.support import observe_database, stored_task, stored_user_or_none


def wait_until_idle(client: TestClient) -> None:
    """Let the app's own start-up work (the idempotency-key purge) give its connection back.

    A request first makes the app's event loop run whatever start-up queued; then no connection
    may stay checked out. Without this, a count of the app's database use could catch the purge.
    """
    client.get("/health")
    assert isinstance(client.app, FastAPI)
    database = app_state(client.app).database
    deadline = time.monotonic() + 10
    while (stats := database.stats()).get("pool_size", 0) != stats.get("pool_available", 0):
        assert time.monotonic() < deadline, "the app kept a database connection for 10 s"
        time.sleep(0.01)


@contextmanager
def pool_use() -> Iterator[Counter[str]]:
    """Counts the connections the app takes from its pool ("checkout") and opens ("connect"),
    filled in when the block ends."""
    seen: Counter[str] = Counter()
    with pytest.MonkeyPatch.context() as patch, observe_database(patch) as activity:
        yield seen
    seen.update(
        {
            name: count
            for name, count in (("checkout", activity.checkouts), ("connect", activity.connects))
            if count
        }
    )


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs, filled in when it ends."""
    seen: list[str] = []
    with pytest.MonkeyPatch.context() as patch, observe_database(patch) as activity:
        yield seen
    seen.extend(statement.sql for statement in activity.statements)


@contextmanager
def running_client(settings: Settings) -> Iterator[TestClient]:
    """A second app on the test database, configured by `settings`, idle and ready."""
    with TestClient(create_app(settings)) as client:
        wait_until_idle(client)
        yield client


@pytest.fixture(scope="session")
def request_bodies(app: FastAPI) -> RequestBodies:
    """The simplest valid body of each operation, from the app's OpenAPI document."""
    return RequestBodies(app.openapi())


@pytest.fixture
def idle_client(client: TestClient) -> TestClient:
    """The suite's client, with the app's start-up work finished, for counting its events."""
    wait_until_idle(client)
    return client


def task_columns(db: Session, task_id: int) -> dict[str, Any]:
    """Every column of a task as stored now, to compare before and after a request; the test
    fails here when the task is gone."""
    task = stored_task(db, task_id)
    return {name: getattr(task, name) for name in Task.model_fields}


def user_columns(db: Session, user_id: str) -> dict[str, Any] | None:
    user = stored_user_or_none(db, user_id)
    return None if user is None else {name: getattr(user, name) for name in User.model_fields}
