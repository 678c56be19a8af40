from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task


async def find_task_of_user(session: AsyncSession, user_id: str, task_id: int) -> Task | None:
    # Filtering by owner in the query makes another person's task indistinguishable from none.
    statement = select(Task).where(Task.id == task_id, Task.user_id == user_id)
    return (await session.exec(statement)).one_or_none()
