"""Every error the app can produce, its own or the framework's, is a problem with a request id."""

import pytest
from fastapi.testclient import TestClient

from main import create_app
from shared.config import Settings
from tests.support import assert_problem


@pytest.fixture
def bare_client(tmp_path):
    """An app on an unused SQLite file, for errors that never reach the database."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
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
