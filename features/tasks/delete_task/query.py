from sqlalchemy import delete

from shared.db import DatabaseSession, Statement, Task, at_expected_versions, task_of_user

_DELETE = Statement(delete(Task).where(*task_of_user()))
_DELETE_AT_VERSION = Statement(delete(Task).where(*task_of_user(), at_expected_versions()))


async def delete_task_of_user(
    session: DatabaseSession, user_id: str, task_id: int, expected_versions: set[int] | None
) -> bool:
    """Delete the task in one statement (only at one of `expected_versions`, when given);
    False when nothing was deleted."""
    if expected_versions is None:
        deleted = await session.execute(_DELETE, task_id=task_id, user_id=user_id)
    else:
        deleted = await session.execute(
            _DELETE_AT_VERSION, task_id=task_id, user_id=user_id, versions=list(expected_versions)
        )
    return deleted > 0
