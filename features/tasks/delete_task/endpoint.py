import structlog
from fastapi import APIRouter, Request, Response, status

from features.tasks.delete_task.query import delete_task_of_user
from shared.auth import TaskOwner, record_user
from shared.db import (
    DbSession,
    IfMatch,
    TaskId,
    TaskNotFoundError,
    VersionMismatchError,
    error_responses,
    log_after_commit,
    not_found_or_changed,
    versions_in,
)

router = APIRouter()
log = structlog.get_logger()


@router.delete(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="delete_task",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(TaskNotFoundError, VersionMismatchError),
)
async def delete_task(
    request: Request,
    task_id: TaskId,
    owner: TaskOwner,
    session: DbSession,
    if_match: IfMatch = None,
) -> Response:
    """Delete a task from the signed-in person's list."""
    expected = versions_in(if_match, weak_matches=False) if if_match is not None else None
    await record_user(request, session, owner)
    if not await delete_task_of_user(session, owner.id, task_id, expected):
        raise await not_found_or_changed(session, owner.id, task_id, expected)
    log_after_commit(session, log.info, "task.deleted", task_id=task_id, user_id=owner.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
