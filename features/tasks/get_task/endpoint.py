from fastapi import APIRouter, Response

from features.tasks.get_task.query import find_task_of_user
from features.tasks.get_task.schemas import GetTaskResponse
from shared.auth import TaskOwner
from shared.db import (
    DbSession,
    IfNoneMatch,
    TaskId,
    TaskNotFoundError,
    entity_tag,
    error_responses,
    json_response,
    versions_in,
)

router = APIRouter()

# What a client can do next with this task: OpenAPI links (the task's id from the body, the
# same person), which generated clients and Schemathesis's stateful tests follow.
_LINKS = {
    operation_id: {
        "operationId": operation_id,
        "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
    }
    for operation_id in ("update_task", "complete_task", "delete_task")
}


@router.get(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="get_task",
    response_model=GetTaskResponse,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The task's version.", "schema": {"type": "string"}}
            },
            "links": _LINKS,
        },
        304: {"description": "The task is unchanged since the ETag in `If-None-Match`."},
        **error_responses(TaskNotFoundError),
    },
)
async def get_task(
    task_id: TaskId,
    owner: TaskOwner,
    session: DbSession,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Fetch one task from the signed-in person's list."""
    task = await find_task_of_user(session, owner.id, task_id)
    if task is None:
        raise TaskNotFoundError(task_id)
    tag = entity_tag(task.version)
    if if_none_match is not None:
        versions = versions_in(if_none_match, weak_matches=True)
        if versions is None or task.version in versions:
            return Response(status_code=304, headers={"ETag": tag})
    return json_response(GetTaskResponse, task, headers={"ETag": tag})
