"""The named errors a query can raise, and which of them a write that matched nothing means.

Each error carries its status, the problem text a person reads (its `detail`) and the response
the OpenAPI document declares for it (its `description`). A handler raises them; one exception
handler (`shared.problems`) answers them as RFC 9457 problems; a route declares those it can
raise with `responses=error_responses(...)`, so the document cannot drift from the code.
"""

from typing import Any, ClassVar

from sqlmodel import col, select

from shared.db.database import DatabaseSession
from shared.db.statements import Statement, task_of_user
from shared.db.tables import Task


class ProblemError(Exception):
    """An error answered as an RFC 9457 problem with `status` and `detail`."""

    status: ClassVar[int]
    description: ClassVar[str]
    """When the error happens, as the OpenAPI document says it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TaskNotFoundError(ProblemError):
    # Another person's task is not found either: the query filters by owner.
    status = 404
    description = "No such task on this person's list."

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} was not found")


class VersionMismatchError(ProblemError):
    status = 412
    description = "The task changed since the version in `If-Match`; nothing changed."

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} has changed since the version in If-Match")


def error_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` entries for the errors it can raise (the problem schema itself is
    added to every error response once, for the whole document)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        if error.status in responses:
            raise ValueError(f"two errors declared for status {error.status}")
        responses[error.status] = {"description": error.description}
    return responses


_TASK_OF_USER = Statement(select(col(Task.id)).where(*task_of_user()))


async def not_found_or_changed(
    session: DatabaseSession, user_id: str, task_id: int, expected_versions: set[int] | None
) -> TaskNotFoundError | VersionMismatchError:
    """Why a write limited to the person's task (and to `expected_versions`, from `If-Match`,
    when given) matched nothing: the task is there at another version (412), or it is not (404).

    The write is one statement, so that no change slips in between the check and the write; only
    when it matched nothing does this second look tell the two apart.
    """
    if expected_versions is not None:
        found = await session.one_or_none(_TASK_OF_USER, task_id=task_id, user_id=user_id)
        if found is not None:
            return VersionMismatchError(task_id)
    return TaskNotFoundError(task_id)
