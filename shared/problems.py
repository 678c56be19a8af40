"""RFC 9457 problem details: the one shape of every error this service answers with."""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg.errors import QueryCanceled
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from shared.db import SchemaNotReadyError
from shared.request_bodies import unknown_field_reason

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5

log = structlog.get_logger()


class FieldError(BaseModel):
    """One invalid part of the request."""

    location: str = Field(description="Where the value came from: body, path, query or header.")
    field: str | None = Field(description="The field's name (dotted for nested ones), if any.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable error code.")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(default="about:blank", description="A URI reference for the problem type.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a person to read.")
    request_id: str | None = Field(
        default=None, description="The request's id, as in the X-Request-ID header."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Each invalid field (400 responses only)."
    )


def request_id_of(scope: Scope) -> str | None:
    return scope.get("state", {}).get("request_id")


def problem_response(
    scope: Scope,
    status: int,
    detail: str,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    problem = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        request_id=request_id_of(scope),
        errors=list(errors) if errors is not None else None,
    )
    # `request_id` and `errors` are left out when there are none; a field error keeps all its
    # keys, `field` null when the error is the whole body's (as the Problem schema says).
    absent = {name for name in ("request_id", "errors") if getattr(problem, name) is None}
    return Response(
        content=problem.model_dump_json(exclude=absent),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


# Why a value was refused, in words a person reads after the field's name ("title: at most 200
# characters"), for the error types this API's requests can raise. Any other type gets
# Pydantic's own message, reworded the same way (`_reworded`).
_REASONS = {
    "missing": "required",
    "string_too_long": "at most {max_length} characters",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _reworded(message: str) -> str:
    for prefix, replacement in (
        ("Value error, ", ""),
        ("Input should be ", "must be "),
        ("Input should ", "must "),
        ("String should have ", "must have "),
        ("String should ", "must "),
    ):
        if message.startswith(prefix):
            message = replacement + message.removeprefix(prefix)
            break
    return message[:1].lower() + message[1:]


def _reason(error_type: str, message: str, context: Mapping[str, Any], name: str) -> str:
    if error_type == "extra_forbidden":
        return unknown_field_reason(name)
    if error_type == "string_too_short":
        minimum = context.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"at least {minimum} characters"
    template = _REASONS.get(error_type)
    if template is None:
        return _reworded(message)
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return _reworded(message)


def _field_error(error: Mapping[str, Any]) -> FieldError:
    location, *path = error["loc"] or ("body",)
    error_type = error["type"]
    context = error.get("ctx") or {}
    whole_body = not path and location == "body"
    if error_type == "json_invalid":
        path = []
        message = f"not valid JSON ({context.get('error', error['msg'])})"
    elif error_type == "missing" and whole_body:
        message = "a JSON object is required, sent as application/json"
    elif error_type in {"model_attributes_type", "model_type", "dict_type"} and whole_body:
        message = "must be a JSON object sent as application/json"
    elif error_type.endswith("_type") and "input" in error and error["input"] is None:
        message = "must not be null"  # the field may be omitted, but it has no null value
    else:
        message = _reason(error_type, error["msg"], context, str(path[-1]) if path else "")
    return FieldError(
        location=str(location),
        # A field named "" is still a field ("": 1 in a body), not the body as a whole.
        field=".".join(str(part) for part in path) if path else None,
        message=message,
        type=error_type,
    )


def _name_of(error: FieldError) -> str:
    if error.field is None:
        return error.location
    return error.field or '""'


def _one_sentence(errors: Sequence[FieldError]) -> str:
    """Every invalid field with its reason, for a person: "title: at most 200 characters;
    priority: not a field of this API"."""
    parts = [f"{_name_of(error)}: {error.message}" for error in errors]
    return "; ".join(dict.fromkeys(parts))


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    errors = [_field_error(error) for error in exc.errors()]
    return problem_response(request.scope, 400, _one_sentence(errors), errors=errors)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"Nothing is at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {allowed}."
    return problem_response(request.scope, exc.status_code, detail, headers=exc.headers)


def _why_unavailable(exc: Exception) -> str:
    if isinstance(exc, SchemaNotReadyError):
        return str(exc) or "The service is starting and preparing its database; try again shortly."
    if isinstance(exc, PoolTimeoutError):
        return "Every database connection is busy; try again shortly."
    if isinstance(getattr(exc, "orig", None), QueryCanceled):
        return "The database did not answer in time; try again shortly."
    return "The database is unavailable; try again shortly."


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # A lost connection, a full pool or a statement past its time limit is the server's fault
    # but passing: 503 invites a retry.
    cause = getattr(exc, "orig", None) or exc
    # A schema not yet migrated is expected while starting; the rest deserve attention.
    level = log.warning if isinstance(exc, SchemaNotReadyError) else log.error
    level("database.unavailable", error_type=type(cause).__name__)
    return problem_response(
        request.scope,
        503,
        _why_unavailable(exc),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError, SchemaNotReadyError):
        app.add_exception_handler(unavailable, _database_unavailable)


def internal_error_body(scope: Scope) -> bytes:
    problem = Problem(
        title=HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
        status=500,
        detail="The server failed to handle this request; it has been logged.",
        request_id=request_id_of(scope),
    )
    return problem.model_dump_json(exclude_none=True).encode()


def problem_openapi(openapi: dict[str, Any]) -> dict[str, Any]:
    """Give every error response the problem schema, and report validation as 400, not 422.

    Slices declare only which errors they can return (`responses={404: {...}}`); the shape is
    the same everywhere, so it is filled in here once.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            # FastAPI's own 422 for validation; a 422 a route declares itself stays.
            if responses.get("422", {}).get("description") == "Validation Error":
                del responses["422"]
                responses.setdefault("400", {"description": "The request is invalid."})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = problem_content
    return openapi
