"""The OpenAPI document is the frontend's contract: it must say what the app really answers."""

import re
from pathlib import Path

import pytest

from tests.routes import ROUTES, TASK_ROUTES


@pytest.fixture
def openapi(client):
    return client.get("/openapi.json").json()


def _operations(openapi):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_documented_operations_are_the_registered_slices(openapi):
    documented = sorted(
        (method.upper(), path, operation["operationId"])
        for path, method, operation in _operations(openapi)
    )
    slices = {
        path.name
        for path in (Path(__file__).parents[1] / "features").glob("*/*")
        if path.is_dir() and not path.name.startswith("__")
    }

    assert len(ROUTES) >= 8
    assert documented == sorted((route.method, route.path, route.operation_id) for route in ROUTES)
    assert {operation_id for _, _, operation_id in documented} == slices


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


@pytest.mark.parametrize("route", TASK_ROUTES, ids=str)
def test_each_task_route_declares_the_statuses_it_answers(openapi, route):
    operation = openapi["paths"][route.path][route.method.lower()]
    statuses = {str(route.status_code), "400", "401", "403", "413", "431", "500", "503"}
    if route.takes_a_task_id:
        statuses.add("404")

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


def _parameter_schema(openapi, method, path, name):
    operation = openapi["paths"][path][method]
    return next(p["schema"] for p in operation["parameters"] if p["name"] == name)


def _documented_as_valid(schema, value):
    return schema["type"] == "string" and re.search(schema["pattern"], value) is not None


@pytest.mark.parametrize(
    "value",
    ['"1"', '"9", W/"1"', '\t"1"\t,"2"', "*", " * ", "1", '"1', "", '"1",', '"a,b"', "**"],
)
def test_the_documented_if_match_is_the_one_the_app_accepts(openapi, client, auth_headers, value):
    # A missing task: a well-formed If-Match gets as far as the lookup (404), a malformed one
    # is refused first (400). The document's pattern must draw the same line.
    response = client.put(
        "/api/alice/tasks/123",
        json={"title": "x"},
        headers={**auth_headers("alice"), "If-Match": value},
    )
    schema = _parameter_schema(openapi, "put", "/api/{user_id}/tasks/{task_id}", "If-Match")

    assert response.status_code in {400, 404}
    assert _documented_as_valid(schema, value) == (response.status_code == 404)


@pytest.mark.parametrize(
    "value",
    [
        *("k", '"', "abc-123", '"quoted"', '"x', 'x"', "x" * 255, f'"{"x" * 255}"'),
        *("", '""', "x" * 256, f'"{"x" * 256}"', "has space", "tab\tinside", f'{"x" * 255}"'),
    ],
)
def test_the_documented_idempotency_key_is_the_one_the_app_accepts(
    openapi, client, auth_headers, value
):
    response = client.post(
        "/api/alice/tasks",
        json={"title": "x"},
        headers={**auth_headers("alice"), "Idempotency-Key": value},
    )
    schema = _parameter_schema(openapi, "post", "/api/{user_id}/tasks", "Idempotency-Key")

    assert response.status_code in {201, 400}
    assert _documented_as_valid(schema, value) == (response.status_code == 201)


@pytest.mark.parametrize(
    ("title", "description"),
    [("ok", None), (" a ", "\t"), ("  ", None), ("\t\n", None), ("nul\x00", None), ("ok", "\x00")],
)
def test_the_documented_title_and_description_are_the_ones_the_app_accepts(
    openapi, client, auth_headers, title, description
):
    response = client.post(
        "/api/alice/tasks",
        json={"title": title, "description": description},
        headers=auth_headers("alice"),
    )
    fields = openapi["components"]["schemas"]["CreateTaskRequest"]["properties"]
    title_schema = fields["title"]
    description_schema = fields["description"]["anyOf"][0]

    documented = _documented_as_valid(title_schema, title) and (
        description is None or _documented_as_valid(description_schema, description)
    )
    assert response.status_code in {201, 400}
    assert documented == (response.status_code == 201)


@pytest.mark.parametrize("q", ["milk", " ", "50%_off", "nul\x00", "\x00"])
def test_the_documented_search_text_is_the_one_the_app_accepts(openapi, client, auth_headers, q):
    response = client.get("/api/alice/tasks", params={"q": q}, headers=auth_headers("alice"))
    schema = _parameter_schema(openapi, "get", "/api/{user_id}/tasks", "q")["anyOf"][0]

    assert response.status_code in {200, 400}
    assert _documented_as_valid(schema, q) == (response.status_code == 200)


SERVER_SET_FIELDS = {"id", "user_id", "created_at", "updated_at"}


@pytest.mark.parametrize(
    ("name", "own_fields", "required"),
    [
        ("CreateTaskRequest", {"title", "description", "completed"}, ["title"]),
        ("UpdateTaskRequest", {"title", "description", "completed"}, None),
        ("CompleteTaskRequest", {"completed"}, None),
    ],
)
def test_each_request_body_says_what_it_takes_ignores_and_refuses(
    openapi, name, own_fields, required
):
    schema = openapi["components"]["schemas"][name]

    assert set(schema["properties"]) == own_fields | SERVER_SET_FIELDS
    assert schema.get("required") == required
    for field in SERVER_SET_FIELDS:
        # Any value is accepted, and ignored: the schema says so and constrains nothing.
        assert schema["properties"][field] == {
            "description": schema["properties"]["id"]["description"]
        }
        assert "ignored" in schema["properties"][field]["description"]
    # Fields it does not have are accepted only as null (and ignored); a value is a 400.
    assert schema["unevaluatedProperties"]["type"] == "null"
    assert "additionalProperties" not in schema
    assert schema["description"]


def test_the_update_body_documents_omitted_and_null_fields(openapi):
    fields = openapi["components"]["schemas"]["UpdateTaskRequest"]["properties"]

    assert fields["title"]["type"] == "string"  # never null: a task always has a title
    assert {"type": "null"} in fields["description"]["anyOf"]  # null clears it
    assert fields["completed"]["type"] == "boolean"
    assert all("default" not in fields[name] for name in ("title", "description", "completed"))


def test_the_default_page_is_the_largest_page_a_thousand_tasks(openapi):
    limit = _parameter_schema(openapi, "get", "/api/{user_id}/tasks", "limit")

    assert (limit["default"], limit["maximum"], limit["minimum"]) == (1000, 1000, 1)
