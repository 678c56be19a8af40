from sqlalchemy import case, not_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, utc_now


async def set_task_completion(
    session: AsyncSession, user_id: str, task_id: int, completed: bool | None
) -> Task | None:
    """Toggle (`completed=None`) or set the state in one UPDATE ... RETURNING, atomically, so
    concurrent toggles never lose one. None when the person has no such task."""
    if completed is None:
        new_state = not_(col(Task.completed))
        updated_at = utc_now()
    else:
        new_state = completed
        # Setting the state it already has changes nothing, so it does not move updated_at.
        updated_at = case((col(Task.completed) != completed, utc_now()), else_=Task.updated_at)
    statement = (
        update(Task)
        .where(Task.id == task_id, Task.user_id == user_id)
        .values(completed=new_state, updated_at=updated_at)
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).scalar_one_or_none()
