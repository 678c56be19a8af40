from sqlalchemy import case, not_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, utc_now


async def set_task_completion(
    session: AsyncSession,
    user_id: str,
    task_id: int,
    completed: bool | None,
    expected_versions: set[int] | None,
) -> Task | None:
    """Toggle (`completed=None`) or set the state in one UPDATE ... RETURNING, atomically, so
    concurrent toggles never lose one. With `expected_versions`, only a task still at one of them
    changes. None when nothing was updated."""
    if completed is None:
        new_state = not_(col(Task.completed))
        updated_at = utc_now()
        version = col(Task.version) + 1
    else:
        new_state = completed
        # Setting the state it already has changes nothing, so neither time nor version moves.
        changes = col(Task.completed) != completed
        updated_at = case((changes, utc_now()), else_=col(Task.updated_at))
        version = case((changes, col(Task.version) + 1), else_=col(Task.version))
    statement = (
        update(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .values(completed=new_state, updated_at=updated_at, version=version)
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    if expected_versions is not None:
        statement = statement.where(col(Task.version).in_(expected_versions))
    return (await session.exec(statement)).scalar_one_or_none()
