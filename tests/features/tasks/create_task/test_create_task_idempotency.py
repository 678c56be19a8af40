"""Safe retries of creation with Idempotency-Key: one task per key, the first answer replayed."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlmodel import col

from shared.db import IdempotencyKey
from tests.factories import IdempotencyKeyFactory, UserFactory
from tests.support import assert_problem, stored_task, task_count

LIST = "/api/alice/tasks"


def _create(client, headers, key, body=None):
    return client.post(
        LIST, json=body or {"title": "Buy milk"}, headers={**headers, "Idempotency-Key": key}
    )


def test_a_retry_returns_the_first_response_and_creates_nothing(client, db, auth_headers):
    key = str(uuid.uuid4())

    first = _create(client, auth_headers("alice"), key)
    retry = _create(client, auth_headers("alice"), key)

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert task_count(db) == 1


def test_a_retry_carries_the_first_responses_etag_which_if_match_accepts(client, db, auth_headers):
    key = str(uuid.uuid4())
    first = _create(client, auth_headers("alice"), key)

    retry = _create(client, auth_headers("alice"), key)
    renamed = client.put(
        retry.headers["location"],
        json={"title": "Buy oat milk"},
        headers={**auth_headers("alice"), "If-Match": retry.headers["etag"]},
    )

    assert retry.headers["etag"] == first.headers["etag"]
    assert renamed.status_code == 200, renamed.text
    stored = stored_task(db, first.json()["id"])
    assert stored.title == "Buy oat milk"


def test_a_quoted_key_is_the_same_key(client, db, auth_headers):
    _create(client, auth_headers("alice"), "abc-123")
    retry = _create(client, auth_headers("alice"), '"abc-123"')

    assert retry.headers["idempotent-replayed"] == "true"
    assert task_count(db) == 1


def test_different_keys_create_different_tasks(client, db, auth_headers):
    _create(client, auth_headers("alice"), "key-1")
    _create(client, auth_headers("alice"), "key-2")

    assert task_count(db) == 2


def test_without_a_key_every_request_creates(client, db, auth_headers):
    client.post(LIST, json={"title": "x"}, headers=auth_headers("alice"))
    client.post(LIST, json={"title": "x"}, headers=auth_headers("alice"))

    assert task_count(db) == 2


def test_a_retry_differing_only_in_ignored_fields_is_the_same_request(client, db, auth_headers):
    first = _create(client, auth_headers("alice"), "key-1", {"title": "Buy milk"})
    retry = _create(
        client,
        auth_headers("alice"),
        "key-1",
        {"title": "Buy milk", "due_date": None, "id": 7, "user_id": "alice"},
    )

    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert task_count(db) == 1


def test_the_same_key_with_a_different_body_is_422(client, db, auth_headers):
    _create(client, auth_headers("alice"), "key-1", {"title": "Buy milk"})
    reused = _create(client, auth_headers("alice"), "key-1", {"title": "Buy bread"})

    assert_problem(reused, 422)
    assert task_count(db) == 1


def test_keys_belong_to_one_person(client, db, auth_headers):
    _create(client, auth_headers("alice"), "shared-key")
    bobs = client.post(
        "/api/bob/tasks",
        json={"title": "Buy milk"},
        headers={**auth_headers("bob"), "Idempotency-Key": "shared-key"},
    )

    assert bobs.status_code == 201
    assert "idempotent-replayed" not in bobs.headers
    assert task_count(db) == 2


def test_an_expired_key_may_be_used_again(client, db, auth_headers):
    IdempotencyKeyFactory(owner=UserFactory(id="alice"), key="old-key")

    response = _create(client, auth_headers("alice"), "old-key")

    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert task_count(db) == 1
    db.commit()
    stored = db.scalars(select(IdempotencyKey).where(col(IdempotencyKey.key) == "old-key")).one()
    db.refresh(stored)
    assert stored.task_id == response.json()["id"]


@pytest.mark.parametrize("key", ["", '""', "x" * 256, "has space", "ünïcode", "tab\tinside"])
def test_a_malformed_key_is_400_naming_it(client, db, auth_headers, key):
    response = _create(client, auth_headers("alice"), key.encode())

    assert_problem(response, 400, invalid_fields={"Idempotency-Key"})
    assert task_count(db) == 0


def test_concurrent_requests_with_one_key_create_one_task(client, db, auth_headers):
    headers = {**auth_headers("alice"), "Idempotency-Key": str(uuid.uuid4())}

    def create(_):
        return client.post(LIST, json={"title": "Once"}, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(create, range(16)))

    assert task_count(db) == 1
    created = [response for response in responses if response.status_code == 201]
    conflicts = [response for response in responses if response.status_code == 409]
    assert len(created) + len(conflicts) == 16
    assert len({response.content for response in created}) == 1
    for conflict in conflicts:
        assert_problem(conflict, 409)
