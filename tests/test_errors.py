"""Every error the app can produce, its own or the framework's, is a problem with a request id."""

import time

import pytest
from fastapi.testclient import TestClient

from main import create_app
from shared.config import Settings
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, settings_for_test
from tests.service import free_port
from tests.support import (
    assert_logged_schema_fault,
    assert_problem,
    json_logs,
    log_events,
    run_sql,
    scalar_at,
    throwaway_database,
)


@pytest.fixture
def bare_client():
    """An app whose database is nowhere (nothing listens on a fresh free port), for errors that
    never reach the database."""
    settings = settings_for_test(
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/unused",
        migrate_on_start=False,
    )
    app = create_app(settings)

    async def fail() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", fail)
    with TestClient(app) as client:
        yield client


def test_an_unknown_route_is_a_404_problem(bare_client):
    assert_problem(bare_client.get("/nowhere"), 404)


def test_a_wrong_method_is_a_405_problem_with_allow(bare_client):
    response = bare_client.delete("/health")

    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


def test_a_server_fault_is_a_generic_500_with_the_request_id(bare_client):
    response = bare_client.get("/boom", headers={"X-Request-ID": "trace-me-123"})

    body = assert_problem(response, 500)
    assert body["request_id"] == "trace-me-123"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_a_sane_request_id_is_kept_and_echoed(bare_client):
    response = bare_client.get("/health", headers={"X-Request-ID": "abc-123_def.456"})

    assert response.headers["x-request-id"] == "abc-123_def.456"


@pytest.mark.parametrize(
    "request_id", ["", "has space", "a" * 129, "line\\nbreak", "<script>", "ünïcode"]
)
def test_an_insane_request_id_is_replaced(bare_client, request_id):
    response = bare_client.get("/health", headers={"X-Request-ID": request_id.encode()})

    assert response.headers["x-request-id"] != request_id
    assert len(response.headers["x-request-id"]) == 32


def test_a_body_over_64_kib_is_a_413_problem(client, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        content=b'{"title": "' + b"x" * 70_000 + b'"}',
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    assert_problem(response, 413)


def test_a_chunked_body_over_64_kib_is_a_413_problem(client, auth_headers):
    def chunks():
        yield b'{"title": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    response = client.post(
        "/api/alice/tasks",
        content=chunks(),
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    assert_problem(response, 413)


def test_cors_allows_the_frontend_origin_and_exposes_location(client):
    response = client.options(
        "/api/alice/tasks",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert response.headers["access-control-allow-credentials"] == "true"


def test_cors_gives_another_origin_nothing(client):
    response = client.options(
        "/api/alice/tasks",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    assert "access-control-allow-origin" not in response.headers


def test_a_malformed_body_is_a_400_whose_error_has_every_documented_key(client, auth_headers):
    response = client.post(
        "/api/alice/tasks",
        content=b"not json",
        headers={**auth_headers("alice"), "Content-Type": "application/json"},
    )

    body = assert_problem(response, 400)
    # The OpenAPI document requires all four keys; `field` is null for the body as a whole.
    assert body["errors"] == [
        {
            "location": "body",
            "field": None,
            "message": body["errors"][0]["message"],
            "type": "json_invalid",
        }
    ]


# A database the app cannot use as it expects: the statement fails inside the database with a
# schema error, which no retry can mend.
SECRET_TITLE = "Confidential plan qx81"
GENERIC_500 = "The server failed to handle this request; it has been logged."


def _settings_for(url: str) -> Settings:
    return settings_for_test(
        database_url=url, better_auth_secret=TEST_SECRET, migrate_on_start=False
    )


def _alice(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, 'alice')}"}


def _database_events(output: str, event: str) -> list[dict]:
    return [line for line in log_events(output) if line["event"] == event]


def _assert_generic_500(response) -> None:
    body = assert_problem(response, 500)
    # The request id and nothing of the failure: no SQL, no SQLSTATE, no driver message.
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": GENERIC_500,
        "request_id": response.headers["x-request-id"],
    }


def _assert_schema_fault_logged(event: dict, sqlstate: str, words: list[str]):
    assert_logged_schema_fault(event, sqlstate, words)
    assert event["statement"]  # which statement, with placeholders only
    assert event["request_id"]


def test_a_missing_column_is_a_500_logged_with_its_sqlstate_and_nothing_stored(request):
    with throwaway_database(request) as url:
        run_sql(url, "ALTER TABLE tasks RENAME COLUMN version TO version_gone")
        settings = _settings_for(url)
        app = create_app(settings)
        with json_logs(settings) as captured, TestClient(app) as client:
            created = client.post(
                "/api/alice/tasks", json={"title": SECRET_TITLE}, headers=_alice(settings)
            )
        stored = scalar_at(url, "SELECT count(*) FROM tasks")
        owners = scalar_at(url, "SELECT count(*) FROM users")

    _assert_generic_500(created)
    assert (stored, owners) == (0, 0)  # the whole transaction rolled back, the user row too
    output = captured.getvalue()
    assert SECRET_TITLE not in output  # the bound values never reach the log
    assert "Traceback" not in output
    [fault] = _database_events(output, "database.fault")
    _assert_schema_fault_logged(fault, "42703", ["version"])
    assert not _database_events(output, "database.unavailable")


def test_a_missing_table_is_a_500_logged_with_its_sqlstate(request):
    with throwaway_database(request) as url:
        run_sql(url, "ALTER TABLE tasks RENAME TO tasks_gone")
        settings = _settings_for(url)
        app = create_app(settings)
        with json_logs(settings) as captured, TestClient(app) as client:
            listing = client.get("/api/alice/tasks", headers=_alice(settings))
            one = client.get("/api/alice/tasks/1", headers=_alice(settings))

    _assert_generic_500(listing)
    _assert_generic_500(one)
    faults = _database_events(captured.getvalue(), "database.fault")
    assert len(faults) == 2
    for fault in faults:
        _assert_schema_fault_logged(fault, "42P01", ["tasks"])


def test_a_database_that_cannot_be_reached_is_a_503_logged_with_the_drivers_message():
    # Nothing listens on a fresh free port.
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    settings = _settings_for(url)
    app = create_app(settings)
    with json_logs(settings) as captured, TestClient(app) as client:
        response = client.post(
            "/api/alice/tasks", json={"title": SECRET_TITLE}, headers=_alice(settings)
        )
        # The purge of expired idempotency keys runs as the app starts, and fails alike.
        deadline = time.monotonic() + 30
        while not (
            purges := _database_events(captured.getvalue(), "idempotency_keys.purge_failed")
        ):
            assert time.monotonic() < deadline, captured.getvalue()
            time.sleep(0.05)

    body = assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert body["detail"] == "The database is unavailable; try again shortly."
    output = captured.getvalue()
    assert SECRET_TITLE not in output
    [unavailable] = _database_events(output, "database.unavailable")
    for why in (unavailable, purges[0]):
        assert why["level"] == "error"
        assert why["reason"] == "unavailable"
        # libpq reports a failure to connect as text only: there is no SQLSTATE to give.
        assert why["sqlstate"] is None
        assert "Connection refused" in why["message"]


# Fails every transaction that wrote a task, at COMMIT: after the handler has returned, when
# only the session's commit can find out.
_FAIL_AT_COMMIT = (
    """CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'refused at commit'; END $$""",
    """CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE OR DELETE ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()""",
)


def test_an_audit_event_is_logged_once_its_change_is_committed_and_never_if_not(request):
    with throwaway_database(request) as url:
        settings = _settings_for(url)
        app = create_app(settings)
        with json_logs(settings) as captured, TestClient(app) as client:
            created = client.post(
                "/api/alice/tasks", json={"title": "Plan"}, headers=_alice(settings)
            )
            task = f"/api/alice/tasks/{created.json()['id']}"
            run_sql(url, *_FAIL_AT_COMMIT)
            failed = [
                client.post("/api/alice/tasks", json={"title": "Plan B"}, headers=_alice(settings)),
                client.put(task, json={"title": "Renamed"}, headers=_alice(settings)),
                client.patch(f"{task}/complete", headers=_alice(settings)),
                client.delete(task, headers=_alice(settings)),
            ]
        stored = scalar_at(url, "SELECT count(*) FROM tasks WHERE title = 'Plan' AND NOT completed")

    assert created.status_code == 201
    for response in failed:
        _assert_generic_500(response)
    assert stored == 1  # none of the failed changes happened...
    audits = [line for line in log_events(captured.getvalue()) if line["event"].startswith("task.")]
    # ...and none is logged as done: only the one that was committed.
    assert [(audit["event"], audit["task_id"], audit["logger"]) for audit in audits] == [
        ("task.created", created.json()["id"], "features.tasks.create_task.endpoint")
    ]


def test_a_named_error_is_a_problem_with_its_status_and_text(client, auth_headers):
    headers = auth_headers("alice")
    task = client.post("/api/alice/tasks", json={"title": "Plan"}, headers=headers).json()

    stale = client.put(
        f"/api/alice/tasks/{task['id']}",
        json={"title": "x"},
        headers={**headers, "If-Match": '"7"'},
    )
    missing = client.delete(f"/api/alice/tasks/{task['id'] + 1}", headers=headers)

    assert (stale.status_code, stale.headers["content-type"]) == (412, "application/problem+json")
    assert stale.json() == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": f"Task {task['id']} has changed since the version in If-Match",
        "request_id": stale.headers["x-request-id"],
    }
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": f"Task {task['id'] + 1} was not found",
        "request_id": missing.headers["x-request-id"],
    }
