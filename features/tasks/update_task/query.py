from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, utc_now


async def update_task_of_user(
    session: AsyncSession,
    user_id: str,
    task_id: int,
    changes: dict[str, Any],
    expected_versions: set[int] | None,
) -> Task | None:
    """Apply the changes and bump the version in one UPDATE ... RETURNING. With
    `expected_versions`, only a task still at one of them changes. None when nothing changed."""
    statement = (
        update(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .values(**changes, updated_at=utc_now(), version=col(Task.version) + 1)
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    if expected_versions is not None:
        # In the same statement, so no other change can slip in between check and write.
        statement = statement.where(col(Task.version).in_(expected_versions))
    return (await session.exec(statement)).scalar_one_or_none()


async def find_task_of_user(session: AsyncSession, user_id: str, task_id: int) -> Task | None:
    """The task as it is, for a PUT that changes nothing (`{}`): one read, no write."""
    statement = select(Task).where(col(Task.id) == task_id, col(Task.user_id) == user_id)
    return (await session.exec(statement)).first()
