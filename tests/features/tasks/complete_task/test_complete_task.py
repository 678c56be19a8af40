from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared.db import utc_now
from tests.factories import TaskFactory
from tests.support import assert_problem, assert_task_matches, stored_task

AN_HOUR_AGO = utc_now() - timedelta(hours=1)


def _task_of_alice(completed: bool):
    return TaskFactory(owner__id="alice", completed=completed, created_at=AN_HOUR_AGO)


def test_without_a_body_it_toggles_back_and_forth(client, db, auth_headers):
    task = _task_of_alice(completed=False)
    url = f"/api/alice/tasks/{task.id}/complete"

    first = client.patch(url, headers=auth_headers("alice"))
    assert first.status_code == 200
    assert first.json()["completed"] is True
    stored = stored_task(db, task.id)
    assert stored.completed is True

    second = client.patch(url, headers=auth_headers("alice"))
    assert second.json()["completed"] is False
    stored = stored_task(db, task.id)
    assert stored.completed is False
    assert stored.updated_at > AN_HOUR_AGO
    assert_task_matches(second.json(), stored)


def test_an_empty_object_toggles_too(client, db, auth_headers):
    task = _task_of_alice(completed=True)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete", json={}, headers=auth_headers("alice")
    )

    assert response.status_code == 200
    stored = stored_task(db, task.id)
    assert stored.completed is False


@pytest.mark.parametrize("state", [True, False])
def test_a_given_state_is_set_and_a_retry_is_harmless(client, db, auth_headers, state):
    task = _task_of_alice(completed=not state)
    url = f"/api/alice/tasks/{task.id}/complete"

    first = client.patch(url, json={"completed": state}, headers=auth_headers("alice"))
    retry = client.patch(url, json={"completed": state}, headers=auth_headers("alice"))

    assert first.status_code == retry.status_code == 200
    assert first.json()["completed"] is retry.json()["completed"] is state
    stored = stored_task(db, task.id)
    assert stored.completed is state
    # The retry changed nothing, so it did not move updated_at either.
    assert retry.json()["updated_at"] == first.json()["updated_at"]


def test_setting_the_state_it_already_has_keeps_updated_at(client, db, auth_headers):
    task = _task_of_alice(completed=True)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        json={"completed": True},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200
    stored = stored_task(db, task.id)
    assert stored.updated_at == AN_HOUR_AGO


def test_setting_leaves_title_and_description_alone(client, db, auth_headers):
    task = TaskFactory(owner__id="alice", title="Keep", description="Me")

    client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        json={"completed": True},
        headers=auth_headers("alice"),
    )

    stored = stored_task(db, task.id)
    assert (stored.title, stored.description, stored.completed) == ("Keep", "Me", True)


@pytest.mark.parametrize(
    ("body", "invalid_field"),
    [
        pytest.param({"completed": "yes"}, "completed", id="completed a string"),
        pytest.param({"completed": 1}, "completed", id="completed a number"),
        pytest.param({"completed": True, "title": "x"}, "title", id="another field"),
        pytest.param({"done": True}, "done", id="unknown field"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(client, db, auth_headers, body, invalid_field):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete", json=body, headers=auth_headers("alice")
    )

    assert_problem(response, 400, invalid_fields={invalid_field})
    stored = stored_task(db, task.id)
    assert stored.completed is False


def test_a_title_sent_here_is_refused_as_not_a_field_of_this_request(client, db, auth_headers):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        json={"completed": True, "title": "Renamed", "priority": 2},
        headers=auth_headers("alice"),
    )

    problem = assert_problem(response, 400, invalid_fields={"title", "priority"})
    assert problem["detail"] == (
        "title: not a field of this request; priority: not a field of this API"
    )
    stored = stored_task(db, task.id)
    assert stored.completed is False


def test_the_server_set_fields_and_null_extras_are_ignored(client, db, auth_headers):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        json={"completed": True, "id": 1, "user_id": "bob", "updated_at": None, "due_date": None},
        headers=auth_headers("alice"),
    )

    assert response.status_code == 200, response.text
    stored = stored_task(db, task.id)
    assert (stored.id, stored.user_id, stored.completed) == (task.id, "alice", True)
    assert_task_matches(response.json(), stored)


def test_a_body_that_is_not_an_object_is_400(client, db, auth_headers):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete", json=[True], headers=auth_headers("alice")
    )

    assert_problem(response, 400)
    stored = stored_task(db, task.id)
    assert stored.completed is False


def test_a_missing_task_is_404(client, auth_headers):
    response = client.patch("/api/alice/tasks/424242/complete", headers=auth_headers("alice"))

    assert_problem(response, 404)


def test_another_persons_task_is_404_and_unchanged(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob", completed=False)

    response = client.patch(f"/api/alice/tasks/{bobs.id}/complete", headers=auth_headers("alice"))

    assert_problem(response, 404)
    stored = stored_task(db, bobs.id)
    assert stored.completed is False


def test_another_persons_path_is_forbidden_and_unchanged(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob", completed=False)

    response = client.patch(f"/api/bob/tasks/{bobs.id}/complete", headers=auth_headers("alice"))

    assert_problem(response, 403)
    stored = stored_task(db, bobs.id)
    assert stored.completed is False


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**63)])
def test_a_bad_id_is_400(client, auth_headers, bad_id):
    response = client.patch(f"/api/alice/tasks/{bad_id}/complete", headers=auth_headers("alice"))

    assert_problem(response, 400, invalid_fields={"task_id"})


def test_without_a_token_it_is_unauthorized(client, db):
    task = _task_of_alice(completed=False)

    response = client.patch(f"/api/alice/tasks/{task.id}/complete")

    assert_problem(response, 401)
    stored = stored_task(db, task.id)
    assert stored.completed is False


def test_a_toggle_moves_the_version_and_a_no_op_set_does_not(client, db, auth_headers):
    task = _task_of_alice(completed=False)
    url = f"/api/alice/tasks/{task.id}/complete"

    toggled = client.patch(url, headers=auth_headers("alice"))
    set_again = client.patch(url, json={"completed": True}, headers=auth_headers("alice"))

    assert toggled.headers["etag"] == set_again.headers["etag"] == '"2"'
    stored = stored_task(db, task.id)
    assert stored.version == 2


# A version past a BIGINT is a tag this service never issued: stale, not a database error.
@pytest.mark.parametrize("if_match", ['"5"', '"99999999999999999999"'])
def test_a_stale_if_match_is_412_and_changes_nothing(client, db, auth_headers, if_match):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        headers={**auth_headers("alice"), "If-Match": if_match},
    )

    assert_problem(response, 412)
    stored = stored_task(db, task.id)
    assert (stored.completed, stored.version) == (False, 1)


def test_a_current_if_match_toggles(client, db, auth_headers):
    task = _task_of_alice(completed=False)

    response = client.patch(
        f"/api/alice/tasks/{task.id}/complete",
        headers={**auth_headers("alice"), "If-Match": '"1"'},
    )

    assert response.status_code == 200
    stored = stored_task(db, task.id)
    assert stored.completed is True


def test_concurrent_toggles_never_lose_one(client, db, auth_headers):
    task = _task_of_alice(completed=False)
    url = f"/api/alice/tasks/{task.id}/complete"
    headers = auth_headers("alice")

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(lambda _: client.patch(url, headers=headers).status_code, range(20))
        )

    assert statuses == [200] * 20
    stored = stored_task(db, task.id)
    # Twenty toggles from false: false again, and every one of them counted in the version.
    assert (stored.completed, stored.version) == (False, 21)
