from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, utc_now


async def insert_task(
    session: AsyncSession, user_id: str, title: str, description: str | None, completed: bool
) -> Task:
    now = utc_now()
    task = Task(
        user_id=user_id,
        title=title,
        description=description,
        completed=completed,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    # One INSERT ... RETURNING id; everything else we already hold, so nothing is re-read.
    await session.flush()
    return task
