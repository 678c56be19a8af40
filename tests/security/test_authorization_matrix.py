"""OWASP API1 (object level) and API3 (property level) authorization, route by route.

Alice holds a real token; Bob's task is the target. Another person's path is refused before any
SQL is sent; another person's task id on one's own path looks exactly like a missing task. After
each refusal, Bob's rows are compared column by column with what they were before.

The routes come from `features.registry`, and their bodies from the OpenAPI document
(tests/routes.py), so a new slice is covered without editing this file.
"""

import re
from datetime import timedelta

import pytest

from shared.db import utc_now
from tests.factories import TaskFactory, UserFactory
from tests.routes import TASK_ROUTES, TASK_ROUTES_WITH_A_TASK_ID, RequestBodies, Route
from tests.security.conftest import statements_sent, task_columns, user_columns
from tests.support import assert_problem, stored_counts, stored_task, stored_user, task_count

# A task id no one has: what a missing task looks like, to compare with someone else's.
NEVER_USED_ID = 2**62


def _request(client, bodies: RequestBodies, route: Route, *, user: str, task: int, headers: dict):
    return client.request(
        route.method,
        route.url(user_id=user, task_id=task),
        json=bodies.valid(route),
        headers=headers,
    )


@pytest.fixture
def bobs_task(db):
    # Old timestamps and a later version, so that any write at all would show.
    long_ago = utc_now() - timedelta(days=30)
    bob = UserFactory(id="bob", email="bob@example.com", name="Bob")
    return TaskFactory(
        owner=bob, title="bob's secret", description="only bob", created_at=long_ago, version=4
    )


@pytest.mark.parametrize("route", TASK_ROUTES, ids=str)
def test_my_token_on_another_persons_path_is_403_before_any_sql(
    idle_client, db, auth_headers, request_bodies, bobs_task, route
):
    task_before = task_columns(db, bobs_task.id)
    bob_before = user_columns(db, "bob")

    with statements_sent() as sent:
        response = _request(
            idle_client,
            request_bodies,
            route,
            user="bob",
            task=bobs_task.id,
            headers=auth_headers("alice"),
        )

    assert_problem(response, 403)
    assert "bob's secret" not in response.text
    assert sent == []
    assert task_columns(db, bobs_task.id) == task_before
    assert user_columns(db, "bob") == bob_before
    assert user_columns(db, "alice") is None
    assert task_count(db) == 1


@pytest.mark.parametrize("route", TASK_ROUTES_WITH_A_TASK_ID, ids=str)
def test_my_token_on_another_persons_task_id_is_404_like_a_missing_task(
    client, db, auth_headers, request_bodies, bobs_task, route
):
    task_before = task_columns(db, bobs_task.id)
    bob_before = user_columns(db, "bob")
    headers = auth_headers("alice")

    response = _request(
        client, request_bodies, route, user="alice", task=bobs_task.id, headers=headers
    )
    missing = _request(
        client, request_bodies, route, user="alice", task=NEVER_USED_ID, headers=headers
    )

    body = assert_problem(response, 404)
    # Nothing tells Bob's task from one that does not exist: no existence oracle.
    assert body["detail"].replace(str(bobs_task.id), "N") == assert_problem(missing, 404)[
        "detail"
    ].replace(str(NEVER_USED_ID), "N")
    assert "bob's secret" not in response.text
    assert task_columns(db, bobs_task.id) == task_before
    assert user_columns(db, "bob") == bob_before
    assert user_columns(db, "alice") is None


@pytest.mark.parametrize(
    "path_user",
    [
        pytest.param("Alice", id="another case"),
        pytest.param("alice%20", id="trailing space"),
        pytest.param("alice%00", id="trailing NUL"),
        pytest.param("%61lice", id="percent-encoded letter is still alice"),
    ],
)
def test_the_path_must_name_the_tokens_subject_exactly(
    idle_client, db, auth_headers, path_user, bobs_task
):
    with statements_sent() as sent:
        response = idle_client.get(f"/api/{path_user}/tasks", headers=auth_headers("alice"))

    if path_user == "%61lice":
        # Percent-decoding gives the same person, and so the same answer.
        assert response.status_code == 200
        assert response.json() == []
    else:
        assert_problem(response, 403)
        assert sent == []


# What the server sets. Sent, they are ignored (AIP-203: a client may send back what it got),
# whatever they claim: the owner stays the token's subject, the id and times the server's own.
SERVER_SET_FIELDS = {
    "id": 12345,
    "user_id": "bob",
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
}
# Columns that are not fields of the API at all: a value for one is refused, never ignored.
HIDDEN_COLUMNS = {"version": 99, "task_count": 0}


@pytest.mark.parametrize("field", SERVER_SET_FIELDS)
def test_a_server_set_field_on_create_is_ignored_and_the_owner_is_the_tokens_subject(
    client, db, auth_headers, field
):
    UserFactory(id="bob")
    body = {"title": "mine", field: SERVER_SET_FIELDS[field]}

    response = client.post("/api/alice/tasks", json=body, headers=auth_headers("alice"))

    assert response.status_code == 201, response.text
    stored = task_columns(db, response.json()["id"])
    assert stored["user_id"] == "alice"
    assert stored["id"] != SERVER_SET_FIELDS["id"]
    assert stored["created_at"].year > 2020
    assert stored["updated_at"] == stored["created_at"]
    assert task_count(db) == 1
    assert stored_counts(db, "bob") == (0, 0)


@pytest.mark.parametrize("field", HIDDEN_COLUMNS)
def test_a_hidden_column_on_create_is_refused_and_nothing_is_stored(
    client, db, auth_headers, field
):
    body = {"title": "mine", field: HIDDEN_COLUMNS[field]}

    response = client.post("/api/alice/tasks", json=body, headers=auth_headers("alice"))

    problem = assert_problem(response, 400, invalid_fields={field})
    assert problem["detail"] == f"{field}: not a field of this API"
    assert task_count(db) == 0
    assert user_columns(db, "alice") is None


# A body that really changes a task, per route that changes one: a change that changes nothing
# would not show whether the server's fields sent with it were ignored. No schema says what
# changes a task, so this is kept by hand, and the test below fails for a route missing here.
CHANGING_BODIES = {
    "update_task": {"title": "changed"},
    "complete_task": {"completed": True},
}
CHANGES = [
    route for route in TASK_ROUTES_WITH_A_TASK_ID if route.method in {"PUT", "PATCH", "POST"}
]


def _changing_body(route: Route) -> dict:
    if route.operation_id not in CHANGING_BODIES:
        pytest.fail(
            f"{route.operation_id} changes a task: add to CHANGING_BODIES in {__name__} a body "
            "with which it changes one"
        )
    return CHANGING_BODIES[route.operation_id]


def test_the_changes_are_found_in_the_registry_and_each_kept_body_is_for_one():
    assert CHANGES
    assert set(CHANGING_BODIES) <= {route.operation_id for route in CHANGES}


@pytest.mark.parametrize("field", SERVER_SET_FIELDS)
@pytest.mark.parametrize("route", CHANGES, ids=str)
def test_a_server_set_field_on_a_change_is_ignored_and_the_task_stays_where_it_is(
    client, db, auth_headers, field, route
):
    body = _changing_body(route)
    task = TaskFactory(owner__id="alice", title="as it was", version=2)
    bobs = TaskFactory(owner__id="bob", title="bob's")
    before, bobs_before = task_columns(db, task.id), task_columns(db, bobs.id)
    claims = {field: bobs.id if field == "id" else SERVER_SET_FIELDS[field]}

    response = client.request(
        route.method,
        route.url(user_id="alice", task_id=task.id),
        json={**body, **claims},
        headers=auth_headers("alice"),
    )

    assert response.status_code == route.status_code, response.text
    after = task_columns(db, task.id)
    assert {name: after[name] for name in ("id", "user_id", "created_at")} == {
        name: before[name] for name in ("id", "user_id", "created_at")
    }
    assert after["updated_at"] > before["updated_at"]
    assert after["version"] == 3
    assert {**after, **body} == after
    assert task_columns(db, bobs.id) == bobs_before


@pytest.mark.parametrize("field", HIDDEN_COLUMNS)
@pytest.mark.parametrize("route", CHANGES, ids=str)
def test_a_hidden_column_on_a_change_is_refused_and_nothing_changes(
    client, db, auth_headers, field, route
):
    body = _changing_body(route)
    task = TaskFactory(owner__id="alice", title="as it was", version=2)
    before = task_columns(db, task.id)

    response = client.request(
        route.method,
        route.url(user_id="alice", task_id=task.id),
        json={**body, field: HIDDEN_COLUMNS[field]},
        headers=auth_headers("alice"),
    )

    assert_problem(response, 400, invalid_fields={field})
    assert task_columns(db, task.id) == before


def test_the_stored_owner_is_the_tokens_subject(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "mine", "description": "really", "completed": True},
        headers=auth_headers("alice", email="alice@example.com"),
    )

    assert response.status_code == 201
    assert response.json()["user_id"] == "alice"
    assert stored_task(db, response.json()["id"]).user_id == "alice"
    assert stored_user(db, "alice").email == "alice@example.com"
    assert user_columns(db, "bob") is None


def _links(response) -> dict[str, str]:
    header = response.headers.get("link", "")
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


@pytest.fixture
def two_lists(db):
    """Alice's three tasks and Bob's five, with the same words, so any leak would match."""
    now = utc_now()
    alice, bob = UserFactory(id="alice"), UserFactory(id="bob")
    mine = [
        TaskFactory(
            owner=alice,
            title=f"report {n}",
            description="quarterly",
            completed=n == 0,
            created_at=now - timedelta(minutes=n),
        )
        for n in range(3)
    ]
    theirs = [
        TaskFactory(
            owner=bob,
            title=f"report {n}",
            description="quarterly",
            completed=n < 2,
            created_at=now - timedelta(minutes=n, seconds=30),
        )
        for n in range(5)
    ]
    return mine, theirs


@pytest.mark.parametrize(
    ("query", "expected_titles"),
    [
        pytest.param("", ["report 0", "report 1", "report 2"], id="defaults"),
        pytest.param("?status=completed", ["report 0"], id="completed"),
        pytest.param("?status=pending", ["report 1", "report 2"], id="pending"),
        pytest.param("?q=report", ["report 0", "report 1", "report 2"], id="search title"),
        pytest.param("?q=QUARTERLY", ["report 0", "report 1", "report 2"], id="search description"),
        pytest.param("?q=report%203", [], id="search a title only bob has"),
        pytest.param("?sort=title&order=asc", ["report 0", "report 1", "report 2"], id="by title"),
        pytest.param("?sort=updated&offset=1", ["report 1", "report 2"], id="offset"),
    ],
)
def test_a_list_never_shows_or_counts_another_persons_task(
    client, auth_headers, two_lists, query, expected_titles
):
    mine, _ = two_lists

    response = client.get(f"/api/alice/tasks{query}", headers=auth_headers("alice"))

    assert response.status_code == 200
    tasks = response.json()
    assert {task["user_id"] for task in tasks} <= {"alice"}
    assert {task["id"] for task in tasks} <= {task.id for task in mine}
    assert sorted(task["title"] for task in tasks) == expected_titles
    total = len(expected_titles) + (1 if "offset=1" in query else 0)
    assert response.headers["x-total-count"] == str(total)


@pytest.mark.parametrize("sort", ["created", "updated", "title"])
def test_cursor_pages_hold_only_my_tasks_and_count_only_mine(client, auth_headers, two_lists, sort):
    mine, _ = two_lists
    headers = auth_headers("alice")
    url = f"/api/alice/tasks?limit=1&sort={sort}"
    seen: list[int] = []

    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["x-total-count"] == "3"
        seen += [task["id"] for task in response.json()]
        url = _links(response).get("next")
        assert len(seen) <= len(mine), "the pages went on past alice's tasks"

    assert sorted(seen) == sorted(task.id for task in mine)
