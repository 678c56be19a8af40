"""The request path stays lean: one SQL statement per operation (no BEGIN, no COMMIT, no ping),
none for a read's user."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.factories import TaskFactory
from tests.support import DatabaseActivity, observe_database


@pytest.fixture
def activity(monkeypatch) -> Iterator[DatabaseActivity]:
    with observe_database(monkeypatch) as activity:
        yield activity


@contextmanager
def _counting(activity: DatabaseActivity) -> Iterator[list[str]]:
    """The statements sent during the block, in the list it yields (filled at its end)."""
    activity.clear()
    seen: list[str] = []
    yield seen
    seen.extend(activity.verbs)


def test_each_operation_costs_one_statement(client, auth_headers, activity):
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
        with _counting(activity) as seen:
            assert operation().status_code < 300, name
        assert len(seen) == 1, (name, seen)


def test_the_first_write_adds_the_users_row_once(client, auth_headers, activity):
    headers = auth_headers("alice", email="a@example.com")

    with _counting(activity) as seen:
        client.post("/api/alice/tasks", json={"title": "first"}, headers=headers)
    # The person's row and their task in one transaction: a refused write leaves neither.
    assert seen == ["BEGIN", "INSERT", "UPDATE", "INSERT", "COMMIT"]

    with _counting(activity) as seen:
        client.post("/api/alice/tasks", json={"title": "second"}, headers=headers)
    assert seen == ["INSERT"]

    renamed = auth_headers("alice", email="new@example.com")
    with _counting(activity) as seen:
        client.post("/api/alice/tasks", json={"title": "third"}, headers=renamed)
    assert seen == ["BEGIN", "INSERT", "UPDATE", "INSERT", "COMMIT"]


def test_a_refused_request_costs_no_statement(client, auth_headers, activity):
    with _counting(activity) as seen:
        client.get("/api/alice/tasks", headers={"Authorization": "Bearer nope"})
        client.get("/api/bob/tasks", headers=auth_headers("alice"))
        client.post("/api/alice/tasks", json={"title": ""}, headers=auth_headers("alice"))
        client.post(
            "/api/alice/tasks",
            json={"title": "x", "priority": "high"},
            headers=auth_headers("alice"),
        )
    assert seen == []
    assert activity.checkouts == 0


def test_a_statement_alone_commits_by_itself_and_a_first_write_shares_its_transaction(
    client, auth_headers, activity
):
    headers = auth_headers("alice")
    with _counting(activity):
        task = client.post("/api/alice/tasks", json={"title": "x"}, headers=headers).json()
    first_write = [(sent.verb, sent.in_transaction) for sent in activity.statements]
    with _counting(activity):
        client.get("/api/alice/tasks", headers=headers)
        client.get(f"/api/alice/tasks/{task['id']}", headers=headers)
        client.put(f"/api/alice/tasks/{task['id']}", json={"title": "y"}, headers=headers)
    later = [(sent.verb, sent.in_transaction) for sent in activity.statements]

    # BEGIN is sent outside a transaction, what follows it inside, up to its COMMIT.
    assert first_write == [
        ("BEGIN", False),
        ("INSERT", True),
        ("UPDATE", True),
        ("INSERT", True),
        ("COMMIT", True),
    ]
    # A read's one statement, and a known person's write, need no BEGIN and COMMIT round trips.
    assert later == [("SELECT", False), ("SELECT", False), ("UPDATE", False)]
