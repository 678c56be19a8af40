"""One line per request, an audit event per change, and never a token, secret or task text."""

import io
import json

import pytest

from shared.logging import configure_logging
from tests.conftest import TEST_SECRET


@pytest.fixture
def json_log(settings):
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=stream)
    yield stream
    configure_logging(settings)


def _events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_full_cycle_is_logged_without_tokens_secrets_or_task_text(client, auth_headers, json_log):
    headers = auth_headers("alice", email="alice@example.com", name="Alice")
    token = headers["Authorization"].removeprefix("Bearer ")
    title, description, new_title = "Secret plan xq7", "Hidden notes zr9", "Renamed plan wv3"

    created = client.post(
        "/api/alice/tasks", json={"title": title, "description": description}, headers=headers
    )
    task_id = created.json()["id"]
    client.get("/api/alice/tasks", headers=headers)
    client.put(f"/api/alice/tasks/{task_id}", json={"title": new_title}, headers=headers)
    client.patch(f"/api/alice/tasks/{task_id}/complete", headers=headers)
    client.delete(f"/api/alice/tasks/{task_id}", headers=headers)
    client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}x"})

    output = json_log.getvalue()
    for forbidden in (token, TEST_SECRET, title, description, new_title):
        assert forbidden not in output

    events = _events(json_log)
    requests = [event for event in events if event["event"] == "request.completed"]
    assert [(event["method"], event["status"]) for event in requests] == [
        ("POST", 201),
        ("GET", 200),
        ("PUT", 200),
        ("PATCH", 200),
        ("DELETE", 204),
        ("GET", 401),
    ]
    for event in requests[:5]:
        assert event["user_id"] == "alice"
        assert event["route"].startswith("/api/{user_id}/tasks")
        assert event["request_id"]
        assert event["duration_ms"] >= 0

    audits = {event["event"]: event for event in events if event["event"].startswith("task.")}
    assert set(audits) == {
        "task.created",
        "task.updated",
        "task.completion_changed",
        "task.deleted",
    }
    for audit in audits.values():
        assert (audit["task_id"], audit["user_id"]) == (task_id, "alice")
        assert audit["request_id"]
    assert audits["task.created"]["request_id"] == created.headers["x-request-id"]


def test_a_secret_logged_by_mistake_is_redacted(json_log):
    import structlog

    structlog.get_logger().info("oops", token="abc.def.ghi", authorization="Bearer x")

    event = _events(json_log)[-1]
    assert (event["token"], event["authorization"]) == ("[redacted]", "[redacted]")
