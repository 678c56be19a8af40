from datetime import timedelta

from shared.db import utc_now
from tests.factories import TaskFactory, UserFactory
from tests.support import assert_problem, assert_task_matches, user_count


def test_an_empty_list_is_an_empty_array(client, auth_headers):
    response = client.get("/api/alice/tasks", headers=auth_headers("alice"))

    assert response.status_code == 200
    assert response.json() == []


def test_lists_every_task_of_the_person_newest_first(client, auth_headers):
    alice = UserFactory(id="alice")
    now = utc_now()
    oldest = TaskFactory(owner=alice, created_at=now - timedelta(days=2))
    newest = TaskFactory(owner=alice, created_at=now)
    middle = TaskFactory(owner=alice, created_at=now - timedelta(days=1))

    response = client.get("/api/alice/tasks", headers=auth_headers("alice"))

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body] == [newest.id, middle.id, oldest.id]
    for item, task in zip(body, [newest, middle, oldest], strict=True):
        assert_task_matches(item, task)


def test_tasks_created_at_the_same_instant_are_ordered_by_id_descending(client, auth_headers):
    alice = UserFactory(id="alice")
    same_instant = utc_now()
    first, second, third = (TaskFactory(owner=alice, created_at=same_instant) for _ in range(3))

    response = client.get("/api/alice/tasks", headers=auth_headers("alice"))

    assert [item["id"] for item in response.json()] == [third.id, second.id, first.id]


def test_the_same_data_always_gives_the_same_bytes(client, auth_headers):
    alice = UserFactory(id="alice")
    same_instant = utc_now()
    TaskFactory.create_batch(5, owner=alice, created_at=same_instant)
    TaskFactory.create_batch(5, owner=alice)

    responses = [client.get("/api/alice/tasks", headers=auth_headers("alice")) for _ in range(3)]

    assert len({response.content for response in responses}) == 1


def test_another_persons_tasks_are_never_listed(client, auth_headers):
    mine = TaskFactory(owner__id="alice")
    TaskFactory.create_batch(3, owner__id="bob")

    response = client.get("/api/alice/tasks", headers=auth_headers("alice"))

    assert [item["id"] for item in response.json()] == [mine.id]


def test_reading_writes_no_users_row(client, db, auth_headers):
    response = client.get("/api/newcomer/tasks", headers=auth_headers("newcomer", email="n@x.io"))

    assert response.status_code == 200
    assert user_count(db) == 0


def test_another_persons_list_is_forbidden(client, auth_headers):
    TaskFactory(owner__id="bob")

    response = client.get("/api/bob/tasks", headers=auth_headers("alice"))

    assert_problem(response, 403)


def test_without_a_token_it_is_unauthorized(client):
    response = client.get("/api/alice/tasks")

    assert_problem(response, 401)
