from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from features.tasks.delete_task.query import delete_task_of_user, task_of_user_exists
from shared.auth import TaskOwner, record_user
from shared.db import DbSession, IfMatch, versions_in

router = APIRouter()
log = structlog.get_logger()

TaskId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The task's id.")]


@router.delete(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="delete_task",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        404: {"description": "No such task on this person's list."},
        412: {"description": "The task changed since the version in `If-Match`; nothing changed."},
    },
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
    if not await delete_task_of_user(session, owner.id, task_id, expected):
        if expected is not None and await task_of_user_exists(session, owner.id, task_id):
            raise HTTPException(412, f"Task {task_id} has changed since the version in If-Match")
        raise HTTPException(404, f"Task {task_id} was not found")
    await record_user(request, session, owner)
    log.info("task.deleted", task_id=task_id, user_id=owner.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
