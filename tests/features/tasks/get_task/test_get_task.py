import pytest

from tests.factories import TaskFactory
from tests.support import assert_problem, assert_task_matches


def test_answers_200_with_the_task(client, auth_headers):
    task = TaskFactory(owner__id="alice", completed=True)

    response = client.get(f"/api/alice/tasks/{task.id}", headers=auth_headers("alice"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_task_matches(response.json(), task)


def test_a_missing_task_is_404(client, auth_headers):
    response = client.get("/api/alice/tasks/123456", headers=auth_headers("alice"))

    assert_problem(response, 404)


def test_another_persons_task_is_indistinguishable_from_a_missing_one(client, auth_headers):
    bobs = TaskFactory(owner__id="bob")
    missing_id = bobs.id + 1000

    theirs = client.get(f"/api/alice/tasks/{bobs.id}", headers=auth_headers("alice"))
    absent = client.get(f"/api/alice/tasks/{missing_id}", headers=auth_headers("alice"))

    assert_problem(theirs, 404)
    assert_problem(absent, 404)
    assert theirs.json()["detail"].replace(str(bobs.id), "N") == absent.json()["detail"].replace(
        str(missing_id), "N"
    )
    assert bobs.title not in theirs.text


def test_another_persons_path_is_forbidden(client, auth_headers):
    bobs = TaskFactory(owner__id="bob")

    response = client.get(f"/api/bob/tasks/{bobs.id}", headers=auth_headers("alice"))

    assert_problem(response, 403)
    assert bobs.title not in response.text


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", str(2**63), str(10**20), "1e3"])
def test_an_id_that_is_not_a_positive_64_bit_integer_is_400(client, auth_headers, bad_id):
    response = client.get(f"/api/alice/tasks/{bad_id}", headers=auth_headers("alice"))

    assert_problem(response, 400, invalid_fields={"task_id"})
    assert response.json()["errors"][0]["location"] == "path"


def test_the_largest_64_bit_id_is_valid_and_simply_not_found(client, auth_headers):
    response = client.get(f"/api/alice/tasks/{2**63 - 1}", headers=auth_headers("alice"))

    assert_problem(response, 404)


def test_without_a_token_it_is_unauthorized(client):
    task = TaskFactory(owner__id="alice")

    response = client.get(f"/api/alice/tasks/{task.id}")

    assert_problem(response, 401)
    assert task.title not in response.text


def test_the_etag_is_the_tasks_version(client, auth_headers):
    task = TaskFactory(owner__id="alice", version=7)

    response = client.get(f"/api/alice/tasks/{task.id}", headers=auth_headers("alice"))

    assert response.headers["etag"] == '"7"'


@pytest.mark.parametrize("if_none_match", ['"7"', 'W/"7"', '"1", "7"', "*"])
def test_an_unchanged_task_is_304_without_a_body(client, auth_headers, if_none_match):
    task = TaskFactory(owner__id="alice", version=7)

    response = client.get(
        f"/api/alice/tasks/{task.id}",
        headers={**auth_headers("alice"), "If-None-Match": if_none_match},
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"7"'


def test_a_changed_task_is_sent_in_full(client, auth_headers):
    task = TaskFactory(owner__id="alice", version=8)

    response = client.get(
        f"/api/alice/tasks/{task.id}", headers={**auth_headers("alice"), "If-None-Match": '"7"'}
    )

    assert response.status_code == 200
    assert response.json()["id"] == task.id


def test_a_malformed_if_none_match_is_400_naming_it(client, auth_headers):
    task = TaskFactory(owner__id="alice")

    response = client.get(
        f"/api/alice/tasks/{task.id}", headers={**auth_headers("alice"), "If-None-Match": "7"}
    )

    assert_problem(response, 400, invalid_fields={"If-None-Match"})


def test_if_none_match_on_a_missing_task_is_still_404(client, auth_headers):
    response = client.get(
        "/api/alice/tasks/999999", headers={**auth_headers("alice"), "If-None-Match": "*"}
    )

    assert_problem(response, 404)
