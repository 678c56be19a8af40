"""Every route as `features/registry.py` registers it, for the tests that must cover every route
(the authorization matrix, bad input, CORS, the OpenAPI contract, the architecture test): a new
slice registered there is covered by them without editing them.

What a test needs per route is derived rather than kept by hand: the path from the route itself,
and a valid request body from the OpenAPI document's schema for the operation. A path parameter
these helpers cannot fill fails the test that meets it, saying what to add.
"""

import re
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import APIRouter
from fastapi.routing import APIRoute
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from features.registry import PUBLIC_ROUTERS, TASK_ROUTERS

_PATH_PARAMETER = re.compile(r"{(\w+)}")
# What the tests can put in a path: a person (whose token they hold) and one of their tasks.
FILLABLE_PATH_PARAMETERS = {"user_id", "task_id"}


@dataclass(frozen=True)
class Route:
    """One method of one registered route."""

    operation_id: str
    method: str
    path: str  # as declared: /api/{user_id}/tasks/{task_id}
    status_code: int  # what it answers on success
    endpoint_module: str
    endpoint_name: str
    public: bool
    takes_a_body: bool

    def __str__(self) -> str:
        return self.operation_id

    @property
    def takes_a_task_id(self) -> bool:
        return "{task_id}" in self.path

    def url(self, *, user_id: str = "alice", task_id: int | str = 1) -> str:
        """The path with this person and task filled in."""
        unknown = set(_PATH_PARAMETER.findall(self.path)) - FILLABLE_PATH_PARAMETERS
        if unknown:
            pytest.fail(
                f"{self.operation_id}: its path {self.path} has {sorted(unknown)}, which "
                "tests/routes.py cannot fill; teach Route.url a valid value for each, and the "
                "tests that cover every route will use it"
            )
        return self.path.format(user_id=user_id, task_id=task_id)


def _routes_of(routers: list[APIRouter], *, public: bool) -> list[Route]:
    routes = []
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute), f"{route!r} in a registered router is not a route"
            assert route.operation_id, f"{route.path}: every route names its operation_id"
            routes += [
                Route(
                    operation_id=route.operation_id,
                    method=method,
                    path=route.path,
                    status_code=route.status_code or 200,
                    endpoint_module=route.endpoint.__module__,
                    endpoint_name=route.endpoint.__name__,
                    public=public,
                    takes_a_body=route.body_field is not None,
                )
                for method in sorted(route.methods or ())
            ]
    return routes


PUBLIC_ROUTES = _routes_of(PUBLIC_ROUTERS, public=True)
TASK_ROUTES = _routes_of(TASK_ROUTERS, public=False)
ROUTES = PUBLIC_ROUTES + TASK_ROUTES
TASK_ROUTES_WITH_A_TASK_ID = [route for route in TASK_ROUTES if route.takes_a_task_id]
TASK_ROUTES_WITH_A_BODY = [route for route in TASK_ROUTES if route.takes_a_body]


class RequestBodies:
    """A valid request body for each operation of an OpenAPI document, drawn from its schema
    by Schemathesis (the same generator that proves the app accepts every such body)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._schema = schemathesis.openapi.from_dict(document)
        self._bodies: dict[str, Any] = {}

    def text_field(self, route: Route) -> str:
        """The body's first field that takes text, else its first field: where a test puts
        bytes that must be refused, so that they would otherwise be read."""
        operation = self._schema.find_operation_by_id(route.operation_id)
        body = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
        fields: dict[str, Any] = {}
        for alternative in body.get("anyOf", [body]):
            fields |= self._resolved(alternative).get("properties", {})
        assert fields, f"{route.operation_id}: its body has no fields"
        takes_text = [
            name
            for name, field in fields.items()
            if "string" in {each.get("type") for each in field.get("anyOf", [field])}
        ]
        return (takes_text or list(fields))[0]

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" not in schema:
            return schema
        resolved: dict[str, Any] = self._document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            resolved = resolved[part]
        return resolved

    def valid(self, route: Route) -> Any:
        """The simplest request body the operation accepts; None when it takes none, or when
        its body is optional (then the simplest request sends none)."""
        if route.operation_id not in self._bodies:
            self._bodies[route.operation_id] = self._simplest_body(route.operation_id)
        return self._bodies[route.operation_id]

    def _simplest_body(self, operation_id: str) -> Any:
        operation = self._schema.find_operation_by_id(operation_id)
        drawn: list[Any] = []

        # Hypothesis tries the simplest case first (shrinking would take seconds, for nothing).
        @hypothesis.seed(0)
        @hypothesis.settings(
            max_examples=1,
            database=None,
            phases=[hypothesis.Phase.generate],
            # A loaded machine (CI, parallel runs) is not a slow strategy.
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
        )
        @hypothesis.given(case=operation.as_strategy(GenerationMode.POSITIVE))
        def draw(case: schemathesis.Case) -> None:
            drawn.append(None if isinstance(case.body, NotSet) else case.body)

        draw()
        return drawn[0]
