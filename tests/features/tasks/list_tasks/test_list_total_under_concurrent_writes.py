import threading

from sqlalchemy import text

from tests.factories import TaskFactory, UserFactory

ROUNDS = 15
HTTP_WRITERS = 4
SQL_WRITERS = 2


def _write_over_http(client, headers: dict[str, str], writer: int, failures: list[str]) -> None:
    """Creates tasks, toggles some, deletes some: one person's writes, as a busy client sends."""
    for round_number in range(ROUNDS):
        created = client.post(
            "/api/alice/tasks",
            json={"title": f"http {writer}.{round_number}", "completed": round_number % 3 == 0},
            headers=headers,
        )
        if created.status_code != 201:
            failures.append(f"create: {created.status_code} {created.text}")
            continue
        task_url = f"/api/alice/tasks/{created.json()['id']}"
        if round_number % 2 == 0:
            toggled = client.patch(f"{task_url}/complete", headers=headers)
            if toggled.status_code != 200:
                failures.append(f"toggle: {toggled.status_code} {toggled.text}")
        if round_number % 4 == 1:
            deleted = client.delete(task_url, headers=headers)
            if deleted.status_code != 204:
                failures.append(f"delete: {deleted.status_code} {deleted.text}")


def _write_over_sql(database, seeded: list[int], failures: list[str]) -> None:
    """The same kinds of change straight on the database, on a connection (a backend, and so
    a counter slot) of its own, toggling and deleting tasks that were there before."""
    try:
        with database.engine.connect() as connection:
            for task_id in seeded:
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, completed, created_at, updated_at)"
                        " VALUES ('alice', 'sql', true, now(), now())"
                    )
                )
                connection.execute(
                    text("UPDATE tasks SET completed = NOT completed WHERE id = :id"),
                    {"id": task_id},
                )
                connection.commit()
                if task_id % 3 == 0:
                    connection.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": task_id})
                    connection.commit()
    except Exception as error:  # reported by the test, not lost in the thread
        failures.append(f"sql: {error!r}")


def test_the_totals_stay_exact_under_one_persons_concurrent_writes(
    client, db, database, auth_headers
):
    alice = UserFactory(id="alice")
    seeded = [TaskFactory(owner=alice, completed=n % 2 == 0).id for n in range(20)]
    headers = auth_headers("alice")
    failures: list[str] = []
    writers = [
        threading.Thread(target=_write_over_http, args=(client, headers, n, failures))
        for n in range(HTTP_WRITERS)
    ] + [
        threading.Thread(target=_write_over_sql, args=(database, seeded[n::SQL_WRITERS], failures))
        for n in range(SQL_WRITERS)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert failures == []
    db.commit()
    counted = {
        status: db.execute(text(statement)).scalar_one()
        for status, statement in {
            "all": "SELECT count(*) FROM tasks WHERE user_id = 'alice'",
            "completed": "SELECT count(*) FROM tasks WHERE user_id = 'alice' AND completed",
            "pending": "SELECT count(*) FROM tasks WHERE user_id = 'alice' AND NOT completed",
        }.items()
    }
    assert counted["all"] > 20  # the writers did write
    for status, expected in counted.items():
        response = client.get(f"/api/alice/tasks?status={status}&limit=1", headers=headers)
        assert response.status_code == 200
        assert response.headers["X-Total-Count"] == str(expected), status
