import structlog
from fastapi import APIRouter, Request, Response

from features.tasks.complete_task.query import set_task_completion
from features.tasks.complete_task.schemas import CompleteTaskRequest, CompleteTaskResponse
from shared.auth import TaskOwner, record_user
from shared.db import (
    DbSession,
    IfMatch,
    TaskId,
    TaskNotFoundError,
    VersionMismatchError,
    entity_tag,
    error_responses,
    json_response,
    log_after_commit,
    not_found_or_changed,
    versions_in,
)

router = APIRouter()
log = structlog.get_logger()

# What a client can do next with this task: OpenAPI links (the task's id from the body, the
# same person), which generated clients and Schemathesis's stateful tests follow.
_LINKS = {
    operation_id: {
        "operationId": operation_id,
        "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
    }
    for operation_id in ("get_task", "update_task", "delete_task")
}


@router.patch(
    "/api/{user_id}/tasks/{task_id}/complete",
    operation_id="complete_task",
    response_model=CompleteTaskResponse,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The task's version now.", "schema": {"type": "string"}}
            },
            "links": _LINKS,
        },
        **error_responses(TaskNotFoundError, VersionMismatchError),
    },
)
async def complete_task(
    request: Request,
    task_id: TaskId,
    owner: TaskOwner,
    session: DbSession,
    body: CompleteTaskRequest | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Mark a task done or not done: set the state when given, otherwise toggle it."""
    completed = body.completed if body is not None else None
    expected = versions_in(if_match, weak_matches=False) if if_match is not None else None
    await record_user(request, session, owner)
    task = await set_task_completion(session, owner.id, task_id, completed, expected)
    if task is None:
        raise await not_found_or_changed(session, owner.id, task_id, expected)
    log_after_commit(
        session,
        log.info,
        "task.completion_changed",
        task_id=task_id,
        user_id=owner.id,
        completed=task.completed,
    )
    return json_response(CompleteTaskResponse, task, headers={"ETag": entity_tag(task.version)})
