import hashlib
import json
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Request, Response, status
from pydantic import AfterValidator, WithJsonSchema

from features.tasks.create_task.query import (
    EarlierRequest,
    claim_idempotency_key,
    find_live_idempotency_key,
    insert_task,
)
from features.tasks.create_task.schemas import CreateTaskRequest, CreateTaskResponse
from shared.auth import TaskOwner, record_user
from shared.db import (
    FIRST_VERSION,
    DatabaseSession,
    DbSession,
    ProblemError,
    StoredTask,
    entity_tag,
    error_responses,
    json_response,
    log_after_commit,
)

router = APIRouter()
log = structlog.get_logger()


class IdempotencyKeyInFlightError(ProblemError):
    status = 409
    description = "A request with this Idempotency-Key is being handled; retry."

    def __init__(self) -> None:
        super().__init__(
            "Another request with this Idempotency-Key got there first; retry to get its result"
        )


class IdempotencyKeyReusedError(ProblemError):
    status = 422
    description = "This Idempotency-Key was used with a different body."

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different body")


# What a client can do next with the task it created: OpenAPI links (the task's id from the
# body, the same person), which generated clients and Schemathesis's stateful tests follow.
_LINKS = {
    operation_id: {
        "operationId": operation_id,
        "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
    }
    for operation_id in ("get_task", "update_task", "complete_task", "delete_task")
}


def _plain_key(value: str | None) -> str | None:
    if value is None:
        return None
    # The IETF draft sends the key as a quoted structured-field string; many clients do not.
    key = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if not 1 <= len(key) <= 255 or not all(33 <= ord(char) <= 126 for char in key):
        raise ValueError("must be 1 to 255 visible ASCII characters, such as a UUID")
    return key


# `_plain_key`'s rule as a pattern, for the OpenAPI document: a quoted key, or an unquoted one
# (1 to 255 visible ASCII characters) that does not both start and end with a quote.
_KEY = r"[\x21-\x7e]"
_UNQUOTED_END = r"[\x21\x23-\x7e]"
_KEY_PATTERN = (
    rf'^"{_KEY}{{1,255}}"$|^{_KEY}$'
    rf'|^{_UNQUOTED_END}{_KEY}{{0,253}}{_KEY}$|^"{_KEY}{{0,253}}{_UNQUOTED_END}$'
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A unique key per intended creation (a UUID). A retry with the same key "
        "within 24 hours returns the first response and creates nothing new.",
    ),
    AfterValidator(_plain_key),
    # Absent or a string, never null; one not matching the pattern is a 400.
    WithJsonSchema({"type": "string", "pattern": _KEY_PATTERN}),
]


def _fingerprint(body: CreateTaskRequest) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()


def _location(request: Request, task_id: int) -> str:
    # The collection's URL exactly as the client wrote it, so the Location needs no re-encoding.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    return f"{raw_path.decode('latin-1').rstrip('/')}/{task_id}"


@router.post(
    "/api/{user_id}/tasks",
    operation_id="create_task",
    status_code=status.HTTP_201_CREATED,
    response_description="The created task; `Location` gives its URL.",
    response_model=CreateTaskResponse,
    responses={
        201: {
            "headers": {
                "Location": {"description": "The new task's URL.", "schema": {"type": "string"}},
                "ETag": {"description": "The task's version.", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored response to an earlier "
                    "request with the same Idempotency-Key.",
                    "schema": {"type": "string"},
                },
            },
            "links": _LINKS,
        },
        **error_responses(IdempotencyKeyInFlightError, IdempotencyKeyReusedError),
    },
)
async def create_task(
    body: CreateTaskRequest,
    owner: TaskOwner,
    session: DbSession,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Add a task to the signed-in person's list (safely retried with an Idempotency-Key)."""
    if idempotency_key is None:
        # One statement (two more the first time this process sees the person), each
        # committing by itself.
        await record_user(request, session, owner)
        task = await insert_task(session, owner.id, body.title, body.description, body.completed)
        created = _created(request, task)
    else:
        # The task and its key stand or fall together.
        async with session.transaction():
            fingerprint = _fingerprint(body)
            earlier = await find_live_idempotency_key(session, owner.id, idempotency_key)
            if earlier is not None:
                return _replay(request, session, earlier, fingerprint)
            await record_user(request, session, owner)
            task = await insert_task(
                session, owner.id, body.title, body.description, body.completed
            )
            created = _created(request, task)
            # The body stored for a replay is the very bytes sent now.
            stored_body = bytes(created.body).decode()
            if not await claim_idempotency_key(
                session, owner.id, idempotency_key, fingerprint, task.id, stored_body
            ):
                # Raising rolls this request's task back: only the first request's task exists.
                raise IdempotencyKeyInFlightError
    log_after_commit(session, log.info, "task.created", task_id=task.id, user_id=owner.id)
    return created


def _created(request: Request, task: StoredTask) -> Response:
    return json_response(
        CreateTaskResponse,
        task,
        status_code=status.HTTP_201_CREATED,
        headers={"Location": _location(request, task.id), "ETag": entity_tag(task.version)},
    )


def _replay(
    request: Request, session: DatabaseSession, earlier: EarlierRequest, fingerprint: str
) -> Response:
    if earlier.request_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError
    log_after_commit(session, log.info, "task.create_replayed", task_id=earlier.task_id)
    return Response(
        content=earlier.response_body,
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers={
            "Location": _location(request, earlier.task_id),
            # The first response's, as its stored body is: the task as it was created.
            "ETag": entity_tag(FIRST_VERSION),
            "Idempotent-Replayed": "true",
        },
    )
