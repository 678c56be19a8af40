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
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from main import create_app
from shared.config import Settings
from shared.db import Task, User, app_state
from tests.routes import RequestBodies
from tests.support import stored_task, stored_user_or_none


def wait_until_idle(client: TestClient) -> None:
    """Let the app's own start-up work (the idempotency-key purge) give its connection back.

    A request first makes the app's event loop run whatever start-up queued; then no connection
    may stay checked out. Without this, a count of the engine's events could catch the purge.
    """
    client.get("/health")
    assert isinstance(client.app, FastAPI)
    pool = app_state(client.app).engine.sync_engine.pool
    assert isinstance(pool, QueuePool)  # the only pool that counts what is checked out
    deadline = time.monotonic() + 10
    while pool.checkedout():
        assert time.monotonic() < deadline, "the app kept a database connection for 10 s"
        time.sleep(0.01)


@contextmanager
def pool_use(app: FastAPI) -> Iterator[Counter[str]]:
    """Counts the connections the app takes from its pool ("checkout") and opens ("connect")."""
    seen: Counter[str] = Counter()
    engine = app_state(app).engine.sync_engine

    def checkout(*_args: object) -> None:
        seen["checkout"] += 1

    def connect(*_args: object) -> None:
        seen["connect"] += 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "connect", connect)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "connect", connect)


@contextmanager
def statements_sent(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs."""
    seen: list[str] = []
    engine = app_state(app).engine.sync_engine

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


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
