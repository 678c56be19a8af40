import pytest

from tests.factories import TaskFactory
from tests.support import assert_problem, stored_task_or_none, task_count


def test_deletes_the_task_and_answers_204_without_a_body(client, db, auth_headers):
    task = TaskFactory(owner__id="alice")
    task_id = task.id

    response = client.delete(f"/api/alice/tasks/{task_id}", headers=auth_headers("alice"))

    assert response.status_code == 204
    assert response.content == b""
    assert stored_task_or_none(db, task_id) is None


def test_deleting_one_task_leaves_the_others(client, db, auth_headers):
    doomed = TaskFactory(owner__id="alice")
    kept = TaskFactory(owner__id="bob")

    client.delete(f"/api/alice/tasks/{doomed.id}", headers=auth_headers("alice"))

    assert task_count(db) == 1
    assert stored_task_or_none(db, kept.id) is not None


def test_deleting_twice_is_404_the_second_time(client, auth_headers):
    task = TaskFactory(owner__id="alice")

    first = client.delete(f"/api/alice/tasks/{task.id}", headers=auth_headers("alice"))
    second = client.delete(f"/api/alice/tasks/{task.id}", headers=auth_headers("alice"))

    assert first.status_code == 204
    assert_problem(second, 404)


def test_another_persons_task_is_404_and_survives(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob")

    response = client.delete(f"/api/alice/tasks/{bobs.id}", headers=auth_headers("alice"))

    assert_problem(response, 404)
    assert stored_task_or_none(db, bobs.id) is not None


def test_another_persons_path_is_forbidden_and_nothing_is_deleted(client, db, auth_headers):
    bobs = TaskFactory(owner__id="bob")

    response = client.delete(f"/api/bob/tasks/{bobs.id}", headers=auth_headers("alice"))

    assert_problem(response, 403)
    assert stored_task_or_none(db, bobs.id) is not None


@pytest.mark.parametrize("bad_id", ["0", "-5", "x", str(2**63)])
def test_a_bad_id_is_400(client, auth_headers, bad_id):
    response = client.delete(f"/api/alice/tasks/{bad_id}", headers=auth_headers("alice"))

    assert_problem(response, 400, invalid_fields={"task_id"})


def test_without_a_token_it_is_unauthorized_and_nothing_is_deleted(client, db):
    task = TaskFactory(owner__id="alice")

    response = client.delete(f"/api/alice/tasks/{task.id}")

    assert_problem(response, 401)
    assert stored_task_or_none(db, task.id) is not None


# A version past a BIGINT is a tag this service never issued: stale, not a database error.
@pytest.mark.parametrize("if_match", ['"2"', '"99999999999999999999"'])
def test_a_stale_if_match_is_412_and_the_task_survives(client, db, auth_headers, if_match):
    task = TaskFactory(owner__id="alice", version=3)

    response = client.delete(
        f"/api/alice/tasks/{task.id}", headers={**auth_headers("alice"), "If-Match": if_match}
    )

    assert_problem(response, 412)
    assert stored_task_or_none(db, task.id) is not None


def test_a_current_if_match_deletes(client, db, auth_headers):
    task = TaskFactory(owner__id="alice", version=3)

    response = client.delete(
        f"/api/alice/tasks/{task.id}", headers={**auth_headers("alice"), "If-Match": '"3"'}
    )

    assert response.status_code == 204
    assert stored_task_or_none(db, task.id) is None


def test_if_match_on_a_missing_task_is_404(client, auth_headers):
    response = client.delete(
        "/api/alice/tasks/123123", headers={**auth_headers("alice"), "If-Match": '"1"'}
    )

    assert_problem(response, 404)
