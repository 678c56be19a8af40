from fastapi import APIRouter

from features.tasks.list_tasks.query import find_tasks_of_user
from features.tasks.list_tasks.schemas import ListTasksItem
from shared.auth import TaskOwner
from shared.db import DbSession

router = APIRouter()


@router.get("/api/{user_id}/tasks", operation_id="list_tasks")
async def list_tasks(owner: TaskOwner, session: DbSession) -> list[ListTasksItem]:
    """List the signed-in person's tasks, newest first."""
    tasks = await find_tasks_of_user(session, owner.id)
    return [ListTasksItem.model_validate(task) for task in tasks]
