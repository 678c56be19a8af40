import structlog
from fastapi import APIRouter, Request, Response

from features.tasks.update_task.query import find_task_of_user, update_task_of_user
from features.tasks.update_task.schemas import UpdateTaskRequest, UpdateTaskResponse
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
    for operation_id in ("get_task", "complete_task", "delete_task")
}


@router.put(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="update_task",
    response_model=UpdateTaskResponse,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The task's new version.", "schema": {"type": "string"}}
            },
            "links": _LINKS,
        },
        **error_responses(TaskNotFoundError, VersionMismatchError),
    },
)
async def update_task(
    request: Request,
    task_id: TaskId,
    body: UpdateTaskRequest,
    owner: TaskOwner,
    session: DbSession,
    if_match: IfMatch = None,
) -> Response:
    """Change any of a task's title, description and state; an omitted field keeps its value."""
    expected = versions_in(if_match, weak_matches=False) if if_match is not None else None
    changes = body.changes()
    await record_user(request, session, owner)
    if changes:
        task = await update_task_of_user(session, owner.id, task_id, changes, expected)
        if task is None:
            raise await not_found_or_changed(session, owner.id, task_id, expected)
    else:
        # Nothing to change: the task is answered as it is, its version and updated_at unmoved.
        task = await find_task_of_user(session, owner.id, task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        if expected is not None and task.version not in expected:
            raise VersionMismatchError(task_id)
    if changes:
        log_after_commit(session, log.info, "task.updated", task_id=task_id, user_id=owner.id)
    return json_response(UpdateTaskResponse, task, headers={"ETag": entity_tag(task.version)})
