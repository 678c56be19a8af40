import json

import pytest

from tests.factories import TaskFactory, UserFactory
from tests.support import (
    assert_problem,
    assert_task_matches,
    parse_timestamp,
    stored_task,
    stored_user,
    stored_user_or_none,
    task_count,
)


def test_creates_the_task_and_answers_201_with_its_location(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "Buy milk", "description": "Two litres", "completed": False},
        headers=auth_headers("alice", email="alice@example.com", name="Alice"),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/alice/tasks/{body['id']}"
    task = stored_task(db, body["id"])
    assert_task_matches(body, task)
    assert (task.user_id, task.title, task.description, task.completed) == (
        "alice",
        "Buy milk",
        "Two litres",
        False,
    )
    assert parse_timestamp(body["created_at"]) == parse_timestamp(body["updated_at"])


def test_description_and_completed_are_optional(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks", json={"title": "Call mum"}, headers=auth_headers("alice")
    )

    assert response.status_code == 201
    body = response.json()
    assert body["description"] is None
    assert body["completed"] is False
    stored = stored_task(db, body["id"])
    assert stored.description is None


def test_a_task_may_be_created_already_completed(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks", json={"title": "Done", "completed": True}, headers=auth_headers("alice")
    )

    assert response.status_code == 201
    assert response.json()["completed"] is True
    stored = stored_task(db, response.json()["id"])
    assert stored.completed is True


def test_title_of_exactly_200_characters_and_description_of_1000_are_accepted(
    client, db, auth_headers
):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "t" * 200, "description": "d" * 1000},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 201, response.text
    task = stored_task(db, response.json()["id"])
    assert task.description is not None
    assert (len(task.title), len(task.description)) == (200, 1000)


def test_unicode_text_is_stored_as_sent(client, db, auth_headers):
    title = "Café ☕ 日本語 🎉"
    response = client.post("/api/alice/tasks", json={"title": title}, headers=auth_headers("alice"))

    assert response.status_code == 201
    stored = stored_task(db, response.json()["id"])
    assert stored.title == title


def test_the_first_write_creates_the_users_row_from_the_token(client, db, auth_headers):
    assert stored_user_or_none(db, "alice") is None

    client.post(
        "/api/alice/tasks",
        json={"title": "First"},
        headers=auth_headers("alice", email="alice@example.com", name="Alice"),
    )

    user = stored_user(db, "alice")
    assert (user.email, user.name) == ("alice@example.com", "Alice")


def test_a_changed_email_or_name_is_brought_into_the_users_row(client, db, auth_headers):
    existing = UserFactory(id="alice", email="old@example.com", name="Old Name")
    joined_at = existing.created_at

    response = client.post(
        "/api/alice/tasks",
        json={"title": "After rename"},
        headers=auth_headers("alice", email="new@example.com", name="New Name"),
    )

    assert response.status_code == 201
    user = stored_user(db, "alice")
    assert (user.email, user.name) == ("new@example.com", "New Name")
    assert user.created_at == joined_at


def test_an_email_used_by_another_account_does_not_break_requests(client, db, auth_headers):
    UserFactory(id="old-account", email="shared@example.com")

    response = client.post(
        "/api/new-account/tasks",
        json={"title": "Mine"},
        headers=auth_headers("new-account", email="shared@example.com"),
    )

    assert response.status_code == 201
    stored_owner = stored_user(db, "new-account")
    assert stored_owner.email == "shared@example.com"
    stored_owner = stored_user(db, "old-account")
    assert stored_owner.email == "shared@example.com"


def test_ids_are_unique_and_increasing(client, auth_headers):
    headers = auth_headers("alice")
    ids = [
        client.post("/api/alice/tasks", json={"title": f"Task {n}"}, headers=headers).json()["id"]
        for n in range(3)
    ]

    assert ids == sorted(set(ids))


def test_creating_on_another_persons_path_is_forbidden_and_creates_nothing(
    client, db, auth_headers
):
    response = client.post(
        "/api/bob/tasks", json={"title": "Sneaky"}, headers=auth_headers("alice")
    )

    assert_problem(response, 403)
    assert task_count(db) == 0
    assert stored_user_or_none(db, "bob") is None


def test_without_a_token_it_is_unauthorized(client, db):
    response = client.post("/api/alice/tasks", json={"title": "Anonymous"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert task_count(db) == 0


def test_an_unauthenticated_malformed_body_is_still_a_401(client, db):
    response = client.post(
        "/api/alice/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 401)


@pytest.mark.parametrize(
    ("body", "invalid_field"),
    [
        pytest.param({}, "title", id="title missing"),
        pytest.param({"title": ""}, "title", id="title empty"),
        pytest.param({"title": "   \t"}, "title", id="title blank"),
        pytest.param({"title": "t" * 201}, "title", id="title too long"),
        pytest.param({"title": 42}, "title", id="title a number"),
        pytest.param({"title": None}, "title", id="title null"),
        pytest.param(
            {"title": "ok", "description": "d" * 1001}, "description", id="description too long"
        ),
        pytest.param({"title": "ok", "description": 7}, "description", id="description a number"),
        pytest.param({"title": "ok", "completed": "true"}, "completed", id="completed a string"),
        pytest.param({"title": "ok", "completed": 1}, "completed", id="completed a number"),
        pytest.param({"title": "ok", "completed": None}, "completed", id="completed null"),
        pytest.param({"title": "ok", "priority": "high"}, "priority", id="unknown field"),
        pytest.param({"title": "ok", "tags": []}, "tags", id="unknown field, empty list"),
        pytest.param({"title": "ok", "due": ""}, "due", id="unknown field, empty string"),
        pytest.param({"title": "ok", "done": False}, "done", id="unknown field, false"),
        pytest.param({"title": "nul\x00byte"}, "title", id="NUL in title"),
        pytest.param(
            {"title": "ok", "description": "nul\x00"}, "description", id="NUL in description"
        ),
    ],
)
def test_invalid_bodies_are_400_naming_the_field_and_store_nothing(
    client, db, auth_headers, body, invalid_field
):
    response = client.post("/api/alice/tasks", json=body, headers=auth_headers("alice"))

    problem = assert_problem(response, 400, invalid_fields={invalid_field})
    assert problem["errors"][0]["location"] == "body"
    assert task_count(db) == 0


@pytest.mark.parametrize(
    "server_set",
    [
        pytest.param({"id": 99}, id="id"),
        pytest.param({"user_id": "alice"}, id="user_id, the same person"),
        pytest.param({"user_id": "bob"}, id="user_id, another person"),
        pytest.param({"created_at": "2020-01-01T00:00:00Z"}, id="created_at"),
        pytest.param({"updated_at": "not even a timestamp"}, id="updated_at, malformed"),
        pytest.param({"id": None, "user_id": None, "created_at": None}, id="all null"),
    ],
)
def test_fields_the_server_sets_are_ignored(client, db, auth_headers, server_set):
    response = client.post(
        "/api/alice/tasks", json={"title": "ok", **server_set}, headers=auth_headers("alice")
    )

    assert response.status_code == 201, response.text
    body = response.json()
    task = stored_task(db, body["id"])
    assert_task_matches(body, task)
    assert (task.user_id, task.title) == ("alice", "ok")
    assert body["id"] != 99
    assert parse_timestamp(body["created_at"]).year > 2020
    assert stored_user_or_none(db, "bob") is None


def test_unknown_fields_sent_as_null_are_ignored(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "ok", "due_date": None, "priority": None, "tags": None},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 201, response.text
    stored = stored_task(db, response.json()["id"])
    assert_task_matches(response.json(), stored)
    assert task_count(db) == 1


def test_an_unknown_field_is_named_in_the_detail_with_its_reason(client, db, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "t" * 201, "priority": "high", "due_date": None, "user_id": "alice"},
        headers=auth_headers("alice"),
    )

    problem = assert_problem(response, 400, invalid_fields={"title", "priority"})
    assert problem["detail"] == "title: at most 200 characters; priority: not a field of this API"
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("title", "string_too_long"),
        ("priority", "extra_forbidden"),
    ]
    assert task_count(db) == 0


@pytest.mark.parametrize(
    "raw_body",
    [
        pytest.param(b'{"title": "\\ud800"}', id="lone high surrogate"),
        pytest.param(b'{"title": "ok", "description": "\\udfff"}', id="lone low surrogate"),
    ],
)
def test_text_the_database_cannot_store_is_a_400(client, db, auth_headers, raw_body):
    response = client.post(
        "/api/alice/tasks",
        content=raw_body,
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    assert_problem(response, 400)
    assert task_count(db) == 0


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"title": "ok"', "application/json", id="truncated JSON"),
        pytest.param(b"title=ok", "application/json", id="not JSON"),
        pytest.param(b'["ok"]', "application/json", id="a JSON array"),
        pytest.param(b'"ok"', "application/json", id="a JSON string"),
        pytest.param(b"", "application/json", id="no body"),
        pytest.param(b'{"title": "ok"}', "text/plain", id="not sent as JSON"),
        pytest.param(b"\xff\xfe{}", "application/json", id="not UTF-8"),
    ],
)
def test_malformed_bodies_are_a_400_problem(client, db, auth_headers, content, content_type):
    response = client.post(
        "/api/alice/tasks",
        content=content,
        headers={**auth_headers("alice"), "Content-Type": content_type},
    )

    assert_problem(response, 400)
    assert task_count(db) == 0


def test_the_owner_is_always_the_tokens_subject(client, db, auth_headers):
    TaskFactory(user_id=UserFactory(id="bob").id)

    response = client.post(
        "/api/alice/tasks",
        content=json.dumps({"title": "Mine"}),
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    assert response.status_code == 201
    stored = stored_task(db, response.json()["id"])
    assert stored.user_id == "alice"
