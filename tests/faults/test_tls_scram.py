"""The service against a PostgreSQL set up as Neon is: TCP only over TLS, passwords only by
SCRAM-SHA-256 with channel binding, and a role that owns its database and nothing more. The
real service (`main.py`, production settings) connects with Neon's URL shape, migrates as it
starts and serves; a URL without TLS and a wrong password are refused and logged, never with
the password."""

import time
from typing import LiteralString

import httpx2

from tests.faults.conftest import TlsDatabase, bearer, logged
from tests.support import assert_problem

ALICE = bearer("alice")


def _admin_rows(database: TlsDatabase, query: LiteralString, *parameters) -> list[tuple]:
    """Rows read as the superuser, through the socket, inside the test's database."""
    with database.server.admin_connection(database.name) as admin:
        return admin.execute(query, parameters).fetchall()


def _wait_for_ready(service, timeout: float = 90) -> httpx2.Response:
    deadline = time.monotonic() + timeout
    while (ready := httpx2.get(f"{service.base_url}/ready")).status_code != 200:
        assert time.monotonic() < deadline, f"{ready.text}\n{service.logs()}"
        time.sleep(0.2)
    return ready


def test_the_neon_shaped_url_connects_over_tls_with_scram_migrates_as_owner_and_serves(
    tls_database, start_service
):
    service = start_service(tls_database.url(), MIGRATE_ON_START="true")

    ready = _wait_for_ready(service)
    tasks = f"{service.base_url}/api/alice/tasks"
    with httpx2.Client(headers=ALICE, timeout=30) as client:
        created = client.post(tasks, json={"title": "over TLS"})
        task_id = created.json()["id"]
        listed = client.get(tasks)
        fetched = client.get(f"{tasks}/{task_id}")
        stored_before_delete = _admin_rows(tls_database, "SELECT id, title FROM tasks")
        deleted = client.delete(f"{tasks}/{task_id}")
        gone = client.get(f"{tasks}/{task_id}")

    assert ready.json()["status"] == "ready"
    assert created.status_code == 201, created.text
    assert [task["id"] for task in listed.json()] == [task_id]
    assert fetched.json()["title"] == "over TLS"
    assert stored_before_delete == [(task_id, "over TLS")]
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert _admin_rows(tls_database, "SELECT count(*) FROM tasks") == [(0,)]
    # The service's connections are TLS ones, as the role that only owns the database.
    sessions = _admin_rows(
        tls_database,
        "SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
        "WHERE a.application_name = 'tasks-api'",
    )
    assert sessions
    assert set(sessions) == {(tls_database.role, True)}
    # That role is no superuser, yet the migration created pg_trgm (trusted since PG 13).
    assert _admin_rows(
        tls_database,
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
        tls_database.role,
    ) == [(False, False, False)]
    assert _admin_rows(
        tls_database, "SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ) == [(tls_database.role,)]
    # The password is stored as a SCRAM verifier, and is never logged.
    assert _admin_rows(
        tls_database,
        "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = %s",
        tls_database.role,
    ) == [("SCRAM-SHA-256$",)]
    assert tls_database.password not in service.logs()
    [started] = logged(service, "app.started")
    assert f"{tls_database.role}:***@" in started["database"]


def test_the_same_url_without_tls_is_refused_and_the_log_says_why(tls_database, start_service):
    service = start_service(tls_database.url(sslmode="disable"), MIGRATE_ON_START="true")

    ready = httpx2.get(f"{service.base_url}/ready")
    deadline = time.monotonic() + 30
    while not (refused := logged(service, "database.migration_failed")):
        assert time.monotonic() < deadline, service.logs()
        time.sleep(0.2)

    assert_problem(ready, 503)
    assert int(ready.headers["retry-after"]) > 0
    [why] = refused[:1]
    assert why["reason"] == "unavailable"
    assert why["level"] == "error"
    # libpq gives no SQLSTATE for a refusal while connecting (28000 in the server's own log);
    # its text says what the server refused, and why.
    assert why["sqlstate"] is None
    assert "no pg_hba.conf entry" in why["message"]
    assert "no encryption" in why["message"]
    assert tls_database.password not in service.logs()


def test_a_wrong_password_is_refused_logged_without_it_and_not_ready(tls_database, start_service):
    wrong = "not-the-password-4417"
    service = start_service(tls_database.url(password=wrong))

    ready = httpx2.get(f"{service.base_url}/ready")
    listing = httpx2.get(f"{service.base_url}/api/alice/tasks", headers=ALICE)

    assert_problem(ready, 503)
    assert int(ready.headers["retry-after"]) > 0
    assert_problem(listing, 503)
    [not_ready] = logged(service, "readiness.failed")
    [unavailable] = logged(service, "database.unavailable")
    for why in (not_ready, unavailable):
        assert why["reason"] == "unavailable"
        assert why["sqlstate"] is None  # 28P01 in the server's log; libpq passes only the text
        assert f'password authentication failed for user "{tls_database.role}"' in why["message"]
    logs = service.logs()
    assert wrong not in logs
    assert tls_database.password not in logs
