from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Request

from features.tasks.update_task.query import update_task_of_user
from features.tasks.update_task.schemas import UpdateTaskRequest, UpdateTaskResponse
from shared.auth import TaskOwner, record_user
from shared.db import DbSession

router = APIRouter()
log = structlog.get_logger()

TaskId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The task's id.")]


@router.put(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="update_task",
    responses={404: {"description": "No such task on this person's list."}},
)
async def update_task(
    request: Request, task_id: TaskId, body: UpdateTaskRequest, owner: TaskOwner, session: DbSession
) -> UpdateTaskResponse:
    """Replace a task's title, and its description and state where given."""
    await record_user(request, session, owner)
    task = await update_task_of_user(session, owner.id, task_id, body.changes())
    if task is None:
        raise HTTPException(404, f"Task {task_id} was not found")
    log.info("task.updated", task_id=task_id, user_id=owner.id)
    return UpdateTaskResponse.model_validate(task)
