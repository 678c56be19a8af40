"""GET /ready: 200 only when the database answers and holds this code's schema."""

import time

import pytest
from alembic import command
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine

from main import create_app
from migrations import alembic_config, head_revision
from shared.config import Settings
from shared.db import app_state, sync_database_url
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, empty_postgres_database, settings_for_test
from tests.support import (
    assert_logged_schema_fault,
    assert_problem,
    json_logs,
    log_events,
    run_sql,
    throwaway_database,
)

UNREACHABLE = SecretStr("postgresql://nobody@127.0.0.1:1/none")


def test_ready_when_the_database_holds_the_current_schema(client):
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema_revision": head_revision()}


def test_ready_needs_no_token(client):
    assert client.get("/ready", headers={"Authorization": "Bearer nonsense"}).status_code == 200


def test_not_ready_while_the_database_is_unreachable_but_still_healthy(settings):
    offline = settings.model_copy(update={"database_url": UNREACHABLE})
    app = create_app(offline)
    with json_logs(offline) as captured, TestClient(app) as offline_client:
        ready = offline_client.get("/ready")
        health = offline_client.get("/health")

    assert_problem(ready, 503)
    assert ready.headers["retry-after"]
    assert "Traceback" not in ready.text
    assert health.status_code == 200
    [why] = _readiness_failures(captured)
    assert (why["level"], why["reason"], why["sqlstate"]) == ("error", "unavailable", None)
    assert "Connection refused" in why["message"]


@pytest.mark.parametrize(
    ("damage", "sqlstate", "words"),
    [
        ("DROP TABLE alembic_version", "42P01", ["alembic_version"]),
        (
            "ALTER TABLE alembic_version RENAME COLUMN version_num TO version_gone",
            "42703",
            ["version_num"],
        ),
    ],
    ids=["missing table", "missing column"],
)
def test_not_ready_but_503_when_the_database_fails_the_check_with_a_schema_error(
    damage, sqlstate, words, request
):
    with throwaway_database(request) as url:
        run_sql(url, damage)
        broken = _settings_for(url, migrate_on_start=False)
        app = create_app(broken)
        with json_logs(broken) as captured, TestClient(app) as broken_client:
            response = broken_client.get("/ready")

    body = assert_problem(response, 503)  # a probe hears "not ready", never a 500
    assert int(response.headers["retry-after"]) > 0
    assert body["detail"] == "The database failed the readiness check; the service's log says why."
    [why] = _readiness_failures(captured)
    assert_logged_schema_fault(why, sqlstate, words)


def test_not_ready_when_the_schema_is_behind_the_code(postgres_admin):
    with empty_postgres_database(postgres_admin) as url:
        engine = create_engine(sync_database_url(url))
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.upgrade(config, "0001")
        engine.dispose()
        behind = _settings_for(url, migrate_on_start=False)
        app = create_app(behind)
        with json_logs(behind) as captured, TestClient(app) as behind_client:
            response = behind_client.get("/ready")

    assert_problem(response, 503)
    assert "0001" in response.json()["detail"]
    assert head_revision() in response.json()["detail"]
    [why] = _readiness_failures(captured)
    assert (why["level"], why["reason"]) == ("warning", "schema_pending")
    assert "0001" in why["message"]


def test_while_starting_against_a_database_that_is_down_requests_get_503(settings):
    starting = settings.model_copy(update={"database_url": UNREACHABLE, "migrate_on_start": True})
    app = create_app(starting)
    with json_logs(starting) as captured, TestClient(app) as starting_client:
        deadline = time.monotonic() + 30
        while not (tries := _events(captured, "database.migration_failed")):
            assert time.monotonic() < deadline, captured.getvalue()
            time.sleep(0.05)
        ready = starting_client.get("/ready")
        listing = starting_client.get(
            "/api/alice/tasks", headers={"Authorization": f"Bearer {_token(starting)}"}
        )

    assert app_state(app).schema_ready is False
    assert_problem(ready, 503)
    assert "starting" in ready.json()["detail"]
    assert_problem(listing, 503)
    assert listing.headers["retry-after"]
    # The migration says why it waits, and that it will try again.
    assert (tries[0]["reason"], tries[0]["sqlstate"]) == ("unavailable", None)
    assert "Connection refused" in tries[0]["message"]
    assert tries[0]["retry_in_seconds"] == 1.0


def test_the_start_up_migration_makes_an_empty_database_ready(postgres_admin):
    with empty_postgres_database(postgres_admin) as url:
        fresh = _settings_for(url, migrate_on_start=True)
        with TestClient(create_app(fresh)) as fresh_client:
            deadline = time.monotonic() + 30
            while (ready := fresh_client.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.05)
            created = fresh_client.post(
                "/api/alice/tasks",
                json={"title": "first"},
                headers={"Authorization": f"Bearer {_token(fresh)}"},
            )

    assert ready.json()["schema_revision"] == head_revision()
    assert created.status_code == 201


def _events(captured, event: str) -> list[dict]:
    return [line for line in log_events(captured.getvalue()) if line["event"] == event]


def _readiness_failures(captured) -> list[dict]:
    return _events(captured, "readiness.failed")


def _token(settings: Settings) -> str:
    return mint_token(settings, "alice")


def _settings_for(url: str, *, migrate_on_start: bool) -> Settings:
    return settings_for_test(
        database_url=url,
        better_auth_secret=TEST_SECRET,
        migrate_on_start=migrate_on_start,
    )
