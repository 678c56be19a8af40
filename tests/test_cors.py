"""CORS as the contract says: a page on an allowed origin may send every request header the
OpenAPI document declares and read every response header it declares, with credentials.

The expected lists are read here from `/openapi.json` on their own (not with shared/cors.py),
and the routes come from `features.registry` with bodies from the document (tests/routes.py), so
a header or a route added later is checked without editing this file.
"""

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Header, Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from main import create_app
from shared.config import Settings
from shared.cors import CorsGrant
from tests.factories import TaskFactory, UserFactory
from tests.routes import ROUTES, RequestBodies, Route
from tests.support import assert_problem, task_count, user_count

FRONTEND = "http://localhost:3000"
ELSEWHERE = "https://evil.example"


def _operations(document: dict) -> Iterator[tuple[str, dict]]:
    for path_item in document["paths"].values():
        for method, operation in path_item.items():
            yield method.upper(), operation


def _documented_request_headers(document: dict) -> dict[str, set[str]]:
    """Per operation id: its header parameters, plus the bearer token's and the body's."""
    return {
        operation["operationId"]: {"authorization", "content-type"}
        | {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        for _, operation in _operations(document)
    }


def _documented_response_headers(document: dict) -> dict[str, set[str]]:
    return {
        operation["operationId"]: {
            name.lower()
            for response in operation["responses"].values()
            for name in response.get("headers", {})
        }
        for _, operation in _operations(document)
    }


def _listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


@pytest.fixture(scope="module")
def document(_running_client: TestClient) -> dict:
    # The session's running app: a second lifespan on it would close its pool under it.
    return _running_client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def request_bodies(document: dict) -> RequestBodies:
    return RequestBodies(document)


def test_the_document_declares_the_headers_of_the_contract(document):
    requested = set().union(*_documented_request_headers(document).values())
    answered = set().union(*_documented_response_headers(document).values())

    # The lists below are what this test must at least find; the rest of this file checks
    # whatever the document declares.
    assert len(ROUTES) == len(list(_operations(document))) >= 8
    assert {"idempotency-key", "if-match", "if-none-match", "x-request-id"} <= requested
    assert {
        "location",
        "etag",
        "link",
        "x-total-count",
        "x-request-id",
        "idempotent-replayed",
        "retry-after",
        "www-authenticate",
    } <= answered


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_preflight_grants_each_documented_request_header(
    client, db: Session, settings: Settings, document, route: Route
):
    assert FRONTEND in settings.cors_origins
    headers = sorted(_documented_request_headers(document)[route.operation_id])
    assert headers
    for header in [*headers, ", ".join(headers)]:
        preflight = client.options(
            route.url(task_id=1),
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": route.method,
                "Access-Control-Request-Headers": header,
            },
        )

        assert preflight.status_code == 200, (header, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert route.method.lower() in _listed(preflight.headers["access-control-allow-methods"])
        assert _listed(header) <= _listed(preflight.headers["access-control-allow-headers"])
    # A preflight never reaches a handler.
    assert task_count(db) == 0
    assert user_count(db) == 0


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_real_request_with_credentials_may_read_each_documented_response_header(
    client, db: Session, auth_headers, document, request_bodies, route: Route
):
    task = TaskFactory(owner=UserFactory(id="alice"))

    # What `fetch(url, {credentials: "include"})` sends: the origin, and the token.
    response = client.request(
        route.method,
        route.url(task_id=task.id),
        json=request_bodies.valid(route),
        headers={**auth_headers("alice"), "Origin": FRONTEND},
    )

    assert response.status_code < 400, response.text
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["access-control-allow-credentials"] == "true"
    exposed = _listed(response.headers["access-control-expose-headers"])
    assert _documented_response_headers(document)[route.operation_id] <= exposed
    # Each documented header this answer carries is one the page can read.
    assert (
        _listed(",".join(response.headers))
        & set().union(*_documented_response_headers(document).values())
        <= exposed
    )
    assert "set-cookie" not in exposed
    assert task_count(db) == {"POST": 2, "DELETE": 0}.get(route.method, 1)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_another_origin_is_granted_nothing(client, db, auth_headers, route: Route):
    preflight = client.options(
        route.url(task_id=1),
        headers={
            "Origin": ELSEWHERE,
            "Access-Control-Request-Method": route.method,
            "Access-Control-Request-Headers": "authorization, if-match",
        },
    )
    real = client.get(route.url(task_id=1), headers={**auth_headers("alice"), "Origin": ELSEWHERE})

    # Without Access-Control-Allow-Origin the browser sends nothing after the preflight, and
    # keeps a real answer from the page.
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in real.headers


def test_a_preflight_refuses_a_header_the_document_does_not_declare(client):
    preflight = client.options(
        "/api/alice/tasks",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-not-in-the-contract",
        },
    )

    assert preflight.status_code == 400
    assert "x-not-in-the-contract" not in _listed(
        preflight.headers.get("access-control-allow-headers")
    )


def test_a_header_a_new_route_declares_is_granted_without_editing_the_cors_setup(settings):
    app = create_app(settings)

    @app.get(
        "/export",
        operation_id="export_tasks",
        responses={200: {"description": "The export.", "headers": {"X-Export-Version": {}}}},
    )
    async def export_tasks(
        response: Response, x_export_format: Annotated[str | None, Header()] = None
    ) -> list[str]:
        response.headers["X-Export-Version"] = "1"
        return []

    with TestClient(app) as client:
        preflight = client.options(
            "/export",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-export-format",
            },
        )
        real = client.get("/health", headers={"Origin": FRONTEND})

    assert preflight.status_code == 200, preflight.text
    assert "x-export-format" in _listed(preflight.headers["access-control-allow-headers"])
    assert "x-export-version" in _listed(real.headers["access-control-expose-headers"])


def test_cookies_are_never_exposed_whatever_a_document_declares():
    document = {
        "paths": {
            "/x": {
                "get": {
                    "parameters": [{"name": "X-Asked", "in": "header"}],
                    "responses": {
                        "200": {"headers": {"Set-Cookie": {}, "ETag": {}, "etag": {}}},
                        "503": {"headers": {"Retry-After": {}}},
                    },
                }
            }
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

    grant = CorsGrant.from_document(document)

    assert grant.methods == ["GET"]
    assert grant.request_headers == ["Authorization", "Content-Type", "X-Asked"]
    assert grant.response_headers == ["ETag", "Retry-After"]


def test_a_browser_reads_why_a_request_was_refused(client):
    response = client.get("/api/alice/tasks", headers={"Origin": FRONTEND})

    assert_problem(response, 401)
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "www-authenticate" in _listed(response.headers["access-control-expose-headers"])
