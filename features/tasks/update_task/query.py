from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, utc_now


async def update_task_of_user(
    session: AsyncSession, user_id: str, task_id: int, changes: dict[str, Any]
) -> Task | None:
    """Apply the changes in one UPDATE ... RETURNING; None when the person has no such task."""
    statement = (
        update(Task)
        .where(Task.id == task_id, Task.user_id == user_id)
        .values(**changes, updated_at=utc_now())
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).scalar_one_or_none()
