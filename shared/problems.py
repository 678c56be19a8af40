"""RFC 9457 problem details: the one shape of every error this service answers with."""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from shared.db import (
    DatabaseNotReadyError,
    ProblemError,
    SchemaNotReadyError,
    StatementError,
    unknown_field_reason,
)
from shared.db_failures import DatabaseFailure, FailureKind, describe_database_failure
from shared.methods import methods_at

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5
INTERNAL_ERROR_DETAIL = "The server failed to handle this request; it has been logged."

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
    headers = exc.headers
    if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"Nothing is at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        # Every method of the path, not only those of the route the router tried first.
        allowed = ", ".join(methods_at(request.scope, request.app.routes))
        headers = {**(exc.headers or {}), "Allow": allowed}
        detail = f"{request.method} is not allowed here; allowed: {allowed}."
    return problem_response(request.scope, exc.status_code, detail, headers=headers)


async def _named_error(request: Request, exc: ProblemError) -> Response:
    return problem_response(request.scope, exc.status, exc.detail)


_WHY_UNAVAILABLE = {
    FailureKind.UNAVAILABLE: "The database is unavailable; try again shortly.",
    FailureKind.POOL: "Every database connection is busy; try again shortly.",
    FailureKind.TIMEOUT: "The database did not answer in time; try again shortly.",
    FailureKind.CONTENTION: "A concurrent change to the same data got in the way; try again.",
    FailureKind.SCHEMA_PENDING: "The service is starting and preparing its database; "
    "try again shortly.",
}
# For /ready only, which answers 503 even to a fault: the probe takes the instance out of
# rotation, and the log line says what to fix.
_NOT_READY = "The database failed the readiness check; the service's log says why."


def _why_unavailable(failure: DatabaseFailure, error: BaseException) -> str:
    if isinstance(error, SchemaNotReadyError) and str(error):
        return str(error)
    return _WHY_UNAVAILABLE.get(failure.kind, _NOT_READY)


def _retry_later(scope: Scope, detail: str) -> Response:
    return problem_response(scope, 503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _database_failed(request: Request, exc: Exception) -> Response:
    # Only what passes (no connection, a full pool, a time limit, a lock) is a 503 that invites
    # a retry; a fault of our code or schema would fail the same way again: a 500, logged so
    # that someone fixes it.
    failure = describe_database_failure(exc) or DatabaseFailure(FailureKind.FAULT, {})
    if failure.retryable:
        failure.log("database.unavailable")
        return _retry_later(request.scope, _why_unavailable(failure, exc))
    failure.log("database.fault")
    return problem_response(request.scope, 500, INTERNAL_ERROR_DETAIL)


async def _not_ready(request: Request, exc: DatabaseNotReadyError) -> Response:
    cause = exc.__cause__ or exc
    failure = describe_database_failure(cause) or DatabaseFailure(
        FailureKind.FAULT, {"error": type(cause).__name__}
    )
    failure.log("readiness.failed")
    return _retry_later(request.scope, _why_unavailable(failure, cause))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    # Every named error a handler raises (`TaskNotFoundError`, ...), whatever its subclass.
    app.add_exception_handler(ProblemError, _named_error)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseNotReadyError, _not_ready)  # type: ignore[arg-type]
    # A statement that failed, every error the driver raises while connecting (the pool's
    # PoolTimeout is one of them), and ours.
    for failed in (StatementError, psycopg.Error, SchemaNotReadyError):
        app.add_exception_handler(failed, _database_failed)


def internal_error_body(scope: Scope) -> bytes:
    problem = Problem(
        title=HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
        status=500,
        detail=INTERNAL_ERROR_DETAIL,
        request_id=request_id_of(scope),
    )
    return problem.model_dump_json(exclude_none=True).encode()


def problem_openapi(openapi: dict[str, Any]) -> dict[str, Any]:
    """Give every error response the problem schema, and report validation as 400, not 422.

    Slices declare only which errors they can return (`responses=error_responses(...)`); the
    shape is the same everywhere, so it is filled in here once.
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
