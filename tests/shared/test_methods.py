"""Methods a path answers: a 405's `Allow` lists every method of the path, as the OpenAPI
document has them (plus HEAD wherever GET is), and HEAD answers as GET without the content.

Paths come from `features.registry`; the methods each has, from `/openapi.json`.
"""

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from features.registry import PUBLIC_ROUTERS, TASK_ROUTERS
from tests.factories import TaskFactory
from tests.support import assert_problem, stored_task, task_count

ROUTES = [
    route
    for router in PUBLIC_ROUTERS + TASK_ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)  # what a router's decorators make: every one of them
]
PATHS = sorted({route.path for route in ROUTES})
GET_PATHS = sorted({route.path for route in ROUTES if route.methods and "GET" in route.methods})
ASKED = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"]


@pytest.fixture(scope="module")
def documented_methods(_running_client: TestClient) -> dict[str, set[str]]:
    # The session's running app: a second lifespan on it would close its pool under it.
    document = _running_client.get("/openapi.json").json()
    return {path: {method.upper() for method in item} for path, item in document["paths"].items()}


def _allowed(response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_every_registered_path_is_checked(documented_methods):
    assert len(PATHS) >= 5
    assert set(PATHS) == set(documented_methods)


@pytest.mark.parametrize("path", PATHS)
def test_a_405_lists_exactly_the_methods_of_the_path(
    client, db, auth_headers, documented_methods, path
):
    task = TaskFactory(owner__id="alice", title="untouched", version=3)
    before = stored_task(db, task.id)
    expected = documented_methods[path] | ({"HEAD"} if "GET" in documented_methods[path] else set())
    url = path.format(user_id="alice", task_id=task.id)
    refused = [method for method in ASKED if method not in documented_methods[path]]
    assert refused

    for method in refused:
        response = client.request(method, url, headers=auth_headers("alice"))

        body = assert_problem(response, 405)
        assert _allowed(response) == expected, (method, response.headers["allow"])
        assert body["detail"] == (
            f"{method} is not allowed here; allowed: {response.headers['allow']}."
        )
    after = stored_task(db, task.id)
    assert (after.title, after.version, after.updated_at) == (
        before.title,
        before.version,
        before.updated_at,
    )
    assert task_count(db) == 1


def test_options_on_the_list_names_post_too(client, auth_headers):
    # The case Schemathesis's coverage phase found: Starlette's router named only list_tasks'
    # GET, the first route of the path, and left out create_task's POST.
    response = client.options("/api/alice/tasks", headers=auth_headers("alice"))

    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_answers_as_get_without_the_content(client, db, auth_headers, path):
    task = TaskFactory(owner__id="alice")
    url = path.format(user_id="alice", task_id=task.id)

    got = client.get(url, headers=auth_headers("alice"))
    head = client.head(url, headers=auth_headers("alice"))

    assert got.status_code == head.status_code == 200
    assert got.content
    assert head.content == b""
    ignored = {"x-request-id", "date"}
    assert {k: v for k, v in head.headers.items() if k not in ignored} == {
        k: v for k, v in got.headers.items() if k not in ignored
    }
    assert task_count(db) == 1


def test_head_where_there_is_no_get_is_a_405(client, auth_headers):
    task_path = "/api/alice/tasks/1/complete"

    response = client.head(task_path, headers=auth_headers("alice"))

    assert response.status_code == 405
    assert response.headers["allow"] == "PATCH"
    assert response.content == b""
