from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from features.tasks.get_task.query import find_task_of_user
from features.tasks.get_task.schemas import GetTaskResponse
from shared.auth import TaskOwner
from shared.db import DbSession

router = APIRouter()

TaskId = Annotated[int, Path(gt=0, le=2**63 - 1, description="The task's id.")]


@router.get(
    "/api/{user_id}/tasks/{task_id}",
    operation_id="get_task",
    responses={404: {"description": "No such task on this person's list."}},
)
async def get_task(task_id: TaskId, owner: TaskOwner, session: DbSession) -> GetTaskResponse:
    """Fetch one task from the signed-in person's list."""
    task = await find_task_of_user(session, owner.id, task_id)
    if task is None:
        raise HTTPException(404, f"Task {task_id} was not found")
    return GetTaskResponse.model_validate(task)
