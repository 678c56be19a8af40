from datetime import timedelta

import pytest

from shared.db import utc_now
from tests.factories import TaskFactory
from tests.support import assert_problem, assert_task_matches, parse_timestamp, stored_task

AN_HOUR_AGO = utc_now() - timedelta(hours=1)


def _task_of_alice(completed: bool = False):
    return TaskFactory(
        owner__id="alice",
        title="Old title",
        description="Old description",
        completed=completed,
        created_at=AN_HOUR_AGO,
    )


def test_replaces_every_given_field_and_moves_updated_at(client, db, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "New title", "description": "New description", "completed": True},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200, response.text
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == (
        "New title",
        "New description",
        True,
    )
    assert stored.created_at == AN_HOUR_AGO
    assert stored.updated_at > AN_HOUR_AGO
    assert_task_matches(response.json(), stored)


def test_omitted_fields_keep_their_values(client, db, auth_headers):
    task = _task_of_alice(completed=True)

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "Only the title"},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == (
        "Only the title",
        "Old description",
        True,
    )


def test_a_null_description_clears_it(client, db, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "Old title", "description": None},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200
    assert response.json()["description"] is None
    stored = stored_task(db, task.id)
    assert stored.description is None


def test_only_the_state_may_be_sent(client, db, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}", json={"completed": True}, headers=auth_headers("alice")
    )

    assert response.status_code == 200, response.text
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == (
        "Old title",
        "Old description",
        True,
    )
    assert stored.updated_at > AN_HOUR_AGO
    assert stored.version == 2
    assert response.headers["etag"] == '"2"'
    assert_task_matches(response.json(), stored)


def test_only_a_null_description_clears_it_and_keeps_the_rest(client, db, auth_headers):
    task = _task_of_alice(completed=True)

    response = client.put(
        f"/api/alice/tasks/{task.id}", json={"description": None}, headers=auth_headers("alice")
    )

    assert response.status_code == 200, response.text
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == ("Old title", None, True)
    assert_task_matches(response.json(), stored)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"id": 5, "user_id": "alice", "updated_at": "x"}, id="only server fields"),
        pytest.param({"due_date": None}, id="only a null extra"),
    ],
)
def test_a_body_that_changes_nothing_moves_neither_updated_at_nor_the_etag(
    client, db, auth_headers, body
):
    task = _task_of_alice()
    url = f"/api/alice/tasks/{task.id}"

    response = client.put(url, json=body, headers={**auth_headers("alice"), "If-Match": '"1"'})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == (
        "Old title",
        "Old description",
        False,
    )
    assert (stored.version, stored.updated_at) == (1, AN_HOUR_AGO)
    assert_task_matches(response.json(), stored)


def test_an_empty_body_with_a_stale_if_match_is_412(client, db, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={},
        headers={**auth_headers("alice"), "If-Match": '"7"'},
    )

    assert_problem(response, 412)
    stored = stored_task(db, task.id)
    assert stored.version == 1


def test_an_empty_body_for_a_missing_or_another_persons_task_is_404(client, auth_headers):
    bobs = TaskFactory(owner__id="bob")

    theirs = client.put(f"/api/alice/tasks/{bobs.id}", json={}, headers=auth_headers("alice"))
    missing = client.put("/api/alice/tasks/987654", json={}, headers=auth_headers("alice"))

    assert_problem(theirs, 404)
    assert_problem(missing, 404)


def test_the_task_received_may_be_sent_back_with_a_change(client, db, auth_headers):
    task = _task_of_alice()
    url = f"/api/alice/tasks/{task.id}"
    received = client.get(url, headers=auth_headers("alice")).json()

    response = client.put(
        url,
        json={**received, "title": "Edited", "id": 1, "user_id": "bob"},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200, response.text
    stored = stored_task(db, task.id)
    assert (stored.id, stored.user_id, stored.title, stored.description) == (
        task.id,
        "alice",
        "Edited",
        "Old description",
    )
    assert stored.created_at == AN_HOUR_AGO
    assert stored.updated_at > AN_HOUR_AGO
    assert_task_matches(response.json(), stored)


def test_updated_at_moves_even_when_the_content_is_the_same(client, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}", json={"title": "Old title"}, headers=auth_headers("alice")
    )

    assert parse_timestamp(response.json()["updated_at"]) > AN_HOUR_AGO


@pytest.mark.parametrize(
    ("body", "invalid_field"),
    [
        pytest.param({"title": None}, "title", id="title null"),
        pytest.param({"title": ""}, "title", id="title empty"),
        pytest.param({"title": "  "}, "title", id="title blank"),
        pytest.param({"title": "t" * 201}, "title", id="title too long"),
        pytest.param({"title": ["a"]}, "title", id="title a list"),
        pytest.param(
            {"title": "ok", "description": "d" * 1001}, "description", id="description too long"
        ),
        pytest.param({"title": "ok", "completed": None}, "completed", id="completed null"),
        pytest.param({"title": "ok", "completed": "false"}, "completed", id="completed a string"),
        pytest.param({"title": "ok", "done": True}, "done", id="unknown field"),
        pytest.param({"completed": True, "priority": "high"}, "priority", id="unknown, kanban"),
        pytest.param({"version": 7}, "version", id="version is not a field"),
        pytest.param({"title": "a\x00b"}, "title", id="NUL in title"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(client, db, auth_headers, body, invalid_field):
    task = _task_of_alice()

    response = client.put(f"/api/alice/tasks/{task.id}", json=body, headers=auth_headers("alice"))

    assert_problem(response, 400, invalid_fields={invalid_field})
    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed, stored.updated_at) == (
        "Old title",
        "Old description",
        False,
        AN_HOUR_AGO,
    )


def test_malformed_json_is_400(client, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        content=b'{"title": ',
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    assert_problem(response, 400)


def test_a_missing_task_is_404(client, auth_headers):
    response = client.put(
        "/api/alice/tasks/987654", json={"title": "x"}, headers=auth_headers("alice")
    )

    assert_problem(response, 404)


def test_another_persons_task_is_404_and_unchanged(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob", title="Bob's")

    response = client.put(
        f"/api/alice/tasks/{bobs.id}", json={"title": "Hijacked"}, headers=auth_headers("alice")
    )

    assert_problem(response, 404)
    stored = stored_task(db, bobs.id)
    assert stored.title == "Bob's"


def test_another_persons_path_is_forbidden_and_unchanged(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob", title="Bob's")

    response = client.put(
        f"/api/bob/tasks/{bobs.id}", json={"title": "Hijacked"}, headers=auth_headers("alice")
    )

    assert_problem(response, 403)
    stored = stored_task(db, bobs.id)
    assert stored.title == "Bob's"


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**63)])
def test_a_bad_id_is_400(client, auth_headers, bad_id):
    response = client.put(
        f"/api/alice/tasks/{bad_id}", json={"title": "x"}, headers=auth_headers("alice")
    )

    assert_problem(response, 400, invalid_fields={"task_id"})


def test_without_a_token_it_is_unauthorized(client, db):
    task = _task_of_alice()

    response = client.put(f"/api/alice/tasks/{task.id}", json={"title": "x"})

    assert_problem(response, 401)
    stored = stored_task(db, task.id)
    assert stored.title == "Old title"


def test_each_update_moves_the_version_and_the_etag(client, db, auth_headers):
    task = _task_of_alice()
    url = f"/api/alice/tasks/{task.id}"

    first = client.put(url, json={"title": "one"}, headers=auth_headers("alice"))
    second = client.put(url, json={"title": "two"}, headers=auth_headers("alice"))

    assert (first.headers["etag"], second.headers["etag"]) == ('"2"', '"3"')
    stored = stored_task(db, task.id)
    assert stored.version == 3


@pytest.mark.parametrize("if_match", ['"1"', '"9", "1"', "*"])
def test_a_current_if_match_lets_the_update_through(client, db, auth_headers, if_match):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "Guarded"},
        headers={**auth_headers("alice"), "If-Match": if_match},
    )

    assert response.status_code == 200
    stored = stored_task(db, task.id)
    assert stored.title == "Guarded"


# A version past a BIGINT, and a digit that is not ASCII, are tags this service never issued.
@pytest.mark.parametrize("if_match", ['"2"', 'W/"1"', '"abc"', '"99999999999999999999"', '"²"'])
def test_a_stale_if_match_is_412_and_changes_nothing(client, db, auth_headers, if_match):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "Lost update"},
        # As bytes: a header is Latin-1 on the wire, and "²" is one byte of it.
        headers={**auth_headers("alice"), "If-Match": if_match.encode("latin-1")},
    )

    assert_problem(response, 412)
    stored = stored_task(db, task.id)
    assert (stored.title, stored.version, stored.updated_at) == ("Old title", 1, AN_HOUR_AGO)


def test_an_edit_made_on_another_device_is_not_overwritten(client, db, auth_headers):
    task = _task_of_alice()
    url = f"/api/alice/tasks/{task.id}"
    phone_etag = client.get(url, headers=auth_headers("alice")).headers["etag"]
    laptop_etag = client.get(url, headers=auth_headers("alice")).headers["etag"]

    phone = client.put(
        url,
        json={"title": "From the phone"},
        headers={**auth_headers("alice"), "If-Match": phone_etag},
    )
    laptop = client.put(
        url,
        json={"title": "From the laptop"},
        headers={**auth_headers("alice"), "If-Match": laptop_etag},
    )

    assert phone.status_code == 200
    assert_problem(laptop, 412)
    stored = stored_task(db, task.id)
    assert stored.title == "From the phone"


def test_if_match_on_another_persons_task_is_404(client, auth_headers):
    bobs = TaskFactory(owner__id="bob")

    response = client.put(
        f"/api/alice/tasks/{bobs.id}",
        json={"title": "x"},
        headers={**auth_headers("alice"), "If-Match": '"1"'},
    )

    assert_problem(response, 404)


def test_a_malformed_if_match_is_400(client, auth_headers):
    task = _task_of_alice()

    response = client.put(
        f"/api/alice/tasks/{task.id}",
        json={"title": "x"},
        headers={**auth_headers("alice"), "If-Match": "1"},
    )

    assert_problem(response, 400, invalid_fields={"If-Match"})
