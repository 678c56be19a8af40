"""The OpenAPI document is the frontend's contract: it must say what the app really answers."""

from pathlib import Path

import pytest


@pytest.fixture
def openapi(client):
    return client.get("/openapi.json").json()


def _operations(openapi):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_operation_ids_are_the_slice_names(openapi):
    operation_ids = {operation["operationId"] for _, _, operation in _operations(openapi)}
    slices = {
        path.name
        for path in (Path(__file__).parents[1] / "features").glob("*/*")
        if path.is_dir() and not path.name.startswith("__")
    }

    assert len(slices) == 8
    assert operation_ids == slices


def test_validation_is_documented_as_400_never_422(openapi):
    for path, method, operation in _operations(openapi):
        if operation["operationId"] != "create_task":
            assert "422" not in operation["responses"], (path, method)
        if path.startswith("/api/"):
            assert "400" in operation["responses"], (path, method)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_every_error_response_has_the_problem_schema(openapi):
    for path, method, operation in _operations(openapi):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (path, method, status)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/api/{user_id}/tasks", {"200", "400", "401", "403"}),
        ("post", "/api/{user_id}/tasks", {"201", "400", "401", "403", "413"}),
        ("get", "/api/{user_id}/tasks/{task_id}", {"200", "400", "401", "403", "404"}),
        ("put", "/api/{user_id}/tasks/{task_id}", {"200", "400", "401", "403", "404"}),
        ("delete", "/api/{user_id}/tasks/{task_id}", {"204", "400", "401", "403", "404"}),
        ("patch", "/api/{user_id}/tasks/{task_id}/complete", {"200", "400", "401", "403", "404"}),
    ],
)
def test_each_route_declares_the_statuses_it_answers(openapi, method, path, statuses):
    operation = openapi["paths"][path][method]

    assert statuses <= set(operation["responses"])
    assert operation["security"] == [{"HTTPBearer": []}]
    assert operation["description"]


def test_create_documents_its_headers_and_idempotency_errors(openapi):
    create = openapi["paths"]["/api/{user_id}/tasks"]["post"]

    assert {"Location", "ETag", "Idempotent-Replayed"} <= set(create["responses"]["201"]["headers"])
    assert "Idempotency-Key" in {parameter["name"] for parameter in create["parameters"]}
    assert "different body" in create["responses"]["422"]["description"]
    assert "409" in create["responses"]


def test_the_problem_schema_names_its_fields(openapi):
    problem = openapi["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail", "request_id", "errors"} <= set(
        problem["properties"]
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "targets"),
    [
        (
            "post",
            "/api/{user_id}/tasks",
            "201",
            {"get_task", "update_task", "complete_task", "delete_task"},
        ),
        (
            "get",
            "/api/{user_id}/tasks/{task_id}",
            "200",
            {"update_task", "complete_task", "delete_task"},
        ),
        (
            "put",
            "/api/{user_id}/tasks/{task_id}",
            "200",
            {"get_task", "complete_task", "delete_task"},
        ),
        (
            "patch",
            "/api/{user_id}/tasks/{task_id}/complete",
            "200",
            {"get_task", "update_task", "delete_task"},
        ),
    ],
)
def test_a_returned_task_links_to_the_operations_on_it(openapi, method, path, status, targets):
    links = openapi["paths"][path][method]["responses"][status]["links"]
    operation_ids = {operation["operationId"] for _, _, operation in _operations(openapi)}

    assert {link["operationId"] for link in links.values()} == targets
    assert targets <= operation_ids
    for link in links.values():
        assert link["parameters"] == {
            "user_id": "$request.path.user_id",
            "task_id": "$response.body#/id",
        }
