from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task


async def delete_task_of_user(
    session: AsyncSession, user_id: str, task_id: int, expected_versions: set[int] | None
) -> bool:
    """Delete the task in one statement (only at one of `expected_versions`, when given);
    False when nothing was deleted."""
    statement = (
        delete(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .returning(col(Task.id))
    )
    if expected_versions is not None:
        statement = statement.where(col(Task.version).in_(expected_versions))
    return (await session.exec(statement)).scalar_one_or_none() is not None
