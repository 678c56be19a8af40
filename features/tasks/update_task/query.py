from functools import cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import col, select

from shared.db import (
    DatabaseSession,
    Statement,
    StoredTask,
    Task,
    at_expected_versions,
    task_of_user,
    utc_now,
)


@cache
def _update_statement(fields: tuple[str, ...], at_versions: bool) -> Statement[StoredTask]:
    """The UPDATE for one set of changed fields (at most seven), built and compiled once."""
    conditions = [*task_of_user(), at_expected_versions()] if at_versions else task_of_user()
    return Statement(
        update(Task)
        .where(*conditions)
        .values(
            {
                **{field: bindparam(f"new_{field}") for field in fields},
                "updated_at": bindparam("now"),
                "version": col(Task.version) + 1,
            }
        )
        .returning(Task),
        row=StoredTask,
    )


async def update_task_of_user(
    session: DatabaseSession,
    user_id: str,
    task_id: int,
    changes: dict[str, Any],
    expected_versions: set[int] | None,
) -> StoredTask | None:
    """Apply the changes and bump the version in one UPDATE ... RETURNING. With
    `expected_versions`, only a task still at one of them changes. None when nothing changed."""
    statement = _update_statement(tuple(sorted(changes)), expected_versions is not None)
    values = {f"new_{field}": value for field, value in changes.items()}
    if expected_versions is not None:
        values["versions"] = list(expected_versions)
    return await session.one_or_none(
        statement, task_id=task_id, user_id=user_id, now=utc_now(), **values
    )


_TASK_OF_USER = Statement(select(Task).where(*task_of_user()), row=StoredTask)


async def find_task_of_user(
    session: DatabaseSession, user_id: str, task_id: int
) -> StoredTask | None:
    """The task as it is, for a PUT that changes nothing (`{}`): one read, no write."""
    return await session.one_or_none(_TASK_OF_USER, task_id=task_id, user_id=user_id)
