"""Misconfiguration (OWASP API8): the headers every response carries, and CORS."""

import base64
import hashlib
import re

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from pydantic import SecretStr

from main import create_app
from shared.config import Settings
from shared.edge import API_POLICY
from tests.conftest import TEST_SECRET, settings_for_test
from tests.factories import TaskFactory
from tests.support import task_count

FRONTEND = "http://localhost:3000"


# The documentation's files hold nothing personal: browsers may keep them, revalidating by ETag.
ASSET_CACHING = "no-cache"
ASSETS = {"docs script", "docs style", "redoc script", "redoc logo"}


def _assert_hardened(response, *, policy: str = API_POLICY, cache: str = "no-store") -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == policy
    assert response.headers["cache-control"] == cache
    assert "server" not in response.headers


def test_every_kind_of_answer_carries_the_security_headers(client, auth_headers):
    headers = auth_headers("alice")
    task = TaskFactory(owner__id="alice")
    answers = {
        "list": client.get("/api/alice/tasks", headers=headers),
        "create": client.post("/api/alice/tasks", json={"title": "x"}, headers=headers),
        "get": client.get(f"/api/alice/tasks/{task.id}", headers=headers),
        "no token": client.get("/api/alice/tasks"),
        "another's path": client.get("/api/bob/tasks", headers=headers),
        "not found": client.get("/api/alice/tasks/999999", headers=headers),
        "invalid": client.post("/api/alice/tasks", json={}, headers=headers),
        "too large": client.post("/api/alice/tasks", content=b"x" * 70_000, headers=headers),
        "health": client.get("/health"),
        "ready": client.get("/ready"),
        "openapi": client.get("/openapi.json"),
        "docs script": client.get("/docs/assets/swagger/swagger-ui-bundle.js"),
        "docs style": client.get("/docs/assets/swagger/swagger-ui.css"),
        "redoc script": client.get("/docs/assets/redoc/redoc.standalone.js"),
        "redoc logo": client.get("/redoc/logo-mini.svg"),
        "no such asset": client.get("/docs/assets/swagger/nothing.js"),
        "beside the docs page": client.get("/docs/", follow_redirects=False),
        "no such route": client.get("/nowhere"),
    }
    for name, response in answers.items():
        assert response.status_code < 500, (name, response.text)
        _assert_hardened(response, cache=ASSET_CACHING if name in ASSETS else "no-store")


def test_a_preflight_carries_the_security_headers_too(client, db):
    # CORS answers a preflight itself, before the request id and the token: it still gets them.
    preflights = {
        "granted": client.options(
            "/api/alice/tasks",
            headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST"},
        ),
        "refused": client.options(
            "/api/alice/tasks",
            headers={
                "Origin": "https://elsewhere.example",
                "Access-Control-Request-Method": "POST",
            },
        ),
    }

    assert preflights["granted"].status_code == 200
    assert preflights["refused"].status_code == 400
    for response in preflights.values():
        _assert_hardened(response)
    assert task_count(db) == 0


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = [directive.split() for directive in policy.split(";")]
    return {name: sources for name, *sources in parsed}


def _inline_script_sources(page: str) -> list[str]:
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    ]


def test_swagger_ui_may_load_the_services_own_assets_and_its_one_inline_script_only(client):
    response = client.get("/docs")

    assert response.status_code == 200
    directives = _directives(response.headers["content-security-policy"])
    inline = _inline_script_sources(response.text)
    assert len(inline) == 1  # FastAPI's SwaggerUIBundle({...}) start-up call
    assert directives == {
        "default-src": ["'none'"],
        "script-src": ["'self'", *inline],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    # Everything the page names is the service's own: no CDN, no font service.
    assert re.findall(r'(?:src|href)="([^"]*)"', response.text) == [
        "/docs/assets/swagger/swagger-ui.css",
        "/docs/assets/fastapi/favicon.png",
        "/docs/assets/swagger/swagger-ui-bundle.js",
    ]
    _assert_hardened(response, policy=response.headers["content-security-policy"])


def test_redoc_may_load_the_services_own_assets_and_style_itself(client):
    response = client.get("/redoc")

    assert response.status_code == 200
    directives = _directives(response.headers["content-security-policy"])
    assert _inline_script_sources(response.text) == []
    assert directives == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["blob:"],
        "frame-ancestors": ["'none'"],
    }
    assert "fonts.googleapis" not in response.text
    assert re.findall(r'(?:src|href)="([^"]*)"', response.text) == [
        "/docs/assets/fastapi/favicon.png",
        "/docs/assets/redoc/redoc.standalone.js",
    ]
    _assert_hardened(response, policy=response.headers["content-security-policy"])


def test_the_documentation_assets_are_what_they_claim_and_public(client):
    script = client.get("/docs/assets/swagger/swagger-ui-bundle.js")
    style = client.get("/docs/assets/swagger/swagger-ui.css")

    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    revalidated = client.get(
        "/docs/assets/swagger/swagger-ui-bundle.js",
        headers={"If-None-Match": script.headers["etag"]},
    )
    assert revalidated.status_code == 304
    assert revalidated.content == b""


def test_a_route_cannot_loosen_the_policy_outside_the_documentation_pages(settings):
    app = create_app(settings)

    @app.get("/loose")
    async def loose() -> Response:
        return Response("<script>alert(1)</script>", headers={"Content-Security-Policy": "*"})

    with TestClient(app) as loose_client:
        response = loose_client.get("/loose")

    _assert_hardened(response)


def test_a_server_fault_carries_the_security_headers_too(settings):
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as faulty_client:
        response = faulty_client.get("/boom")

    assert response.status_code == 500
    _assert_hardened(response)


def _production(**overrides) -> Settings:
    return settings_for_test(
        app_env="production",
        database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
        better_auth_secret=SecretStr(TEST_SECRET),
        migrate_on_start=False,
        **overrides,
    )


def test_hsts_is_sent_in_production_only(client):
    with TestClient(create_app(_production(cors_origins=["https://app.example"]))) as production:
        hardened = production.get("/health")

    assert hardened.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in client.get("/health").headers


def test_the_development_default_origin_is_the_local_frontend():
    assert settings_for_test().cors_origins == [FRONTEND]


def test_a_real_request_from_the_frontend_may_read_the_paging_and_version_headers(
    client, auth_headers
):
    response = client.get("/api/alice/tasks", headers={**auth_headers("alice"), "Origin": FRONTEND})

    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["access-control-allow-credentials"] == "true"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"location", "etag", "link", "x-total-count", "x-request-id"} <= exposed


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_another_origin_gets_no_cors_grant_on_a_real_request_either(client, auth_headers, method):
    response = client.request(
        method,
        "/api/alice/tasks",
        headers={**auth_headers("alice"), "Origin": "https://evil.example"},
    )

    # Without a matching Access-Control-Allow-Origin the browser keeps the answer from the page.
    assert "access-control-allow-origin" not in response.headers


def test_credentials_are_never_granted_to_a_wildcard(client):
    preflight = client.options(
        "/api/alice/tasks",
        headers={"Origin": FRONTEND, "Access-Control-Request-Method": "GET"},
    )

    assert preflight.headers["access-control-allow-origin"] != "*"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    with pytest.raises(ValueError, match="cors_origins"):
        settings_for_test(cors_origins="*")
