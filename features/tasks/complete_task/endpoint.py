from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Request

from features.tasks.complete_task.query import set_task_completion
from features.tasks.complete_task.schemas import CompleteTaskRequest, CompleteTaskResponse
from shared.auth import TaskOwner, record_user
from shared.db import DbSession

router = APIRouter()
log = structlog.get_logger()

TaskId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The task's id.")]


@router.patch(
    "/api/{user_id}/tasks/{task_id}/complete",
    operation_id="complete_task",
    responses={404: {"description": "No such task on this person's list."}},
)
async def complete_task(
    request: Request,
    task_id: TaskId,
    owner: TaskOwner,
    session: DbSession,
    body: CompleteTaskRequest | None = None,
) -> CompleteTaskResponse:
    """Mark a task done or not done: set the state when given, otherwise toggle it."""
    await record_user(request, session, owner)
    completed = body.completed if body is not None else None
    task = await set_task_completion(session, owner.id, task_id, completed)
    if task is None:
        raise HTTPException(404, f"Task {task_id} was not found")
    log.info("task.completion_changed", task_id=task_id, user_id=owner.id, completed=task.completed)
    return CompleteTaskResponse.model_validate(task)
