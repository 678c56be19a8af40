from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task


async def find_tasks_of_user(session: AsyncSession, user_id: str) -> Sequence[Task]:
    # Newest first, the id breaking ties, so the same rows always come in the same order.
    statement = (
        select(Task)
        .where(Task.user_id == user_id)
        .order_by(col(Task.created_at).desc(), col(Task.id).desc())
    )
    return (await session.exec(statement)).all()
