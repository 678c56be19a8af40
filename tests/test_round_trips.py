"""The request path stays lean: one SQL statement per operation, none for a read's user."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from shared.db import app_state
from tests.factories import TaskFactory


@pytest.fixture
def statements(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        seen.append(statement.split()[0].upper())

    engine = app_state(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@contextmanager
def _counting(statements: list[str]) -> Iterator[list[str]]:
    statements.clear()
    yield statements


def test_each_operation_costs_one_statement(client, auth_headers, statements):
    headers = auth_headers("alice", email="a@example.com")
    first = client.post("/api/alice/tasks", json={"title": "warm up"}, headers=headers)
    assert first.status_code == 201

    task = TaskFactory(owner__id="alice")
    received = client.get(f"/api/alice/tasks/{task.id}", headers=headers).json()
    operations = {
        "create": lambda: client.post("/api/alice/tasks", json={"title": "x"}, headers=headers),
        "list": lambda: client.get("/api/alice/tasks", headers=headers),
        "get": lambda: client.get(f"/api/alice/tasks/{task.id}", headers=headers),
        "update": lambda: client.put(
            f"/api/alice/tasks/{task.id}", json={"title": "y"}, headers=headers
        ),
        # The task as received, sent back with a change (a frontend's edit form).
        "update, the task sent back": lambda: client.put(
            f"/api/alice/tasks/{task.id}",
            json={**received, "title": "z", "due_date": None},
            headers=headers,
        ),
        # Nothing to change: one read answers the task as it is.
        "update, nothing to change": lambda: client.put(
            f"/api/alice/tasks/{task.id}", json={}, headers=headers
        ),
        "complete, server fields sent back": lambda: client.patch(
            f"/api/alice/tasks/{task.id}/complete",
            json={"completed": True, "id": task.id, "user_id": "alice"},
            headers=headers,
        ),
        "toggle": lambda: client.patch(f"/api/alice/tasks/{task.id}/complete", headers=headers),
        "delete": lambda: client.delete(f"/api/alice/tasks/{task.id}", headers=headers),
    }
    for name, operation in operations.items():
        with _counting(statements) as seen:
            assert operation().status_code < 300, name
        assert len(seen) == 1, (name, seen)


def test_the_first_write_adds_the_users_row_once(client, auth_headers, statements):
    headers = auth_headers("alice", email="a@example.com")

    with _counting(statements) as seen:
        client.post("/api/alice/tasks", json={"title": "first"}, headers=headers)
    assert seen == ["INSERT", "UPDATE", "INSERT"]

    with _counting(statements) as seen:
        client.post("/api/alice/tasks", json={"title": "second"}, headers=headers)
    assert seen == ["INSERT"]

    renamed = auth_headers("alice", email="new@example.com")
    with _counting(statements) as seen:
        client.post("/api/alice/tasks", json={"title": "third"}, headers=renamed)
    assert seen == ["INSERT", "UPDATE", "INSERT"]


def test_a_refused_request_costs_no_statement(client, auth_headers, statements):
    with _counting(statements) as seen:
        client.get("/api/alice/tasks", headers={"Authorization": "Bearer nope"})
        client.get("/api/bob/tasks", headers=auth_headers("alice"))
        client.post("/api/alice/tasks", json={"title": ""}, headers=auth_headers("alice"))
        client.post(
            "/api/alice/tasks",
            json={"title": "x", "priority": "high"},
            headers=auth_headers("alice"),
        )
    assert seen == []


def test_reads_run_outside_a_transaction_and_writes_inside_one(client, auth_headers, app):
    headers = auth_headers("alice")
    task = client.post("/api/alice/tasks", json={"title": "x"}, headers=headers).json()
    autocommit: list[tuple[str, bool]] = []

    def record(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        autocommit.append((statement.split()[0], conn.connection.driver_connection.autocommit))

    engine = app_state(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        client.get("/api/alice/tasks", headers=headers)
        client.get(f"/api/alice/tasks/{task['id']}", headers=headers)
        client.put(f"/api/alice/tasks/{task['id']}", json={"title": "y"}, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    # A read's one statement needs no BEGIN and COMMIT round trips; a write keeps its transaction.
    reads = [mode for verb, mode in autocommit if verb == "SELECT"]
    writes = [mode for verb, mode in autocommit if verb == "UPDATE"]
    assert reads == [True, True], autocommit
    assert writes == [False], autocommit
