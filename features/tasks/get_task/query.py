from sqlmodel import select

from shared.db import DatabaseSession, Statement, StoredTask, Task, task_of_user

_TASK_OF_USER = Statement(select(Task).where(*task_of_user()), row=StoredTask)


async def find_task_of_user(
    session: DatabaseSession, user_id: str, task_id: int
) -> StoredTask | None:
    return await session.one_or_none(_TASK_OF_USER, task_id=task_id, user_id=user_id)
