from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    bindparam,
    cast,
    false,
    func,
    inspect,
    or_,
    true,
    tuple_,
)
from sqlmodel import col, select

from shared.db import DatabaseSession, Statement, StoredTask, Task, UserTaskCount

SORT_COLUMNS = {"created": Task.created_at, "updated": Task.updated_at, "title": Task.title}


@dataclass(frozen=True)
class Boundary:
    """A page's edge in the list's order: the sort value and id of a task at the edge, and
    whether the page comes after it or before it."""

    sort_value: datetime | str
    task_id: int
    side: Literal["after", "before"]


@dataclass(frozen=True, slots=True)
class ListedTask(StoredTask):
    """A task of the page, with the number of tasks that match (the same on every row)."""

    total: int


@dataclass(frozen=True)
class Page:
    tasks: Sequence[StoredTask]
    total: int
    has_more_after: bool
    has_more_before: bool


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The statements are built once per shape of request (status, order, searching or not, which
# side of a cursor) with bound parameters for the values, then reused: building them anew was
# about a sixth of a list request's time.
_USER_ID = bindparam("user_id")
_PATTERN = bindparam("pattern")


def _filters(status: str, searching: bool) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [col(Task.user_id) == _USER_ID]
    if status != "all":
        filters.append(col(Task.completed) == (true() if status == "completed" else false()))
    if searching:
        filters.append(
            or_(
                col(Task.title).ilike(_PATTERN, escape="\\"),
                col(Task.description).ilike(_PATTERN, escape="\\"),
            )
        )
    return filters


def _total(status: str, searching: bool) -> Any:
    if searching:
        # A search has no stored count: the database counts the matches, once per statement.
        matches = _filters(status, searching)
        return select(func.count()).select_from(Task).where(*matches).scalar_subquery()
    # Otherwise the count is the sum of the person's counter slots that the trigger keeps
    # (migration 0004): at most 64 rows read by primary key, however long the list.
    slots = {
        "all": col(UserTaskCount.task_count),
        "completed": col(UserTaskCount.completed_count),
        "pending": col(UserTaskCount.task_count) - col(UserTaskCount.completed_count),
    }
    return (
        select(cast(func.coalesce(func.sum(slots[status]), 0), BigInteger))
        .where(col(UserTaskCount.user_id) == _USER_ID)
        .scalar_subquery()
    )


@cache
def _page_statement(
    status: str, sort: str, forwards_is_descending: bool, searching: bool, from_edge: bool
) -> Statement[ListedTask]:
    sort_column = col(SORT_COLUMNS[sort])
    task_id = col(Task.id)
    filters = _filters(status, searching)
    if from_edge:
        # A row comparison, not the equivalent OR of two comparisons: it is what lets the index
        # start reading at the boundary, so a page deep in the list costs what the first one does.
        position = tuple_(sort_column, task_id)
        edge = tuple_(
            bindparam("edge_value", type_=inspect(sort_column).type),
            bindparam("edge_id", type_=inspect(task_id).type),
        )
        filters.append(position < edge if forwards_is_descending else position > edge)
    ordering = (
        [sort_column.desc(), task_id.desc()]
        if forwards_is_descending
        else [sort_column.asc(), task_id.asc()]
    )
    return Statement(
        select(Task, _total(status, searching).label("total"))
        .where(*filters)
        .order_by(*ordering)
        .limit(bindparam("page_limit"))
        .offset(bindparam("page_offset")),
        row=ListedTask,
    )


@cache
def _total_statement(status: str, searching: bool) -> Statement[tuple[int]]:
    return Statement(select(_total(status, searching)))


async def find_page_of_tasks(
    session: DatabaseSession,
    user_id: str,
    *,
    status: str,
    sort: str,
    order: str,
    search: str | None,
    limit: int,
    offset: int,
    boundary: Boundary | None,
) -> Page:
    """One page of the person's tasks in a total order (the id breaks ties), in one statement,
    with the number of tasks that match."""
    # A page before a boundary is read backwards from it, then put back in the list's order.
    reading_backwards = boundary is not None and boundary.side == "before"
    forwards_is_descending = (order == "desc") != reading_backwards
    searching = search is not None
    statement = _page_statement(
        status, sort, forwards_is_descending, searching, boundary is not None
    )
    values: dict[str, Any] = {
        "user_id": user_id,
        "page_limit": limit + 1,  # one more than asked tells whether another page follows
        "page_offset": 0 if boundary is not None else offset,
    }
    if search is not None:
        values["pattern"] = f"%{_escape_like(search)}%"
    if boundary is not None:
        values["edge_value"] = boundary.sort_value
        values["edge_id"] = boundary.task_id
    tasks = await session.all(statement, **values)
    more_in_reading_direction = len(tasks) > limit
    tasks = tasks[:limit]
    if tasks:
        total = tasks[0].total
    else:
        # Only past the last page: a second statement, to say how many there are.
        count_values = {key: values[key] for key in ("user_id", "pattern") if key in values}
        counted = await session.one_or_none(_total_statement(status, searching), **count_values)
        total = counted[0] if counted is not None else 0
    if reading_backwards:
        tasks.reverse()
        return Page(tasks, total, has_more_after=True, has_more_before=more_in_reading_direction)
    return Page(
        tasks,
        total,
        has_more_after=more_in_reading_direction,
        has_more_before=boundary is not None or offset > 0,
    )
