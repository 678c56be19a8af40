from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task


async def delete_task_of_user(session: AsyncSession, user_id: str, task_id: int) -> bool:
    """Delete the task in one statement; False when the person has no such task."""
    statement = delete(Task).where(Task.id == task_id, Task.user_id == user_id).returning(Task.id)
    return (await session.exec(statement)).scalar_one_or_none() is not None
