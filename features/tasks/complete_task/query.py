from sqlalchemy import Boolean, bindparam, case, not_, update
from sqlmodel import col

from shared.db import (
    DatabaseSession,
    Statement,
    StoredTask,
    Task,
    at_expected_versions,
    task_of_user,
    utc_now,
)


def _completion_statement(*, toggle: bool, at_versions: bool) -> Statement[StoredTask]:
    conditions = [*task_of_user(), at_expected_versions()] if at_versions else task_of_user()
    if toggle:
        new_state = not_(col(Task.completed))
        updated_at = bindparam("now")
        version = col(Task.version) + 1
    else:
        new_state = bindparam("completed", type_=Boolean)
        # Setting the state it already has changes nothing, so neither time nor version moves.
        changes = col(Task.completed) != new_state
        updated_at = case((changes, bindparam("now")), else_=col(Task.updated_at))
        version = case((changes, col(Task.version) + 1), else_=col(Task.version))
    return Statement(
        update(Task)
        .where(*conditions)
        .values(completed=new_state, updated_at=updated_at, version=version)
        .returning(Task),
        row=StoredTask,
    )


_STATEMENTS = {
    (toggle, at_versions): _completion_statement(toggle=toggle, at_versions=at_versions)
    for toggle in (True, False)
    for at_versions in (True, False)
}


async def set_task_completion(
    session: DatabaseSession,
    user_id: str,
    task_id: int,
    completed: bool | None,
    expected_versions: set[int] | None,
) -> StoredTask | None:
    """Toggle (`completed=None`) or set the state in one UPDATE ... RETURNING, atomically, so
    concurrent toggles never lose one. With `expected_versions`, only a task still at one of them
    changes. None when nothing was updated."""
    statement = _STATEMENTS[completed is None, expected_versions is not None]
    values: dict[str, object] = {"task_id": task_id, "user_id": user_id, "now": utc_now()}
    if completed is not None:
        values["completed"] = completed
    if expected_versions is not None:
        values["versions"] = list(expected_versions)
    return await session.one_or_none(statement, **values)
