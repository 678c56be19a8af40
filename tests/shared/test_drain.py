"""The drain on SIGTERM (shared/drain.py): `/ready` 503 at once, `Connection: close` on every
response, serving on for `DRAIN_SECONDS`, then uvicorn's graceful shutdown. In process (the
readiness branch and the header) and on the real service, with one worker and with two."""

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import create_engine, text

from migrations import upgrade_database
from shared.db import app_state, sync_database_url
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, empty_postgres_database, settings_for_test
from tests.service import Service, running_service
from tests.support import observe_database

ALICE = {
    "Authorization": "Bearer "
    + mint_token(settings_for_test(better_auth_secret=TEST_SECRET), "alice")
}


def _assert_shutting_down(response: httpx2.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"].isdigit()
    problem = response.json()
    assert problem["status"] == 503
    assert "shutting down" in problem["detail"]


def test_a_draining_app_answers_ready_503_without_asking_the_database(client, app, monkeypatch):
    assert client.get("/ready").status_code == 200
    app_state(app).drain.begin()
    try:
        with observe_database(monkeypatch) as activity:
            ready = client.get("/ready")
            health = client.get("/health")
    finally:
        app_state(app).drain.began_at = None

    _assert_shutting_down(ready)
    assert ready.headers["connection"] == "close"
    assert activity.statements == []
    assert activity.checkouts == 0
    # Liveness is not readiness: the process is up and must not be restarted for draining.
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["connection"] == "close"
    assert "connection" not in client.get("/health").headers


@pytest.fixture
def migrated_database(postgres_admin) -> Iterator[str]:
    with empty_postgres_database(postgres_admin) as url:
        upgrade_database(url)
        yield url


@contextmanager
def _production_service(workdir: Path, database_url: str, **settings: str) -> Iterator[Service]:
    with running_service(
        workdir,
        APP_ENV="production",
        DATABASE_URL=database_url,
        BETTER_AUTH_SECRET=TEST_SECRET,
        MIGRATE_ON_START="false",
        **settings,
    ) as service:
        yield service
        logs = service.logs()
        assert "Traceback" not in logs, logs
        assert TEST_SECRET not in logs


def _events(logs: str) -> list[dict]:
    """The service's JSON log lines (production logs one JSON object a line)."""
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def _wait_for(check, what: str, timeout: float = 30) -> float:
    """Polls `check` until it is true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.05)
    return time.monotonic()


def _status(url: str) -> int | None:
    try:
        return httpx2.get(url, timeout=5).status_code
    except httpx2.TransportError:
        return None


def _refused(url: str) -> bool:
    """True once the listener is gone. A connection that reached the kernel's accept queue in
    the instant the listener closed is reset rather than refused: that is the same "no longer
    served" (the drain's timing is asserted separately), not a dropped response."""
    try:
        httpx2.get(url, timeout=5)
    except (httpx2.ConnectError, httpx2.ReadError, httpx2.RemoteProtocolError):
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_then_stops(tmp_path, migrated_database, workers):
    drain_seconds = 4.0
    with _production_service(
        tmp_path, migrated_database, WORKERS=workers, DRAIN_SECONDS=str(drain_seconds)
    ) as service:
        ready_url = f"{service.base_url}/ready"
        _wait_for(lambda: _status(ready_url) == 200, "ready")
        assert "connection" not in httpx2.get(ready_url).headers  # kept alive before

        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # With two workers the supervisor forwards the signal to each: wait until neither
        # answers 200 any more (five 503s in a row), however the requests are spread.
        recent: list[int | None] = []
        _wait_for(
            lambda: recent.append(_status(ready_url)) or recent[-5:] == [503] * 5,
            "draining",
        )
        _assert_shutting_down(httpx2.get(ready_url, timeout=5))

        with httpx2.Client(base_url=service.base_url, headers=ALICE, timeout=10) as client:
            # Meanwhile everything else is served, each response closing its connection.
            health = client.get("/health")
            created = client.post("/api/alice/tasks", json={"title": "while draining"})
            assert health.status_code == 200
            assert health.headers["connection"] == "close"
            assert created.status_code == 201, created.text
            assert created.headers["connection"] == "close"

        refused = _wait_for(lambda: _refused(f"{service.base_url}/health"), "refused", 60)
        assert service.process.wait(timeout=60) in (0, -signal.SIGTERM)
        logs = service.logs()

    # The listener stays open for the whole drain, which starts when a worker gets the signal.
    assert refused - signalled >= drain_seconds
    assert logs.count("server.draining") == int(workers)
    assert logs.count("server.drained") == int(workers)
    assert "app.stopped" in logs
    engine = create_engine(sync_database_url(migrated_database))
    with engine.connect() as connection:
        titles = connection.execute(text("SELECT title FROM tasks")).scalars().all()
    engine.dispose()
    assert titles == ["while draining"]


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_the_drain_stops_at_once(tmp_path, migrated_database, second):
    with _production_service(tmp_path, migrated_database, DRAIN_SECONDS="600") as service:
        ready_url = f"{service.base_url}/ready"
        _wait_for(lambda: _status(ready_url) == 200, "ready")
        service.process.send_signal(signal.SIGTERM)
        _wait_for(lambda: _status(ready_url) == 503, "draining")

        service.process.send_signal(second)
        # Far less than the 600 s drain: the graceful shutdown began when the signal came.
        service.process.wait(timeout=60)
        logs = service.logs()

    skipped = [line for line in _events(logs) if line["event"] == "server.drain_skipped"]
    assert [line["signal"] for line in skipped] == [second.name]
    assert "server.drained" not in logs
    assert "app.stopped" in logs


def test_sigint_stops_without_a_drain(tmp_path, migrated_database):
    """Ctrl+C is a person at a terminal: no balancer to wait for."""
    with _production_service(tmp_path, migrated_database, DRAIN_SECONDS="600") as service:
        _wait_for(lambda: _status(f"{service.base_url}/ready") == 200, "ready")
        service.process.send_signal(signal.SIGINT)
        service.process.wait(timeout=60)
        logs = service.logs()

    assert "server.draining" not in logs
    assert "app.stopped" in logs
