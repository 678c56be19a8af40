"""The API called the way Next.js frontends written against it really call it.

Each test replays a request shape seen in public Phase II frontends: a fetch wrapper that sets
`Content-Type: application/json` on every request, a form that posts every field it has
(`due_date: null`, `user_id` of the signed-in person), an edit form that sends back the task it
received, a kanban board that PUTs `{completed}` alone, a toggle button with no body or `{}`,
and a list page that never follows `Link`.
Each asserts the status, the body and the rows.
"""

import pytest

from shared.db import Task
from tests.factories import TaskFactory, UserFactory, insert_tasks
from tests.support import (
    assert_problem,
    assert_task_matches,
    stored_task,
    stored_task_or_none,
    task_count,
)

LIST = "/api/alice/tasks"


@pytest.fixture
def fetch_headers(auth_headers) -> dict[str, str]:
    """What a typical `apiFetch` wrapper sends on every request, whatever the method."""
    return {
        **auth_headers("alice"),
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def _alices_task(**fields) -> Task:
    return TaskFactory(owner__id="alice", title="Buy milk", description="Two litres", **fields)


def test_a_get_with_a_json_content_type_and_no_body_lists_and_reads(client, fetch_headers):
    task = _alices_task()

    listed = client.get(LIST, headers=fetch_headers)
    one = client.get(f"{LIST}/{task.id}", headers=fetch_headers)

    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()] == [task.id]
    assert one.status_code == 200, one.text
    assert_task_matches(one.json(), task)


def test_a_delete_with_a_json_content_type_and_no_body_deletes(client, db, fetch_headers):
    task = _alices_task()

    response = client.delete(f"{LIST}/{task.id}", headers=fetch_headers)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert task.id is not None
    assert stored_task_or_none(db, task.id) is None


@pytest.mark.parametrize(
    "content",
    [pytest.param(None, id="no body"), pytest.param(b"{}", id="{}")],
)
def test_a_toggle_button_with_no_body_or_an_empty_object_toggles(
    client, db, fetch_headers, content
):
    task = _alices_task(completed=False)

    response = client.patch(f"{LIST}/{task.id}/complete", content=content, headers=fetch_headers)

    assert response.status_code == 200, response.text
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert stored.completed is True
    assert stored.version == 2
    assert_task_matches(response.json(), stored)


def test_a_create_form_with_null_extras_and_its_own_user_id_creates_the_task(
    client, db, fetch_headers
):
    form = {
        "title": "Buy milk",
        "description": "",
        "completed": False,
        "due_date": None,
        "priority": None,
        "user_id": "alice",
    }

    response = client.post(LIST, json=form, headers=fetch_headers)

    assert response.status_code == 201, response.text
    task = stored_task(db, response.json()["id"])
    assert (task.user_id, task.title, task.description, task.completed) == (
        "alice",
        "Buy milk",
        "",
        False,
    )
    assert_task_matches(response.json(), task)
    assert "due_date" not in response.json()


def test_a_form_with_a_priority_is_refused_naming_it_and_stores_nothing(client, db, fetch_headers):
    response = client.post(
        LIST,
        json={"title": "Buy milk", "priority": "high", "due_date": None},
        headers=fetch_headers,
    )

    problem = assert_problem(response, 400, invalid_fields={"priority"})
    assert problem["detail"] == "priority: not a field of this API"
    assert problem["errors"] == [
        {
            "location": "body",
            "field": "priority",
            "message": "not a field of this API",
            "type": "extra_forbidden",
        }
    ]
    assert task_count(db) == 0


def test_an_edit_form_sends_back_the_task_it_received_with_its_changes(client, db, fetch_headers):
    task = _alices_task()
    url = f"{LIST}/{task.id}"
    received = client.get(url, headers=fetch_headers).json()
    assert set(received) >= {"id", "user_id", "created_at", "updated_at"}

    edited = {**received, "title": "Buy oat milk", "description": None, "due_date": None}
    response = client.put(url, json=edited, headers=fetch_headers)

    assert response.status_code == 200, response.text
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert (stored.id, stored.user_id, stored.title, stored.description, stored.completed) == (
        task.id,
        "alice",
        "Buy oat milk",
        None,
        False,
    )
    assert stored.created_at == task.created_at
    assert stored.updated_at > task.updated_at
    assert_task_matches(response.json(), stored)


def test_an_edit_form_with_if_match_from_the_task_it_received(client, db, fetch_headers):
    task = _alices_task()
    url = f"{LIST}/{task.id}"
    received = client.get(url, headers=fetch_headers)

    first = client.put(
        url,
        json={**received.json(), "title": "First edit"},
        headers={**fetch_headers, "If-Match": received.headers["etag"]},
    )
    stale = client.put(
        url,
        json={**received.json(), "title": "Stale edit"},
        headers={**fetch_headers, "If-Match": received.headers["etag"]},
    )

    assert first.status_code == 200, first.text
    assert_problem(stale, 412)
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert stored.title == "First edit"


@pytest.mark.parametrize("state", [True, False])
def test_a_kanban_board_puts_the_state_alone(client, db, fetch_headers, state):
    task = _alices_task(completed=not state)

    response = client.put(f"{LIST}/{task.id}", json={"completed": state}, headers=fetch_headers)

    assert response.status_code == 200, response.text
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == (
        "Buy milk",
        "Two litres",
        state,
    )
    assert response.headers["etag"] == f'"{stored.version}"' == '"2"'
    assert_task_matches(response.json(), stored)


def test_an_empty_put_changes_nothing_and_answers_the_task(client, db, fetch_headers):
    task = _alices_task()

    response = client.put(f"{LIST}/{task.id}", json={}, headers=fetch_headers)

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert (stored.version, stored.updated_at) == (1, task.updated_at)
    assert_task_matches(response.json(), stored)


def test_a_list_page_that_never_pages_sees_all_120_tasks(client, db, fetch_headers):
    insert_tasks(db, UserFactory(id="alice"), 120)

    response = client.get(LIST, headers=fetch_headers)

    assert response.status_code == 200, response.text
    assert len(response.json()) == 120
    assert {task["user_id"] for task in response.json()} == {"alice"}
    assert response.headers["x-total-count"] == "120"
    assert "link" not in response.headers
    assert task_count(db) == 120


def test_every_invalid_field_is_named_with_its_reason_in_the_detail(client, db, fetch_headers):
    task = _alices_task()

    response = client.put(
        f"{LIST}/{task.id}",
        json={"title": "t" * 201, "description": "d" * 1001, "priority": "high", "due_date": None},
        headers=fetch_headers,
    )

    problem = assert_problem(response, 400, invalid_fields={"title", "description", "priority"})
    assert problem["detail"] == (
        "title: at most 200 characters; description: at most 1000 characters; "
        "priority: not a field of this API"
    )
    assert task.id is not None
    stored = stored_task(db, task.id)
    assert stored.title == "Buy milk"
