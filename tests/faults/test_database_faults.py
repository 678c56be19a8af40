"""The service against a PostgreSQL that is really stopped, restarted, locked and crashed under
it. Every test runs the real service (`main.py`, production settings) in a process of its own;
afterwards its logs must hold no token, no secret and no traceback (see conftest)."""

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest
from sqlalchemy import create_engine, text

from shared.db import sync_database_url
from tests.faults.conftest import bearer, logged
from tests.support import assert_problem, run_sql

ALICE = bearer("alice")


def _create(service, title: str = "a task") -> dict:
    response = httpx2.post(
        f"{service.base_url}/api/alice/tasks", json={"title": title}, headers=ALICE
    )
    assert response.status_code == 201, response.text
    return response.json()


def _every_operation(service, task_id: int) -> dict[str, httpx2.Response]:
    tasks = f"{service.base_url}/api/alice/tasks"
    with httpx2.Client(headers=ALICE, timeout=30) as client:
        return {
            "list": client.get(tasks),
            "create": client.post(tasks, json={"title": "new"}),
            "get": client.get(f"{tasks}/{task_id}"),
            "update": client.put(f"{tasks}/{task_id}", json={"title": "changed"}),
            "complete": client.patch(f"{tasks}/{task_id}/complete"),
            "delete": client.delete(f"{tasks}/{task_id}"),
        }


def _stored(url: str, sql: str, **parameters) -> list:
    engine = create_engine(sync_database_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), parameters))
    finally:
        engine.dispose()


@contextmanager
def _row_locked(url: str, task_id: int) -> Iterator[None]:
    """Another session holds the task's row lock until the block ends (then commits)."""
    engine = create_engine(sync_database_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id}
            )
            yield
    finally:
        engine.dispose()


def _in_background(call) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    return thread, outcome


def _wait_until_blocked(url: str, minimum: int = 1) -> None:
    """Until `minimum` sessions of the service wait on a lock (the request is in flight)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = _stored(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'tasks-api' AND wait_event_type = 'Lock'",
        )[0][0]
        if waiting >= minimum:
            return
        time.sleep(0.02)
    pytest.fail("the request never reached the database")


def test_database_down_every_request_is_a_503_problem_and_ready_says_so(
    postgres_server, fault_database, start_service
):
    service = start_service(fault_database)
    task = _create(service)

    postgres_server.stop()
    answers = _every_operation(service, task["id"])
    ready = httpx2.get(f"{service.base_url}/ready")
    health = httpx2.get(f"{service.base_url}/health")

    for name, response in answers.items():
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0, name
        assert "Traceback" not in response.text, name
    assert_problem(ready, 503)
    assert health.status_code == 200
    # Each failure is logged with the driver's own words, one line per request.
    unavailable = logged(service, "database.unavailable")
    assert len(unavailable) == len(answers)
    for why in [*unavailable, *logged(service, "readiness.failed")]:
        assert (why["level"], why["reason"], why["sqlstate"]) == ("error", "unavailable", None)
        assert "Connection refused" in why["message"], why


def test_the_service_starts_while_the_database_is_down_and_is_ready_when_it_returns(
    postgres_server, fault_database, start_service
):
    postgres_server.stop()
    service = start_service(fault_database, MIGRATE_ON_START="true")

    assert httpx2.get(f"{service.base_url}/health").status_code == 200
    assert_problem(httpx2.get(f"{service.base_url}/ready"), 503)
    assert_problem(httpx2.get(f"{service.base_url}/api/alice/tasks", headers=ALICE), 503)

    postgres_server.start()
    deadline = time.monotonic() + 60
    while (ready := httpx2.get(f"{service.base_url}/ready")).status_code != 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)
    created = _create(service, "after the outage")
    assert _stored(fault_database, "SELECT title FROM tasks")[0][0] == created["title"]


def test_a_database_restart_while_the_service_idles_goes_unnoticed(
    postgres_server, fault_database, start_service
):
    service = start_service(fault_database)
    task = _create(service)  # the pool now holds connections the restart will sever

    postgres_server.stop()
    postgres_server.start()
    answers = _every_operation(service, task["id"])

    assert {name: r.status_code for name, r in answers.items()} == {
        "list": 200,
        "create": 201,
        "get": 200,
        "update": 200,
        "complete": 200,
        "delete": 204,
    }


def test_after_a_restart_no_write_is_handed_a_dead_connection(
    postgres_server, fault_database, start_service
):
    """No ping is sent before a connection is used, and a write that failed is never replayed
    (it may have reached the server): what keeps writes from meeting the connections a restart
    severed is that each one is looked at, without a round trip, before it is handed out."""
    service = start_service(fault_database, WORKERS="1")
    _create(service)
    tasks = f"{service.base_url}/api/alice/tasks"
    # Concurrent requests make the pool open several connections, which it then keeps.
    with httpx2.Client(headers=ALICE, timeout=30) as client:
        for _ in range(5):
            threads = [_in_background(lambda: client.get(tasks)) for _ in range(8)]
            for thread, _outcome in threads:
                thread.join(timeout=30)
    held = _stored(
        fault_database,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tasks-api'",
    )[0][0]
    assert held >= 2, "the pool never held more than one connection"

    postgres_server.stop()
    postgres_server.start()
    statuses = [
        httpx2.post(tasks, json={"title": f"after restart {n}"}, headers=ALICE).status_code
        for n in range(held + 1)
    ]

    assert statuses == [201] * (held + 1)
    stored = _stored(fault_database, "SELECT count(*) FROM tasks WHERE title LIKE 'after restart%'")
    assert stored[0][0] == held + 1


def test_an_exhausted_pool_is_a_503_within_the_pool_timeout(fault_database, start_service):
    service = start_service(
        fault_database,
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT_SECONDS="1",
        DB_STATEMENT_TIMEOUT_SECONDS="30",
    )
    task = _create(service)
    url = f"{service.base_url}/api/alice/tasks/{task['id']}"

    with _row_locked(fault_database, task["id"]):
        # This request takes the pool's only connection and waits on the lock.
        holder, held = _in_background(
            lambda: httpx2.put(url, json={"title": "waited"}, headers=ALICE, timeout=60)
        )
        _wait_until_blocked(fault_database)
        started = time.monotonic()
        refused = httpx2.get(f"{service.base_url}/api/alice/tasks", headers=ALICE, timeout=30)
        waited = time.monotonic() - started

    holder.join(timeout=30)
    body = assert_problem(refused, 503)
    assert "busy" in body["detail"]
    [busy] = logged(service, "database.unavailable")
    assert (busy["level"], busy["reason"]) == ("error", "pool")
    assert "all 1 connections of the pool" in busy["message"]
    assert 1 <= waited < 1 + 2  # the pool timeout, plus a margin; not a hang
    assert held[0].status_code == 200  # once the lock went, the held request finished
    assert httpx2.get(url, headers=ALICE).json()["title"] == "waited"


def test_a_statement_past_its_timeout_is_a_503_and_the_connection_serves_on(
    fault_database, start_service
):
    service = start_service(
        fault_database,
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_STATEMENT_TIMEOUT_SECONDS="0.5",
    )
    task = _create(service, "before")
    url = f"{service.base_url}/api/alice/tasks/{task['id']}"

    with _row_locked(fault_database, task["id"]):
        started = time.monotonic()
        cancelled = httpx2.put(url, json={"title": "too late"}, headers=ALICE, timeout=30)
        waited = time.monotonic() - started
    retried = httpx2.put(url, json={"title": "in time"}, headers=ALICE)

    body = assert_problem(cancelled, 503)
    assert "in time" in body["detail"]
    assert 0.5 <= waited < 0.5 + 2
    [cancel] = logged(service, "database.unavailable")
    assert (cancel["level"], cancel["reason"], cancel["sqlstate"]) == (
        "warning",
        "timeout",
        "57014",
    )
    assert cancel["message"] == "canceling statement due to statement timeout"
    assert cancel["statement"].startswith("UPDATE tasks SET")
    assert "too late" not in service.logs()  # the title bound to the cancelled statement
    # The pool's one connection was rolled back and reused: the retry went through on it.
    assert retried.status_code == 200
    assert _stored(fault_database, "SELECT title, version FROM tasks") == [("in time", 2)]


def test_a_missing_column_is_a_500_with_a_log_line_that_names_it(fault_database, start_service):
    service = start_service(fault_database)
    task = _create(service, "kept")
    run_sql(fault_database, "ALTER TABLE tasks RENAME COLUMN description TO notes")

    changed = httpx2.put(
        f"{service.base_url}/api/alice/tasks/{task['id']}",
        json={"title": "Secret rename zq4"},
        headers=ALICE,
    )
    ready = httpx2.get(f"{service.base_url}/ready")

    body = assert_problem(changed, 500)
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    assert "description" not in changed.text
    [fault] = logged(service, "database.fault")
    assert (fault["level"], fault["reason"], fault["sqlstate"]) == ("error", "fault", "42703")
    assert fault["error"] == "UndefinedColumn"
    assert "description" in fault["message"]
    assert fault["request_id"] == changed.headers["x-request-id"]
    assert "Secret rename zq4" not in service.logs()
    # Nothing changed, and /ready (which checks the revision, not every column) still answers.
    assert _stored(fault_database, "SELECT title, version FROM tasks") == [("kept", 1)]
    assert ready.status_code == 200


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(fault_database, start_service):
    # What follows the drain (tests/shared/test_drain.py tests the drain itself).
    service = start_service(fault_database, DRAIN_SECONDS="0")
    task = _create(service, "before")
    url = f"{service.base_url}/api/alice/tasks/{task['id']}"

    with _row_locked(fault_database, task["id"]):
        in_flight, finished = _in_background(
            lambda: httpx2.put(url, json={"title": "finished"}, headers=ALICE, timeout=60)
        )
        _wait_until_blocked(fault_database)
        service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while True:  # the listening socket closes first; then new connections are refused
            try:
                httpx2.get(f"{service.base_url}/health", timeout=1)
            except httpx2.ConnectError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert in_flight.is_alive()  # the request is still waiting: shutdown waits for it

    in_flight.join(timeout=30)
    assert finished[0].status_code == 200
    assert finished[0].json()["title"] == "finished"
    assert service.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert _stored(fault_database, "SELECT title, version FROM tasks") == [("finished", 2)]


def test_a_crash_mid_load_keeps_every_acknowledged_write_and_invents_none(
    fault_database, start_service
):
    service = start_service(fault_database)
    attempts: dict[str, str] = {}  # title -> Idempotency-Key, for every create sent
    acknowledged: dict[str, int] = {}  # title -> id, for every 201 a client received
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(number: int) -> None:
        with httpx2.Client(base_url=service.base_url, headers=ALICE, timeout=10) as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                title, key = f"client {number} task {n}", str(uuid.uuid4())
                with lock:
                    attempts[title] = key
                try:
                    response = client.post(
                        "/api/alice/tasks", json={"title": title}, headers={"Idempotency-Key": key}
                    )
                except httpx2.TransportError:
                    return  # the server died under this request
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged[title] = response.json()["id"]

    clients = [threading.Thread(target=client_loop, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    while len(acknowledged) < 50:
        time.sleep(0.01)
    service.stop(signal.SIGKILL)
    stop.set()
    for thread in clients:
        thread.join(timeout=30)

    stored = dict(_stored(fault_database, "SELECT title, id FROM tasks"))
    assert set(acknowledged.items()) <= set(stored.items())  # nothing acknowledged is lost
    assert set(stored) <= set(attempts)  # nothing stored that no client sent
    counts = _stored(
        fault_database,
        "SELECT sum(task_count)::bigint FROM user_task_counts WHERE user_id = 'alice'",
    )
    assert counts == [(len(stored),)]  # the count trigger committed with each task, or not

    # The clients retry what they never saw acknowledged, with the same keys: exactly once.
    restarted = start_service(fault_database)
    with httpx2.Client(base_url=restarted.base_url, headers=ALICE) as client:
        for title in set(attempts) - set(acknowledged):
            retry = client.post(
                "/api/alice/tasks",
                json={"title": title},
                headers={"Idempotency-Key": attempts[title]},
            )
            assert retry.status_code == 201, retry.text
    titles = [row[0] for row in _stored(fault_database, "SELECT title FROM tasks")]
    assert sorted(titles) == sorted(attempts)
