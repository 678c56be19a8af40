"""Reading back what the app stored, and checking the shape of its answers."""

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
import psycopg
import psycopg_pool
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from migrations import upgrade_database
from shared.config import Settings
from shared.db import Task, User, UserTaskCount, sync_database_url
from shared.logging import configure_logging
from shared.tokens import SharedSecretVerifier, VerifiedToken
from tests.conftest import empty_postgres_database

TASK_FIELDS = {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"}


def _forget(db: Session) -> None:
    # End any open snapshot and drop cached objects, so reads see what the app committed.
    db.commit()
    db.expunge_all()


def stored_task_or_none(db: Session, task_id: int) -> Task | None:
    """The task as committed now, or None when there is no such row."""
    _forget(db)
    return db.get(Task, task_id)


def stored_task(db: Session, task_id: int) -> Task:
    """The task as committed now; the test fails here when the row is missing."""
    task = stored_task_or_none(db, task_id)
    assert task is not None, f"task {task_id} is not stored"
    return task


def stored_user_or_none(db: Session, user_id: str) -> User | None:
    """The user as committed now, or None when there is no such row."""
    _forget(db)
    return db.get(User, user_id)


def stored_user(db: Session, user_id: str) -> User:
    """The user as committed now; the test fails here when the row is missing."""
    user = stored_user_or_none(db, user_id)
    assert user is not None, f"user {user_id!r} is not stored"
    return user


def stored_counts(db: Session, user_id: str) -> tuple[int, int]:
    """A person's (task, completed) counts as the list reads them: the sums of their slots."""
    _forget(db)
    sums = db.execute(
        select(
            func.coalesce(func.sum(UserTaskCount.task_count), 0),
            func.coalesce(func.sum(UserTaskCount.completed_count), 0),
        ).where(col(UserTaskCount.user_id) == user_id)
    ).one()
    return int(sums[0]), int(sums[1])


def task_count(db: Session) -> int:
    _forget(db)
    return db.scalar(select(func.count()).select_from(Task)) or 0


def user_count(db: Session) -> int:
    _forget(db)
    return db.scalar(select(func.count()).select_from(User)) or 0


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 UTC timestamp as the API writes it, with a `Z`."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def assert_task_matches(body: dict, task: Task) -> None:
    assert set(body) == TASK_FIELDS
    assert body["id"] == task.id
    assert body["user_id"] == task.user_id
    assert body["title"] == task.title
    assert body["description"] == task.description
    assert body["completed"] is task.completed
    assert parse_timestamp(body["created_at"]) == task.created_at
    assert parse_timestamp(body["updated_at"]) == task.updated_at


def assert_problem(
    response: httpx2.Response, status: int, *, invalid_fields: set[str] | None = None
) -> dict:
    """The response is an RFC 9457 problem with this status (naming these invalid fields)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if invalid_fields is not None:
        assert {error["field"] for error in body["errors"]} == invalid_fields
    return body


def log_events(text: str) -> list[dict]:
    """The JSON lines of a log (production's format), parsed; other lines are skipped."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@contextmanager
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    """Everything logged inside the block, as JSON lines in a buffer. Apps configure logging
    as they are made, so make them before entering."""
    captured = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=captured)
    try:
        yield captured
    finally:
        configure_logging(settings)


@contextmanager
def throwaway_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of its own (its URL), for a test that breaks it."""
    with empty_postgres_database(request.getfixturevalue("postgres_admin")) as url:
        upgrade_database(url)
        yield url


def run_sql(url: str, *statements: str) -> None:
    """Run statements on the database at `url` in one transaction, outside the app."""
    engine = create_engine(sync_database_url(url))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def scalar_at(url: str, statement: str) -> object:
    """The one value a query returns, read from the database at `url` outside the app."""
    engine = create_engine(sync_database_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement)).scalar_one()
    finally:
        engine.dispose()


def assert_logged_schema_fault(event: dict, sqlstate: str, words: list[str]) -> None:
    """A log line for a schema fault: an error, with the database's code and its message."""
    assert (event["level"], event["reason"]) == ("error", "fault")
    assert event["sqlstate"] == sqlstate
    for word in words:
        assert word in event["message"], event


def count_shared_secret_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every token the shared-secret verifier really checks (a cached one is not)."""
    checked: list[str] = []
    verify = SharedSecretVerifier.verify

    def counting(self: SharedSecretVerifier, token: str) -> VerifiedToken:
        checked.append(token)
        return verify(self, token)

    monkeypatch.setattr(SharedSecretVerifier, "verify", counting)
    return checked


@dataclass
class SentStatement:
    """A statement the app sent: its SQL, its values, and whether a transaction was open."""

    sql: str
    values: Any
    in_transaction: bool

    @property
    def verb(self) -> str:
        return self.sql.split()[0].upper()


@dataclass
class DatabaseActivity:
    """What the app did with its database while observed (`observe_database`)."""

    statements: list[SentStatement] = field(default_factory=list)
    # Connections handed out by the pool, and new connections opened.
    checkouts: int = 0
    connects: int = 0

    @property
    def verbs(self) -> list[str]:
        return [statement.verb for statement in self.statements]

    def clear(self) -> None:
        self.statements.clear()
        self.checkouts = self.connects = 0


@contextmanager
def observe_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatabaseActivity]:
    """Record every statement the app sends through psycopg, with the transaction state it was
    sent in (BEGIN and COMMIT included), and every connection it takes from its pool or opens.
    The app runs on psycopg directly (shared/db/database.py); these are psycopg's own entry
    points, wrapped for the block."""
    activity = DatabaseActivity()
    execute = psycopg.AsyncCursor.execute
    getconn = psycopg_pool.AsyncConnectionPool.getconn
    connect = psycopg.AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    async def recording_execute(cursor, query, params=None, **kwargs):
        sql = query.decode() if isinstance(query, bytes) else str(query)
        in_transaction = cursor.connection.info.transaction_status != TransactionStatus.IDLE
        activity.statements.append(SentStatement(sql, params, in_transaction))
        return await execute(cursor, query, params, **kwargs)

    async def counting_getconn(pool, *args, **kwargs):
        connection = await getconn(pool, *args, **kwargs)
        activity.checkouts += 1
        return connection

    async def counting_connect(cls, *args, **kwargs):
        activity.connects += 1
        return await connect(cls, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.AsyncCursor, "execute", recording_execute)
        patched.setattr(psycopg_pool.AsyncConnectionPool, "getconn", counting_getconn)
        patched.setattr(psycopg.AsyncConnection, "connect", classmethod(counting_connect))
        yield activity
