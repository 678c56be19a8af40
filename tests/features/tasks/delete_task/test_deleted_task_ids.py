"""A deleted task's id is never handed out again, so what a client still holds for it (its URL,
its ETag) can never reach another task: `tasks.id` is an identity, whose sequence only moves on.
(A database that reused the highest id, as SQLite's rowid did, let a stale `If-Match: "1"` for a
deleted task overwrite the next task created, with a 200.)"""

from tests.support import assert_problem, stored_task


def test_a_new_task_never_gets_the_id_of_the_newest_deleted_one(client, db, auth_headers):
    headers = auth_headers("alice")
    deleted = client.post("/api/alice/tasks", json={"title": "Old"}, headers=headers)
    stale_url, stale_etag = deleted.headers["location"], deleted.headers["etag"]
    assert client.delete(stale_url, headers=headers).status_code == 204

    created = client.post("/api/alice/tasks", json={"title": "New"}, headers=headers)

    assert created.status_code == 201
    assert created.json()["id"] > deleted.json()["id"]
    assert created.headers["location"] != stale_url
    stale = {**headers, "If-Match": stale_etag}
    assert_problem(client.put(stale_url, json={"title": "Overwritten"}, headers=stale), 404)
    assert_problem(client.patch(f"{stale_url}/complete", headers=stale), 404)
    assert_problem(client.delete(stale_url, headers=stale), 404)
    new_task = stored_task(db, created.json()["id"])
    assert (new_task.title, new_task.completed, new_task.version) == ("New", False, 1)
