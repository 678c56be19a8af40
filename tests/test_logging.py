"""One line per request, an audit event per change, and never a token, secret or task text."""

import io
import json
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from main import create_app
from shared.logging import configure_logging
from tests.conftest import TEST_SECRET
from tests.keys import claims_for, new_key


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


def test_session_tokens_in_a_message_are_scrubbed(json_log):
    """A session token has no prefix to find it by: the signed shape, and whatever follows
    "Bearer", are removed from every text, e.g. an exception's message quoting a header."""
    import structlog

    signed = "A" * 16 + "b" * 16 + "." + "c" * 42 + "d="
    bare = "s3ss10nT0kenWithoutSignature"
    structlog.get_logger().warning(
        "auth.unavailable", reason=f"lookup of {signed} failed", detail=f"sent Bearer {bare} on"
    )

    event = _events(json_log)[-1]
    assert signed not in json.dumps(event)
    assert bare not in json.dumps(event)
    assert event["reason"] == "lookup of [redacted token] failed"
    assert event["detail"] == "sent Bearer [redacted token] on"


def test_no_failure_logs_a_token_or_the_secret(client, auth_headers, settings):
    """Every way a request can fail, with the token or secret placed where a careless log line
    would pick it up (header, body, path, query, an exception's message), and not one of them
    reaches the log."""
    headers = auth_headers("alice")
    token = headers["Authorization"].removeprefix("Bearer ")
    unsigned = jwt.encode({"sub": "alice"}, key="", algorithm="none")
    expired = auth_headers("alice", lifetime=timedelta(minutes=-10))
    eddsa_token = new_key("EdDSA").sign(claims_for("http://127.0.0.1:1"))
    tasks = "/api/alice/tasks"
    # Each app configures logging as it is made; the capture is set up after all of them.
    offline = create_app(
        settings.model_copy(
            update={"database_url": SecretStr("postgresql://nobody@127.0.0.1:1/none")}
        )
    )
    keyless = create_app(
        settings.model_copy(
            update={"better_auth_secret": None, "better_auth_url": "http://127.0.0.1:1"}
        )
    )
    faulty = create_app(settings)

    @faulty.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"failed while holding {token} and {TEST_SECRET}")

    captured = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=captured)
    try:
        failures = {
            "bad signature": client.get(tasks, headers={"Authorization": f"Bearer {token}x"}),
            "expired": client.get(tasks, headers=expired),
            "alg none": client.get(tasks, headers={"Authorization": f"Bearer {unsigned}"}),
            "another's path": client.get("/api/bob/tasks", headers=headers),
            "not found": client.get(f"{tasks}/999999", headers=headers),
            "secret in the body": client.post(
                tasks, json={"title": 5, "x": TEST_SECRET}, headers=headers
            ),
            "token in the query": client.get(f"{tasks}?sort={token}", headers=headers),
            "too large": client.post(tasks, content=token.encode() * 600, headers=headers),
            "headers too large": client.get(tasks, headers={**headers, "X-Pad": token * 120}),
        }
        with TestClient(offline) as offline_client:
            failures["database down"] = offline_client.get(tasks, headers=headers)
        with TestClient(keyless) as keyless_client:
            failures["key set down"] = keyless_client.get(
                tasks, headers={"Authorization": f"Bearer {eddsa_token}"}
            )
        with TestClient(faulty, raise_server_exceptions=False) as faulty_client:
            failures["server fault"] = faulty_client.get("/boom", headers=headers)
    finally:
        configure_logging(settings)

    assert {name: r.status_code for name, r in failures.items()} == {
        "bad signature": 401,
        "expired": 401,
        "alg none": 401,
        "another's path": 403,
        "not found": 404,
        "secret in the body": 400,
        "token in the query": 400,
        "too large": 413,
        "headers too large": 431,
        "database down": 503,
        "key set down": 503,
        "server fault": 500,
    }
    output = captured.getvalue()
    for forbidden in (token, eddsa_token, unsigned, TEST_SECRET):
        assert forbidden not in output
    events = _events(captured)
    assert len([e for e in events if e["event"] == "request.completed"]) == len(failures)
    failed = next(e for e in events if e["event"] == "request.failed")
    assert "RuntimeError" in failed["exception"]  # the traceback is there, scrubbed
