from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, func, literal, or_, true, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Task, User

SORT_COLUMNS = {"created": Task.created_at, "updated": Task.updated_at, "title": Task.title}


@dataclass(frozen=True)
class Boundary:
    """A page's edge in the list's order: the sort value and id of a task at the edge, and
    whether the page comes after it or before it."""

    sort_value: datetime | str
    task_id: int
    side: Literal["after", "before"]


@dataclass(frozen=True)
class Page:
    tasks: Sequence[Task]
    total: int
    has_more_after: bool
    has_more_before: bool


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(user_id: str, status: str, search: str | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [col(Task.user_id) == user_id]
    if status != "all":
        filters.append(col(Task.completed) == (true() if status == "completed" else false()))
    if search is not None:
        pattern = f"%{_escape_like(search)}%"
        filters.append(
            or_(
                col(Task.title).ilike(pattern, escape="\\"),
                col(Task.description).ilike(pattern, escape="\\"),
            )
        )
    return filters


def _total(user_id: str, status: str, search: str | None) -> Any:
    if search is not None:
        # A search has no stored count: the database counts the matches, once per statement.
        matches = _filters(user_id, status, search)
        return select(func.count()).select_from(Task).where(*matches).scalar_subquery()
    # Otherwise the count is read from the users row that triggers keep, however long the list.
    counts = {
        "all": col(User.task_count),
        "completed": col(User.completed_count),
        "pending": col(User.task_count) - col(User.completed_count),
    }
    stored = select(counts[status]).where(col(User.id) == user_id).scalar_subquery()
    return func.coalesce(stored, 0)


async def find_page_of_tasks(
    session: AsyncSession,
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
    sort_column = col(SORT_COLUMNS[sort])
    task_id = col(Task.id)
    filters = _filters(user_id, status, search)
    descending = order == "desc"
    # A page before a boundary is read backwards from it, then put back in the list's order.
    reading_backwards = boundary is not None and boundary.side == "before"
    forwards_is_descending = descending != reading_backwards
    if boundary is not None:
        # A row comparison, not the equivalent OR of two comparisons: it is what lets the index
        # start reading at the boundary, so a page deep in the list costs what the first one does.
        position = tuple_(sort_column, task_id)
        edge = tuple_(literal(boundary.sort_value, sort_column.type), literal(boundary.task_id))
        filters.append(position < edge if forwards_is_descending else position > edge)
    ordering = (
        [sort_column.desc(), task_id.desc()]
        if forwards_is_descending
        else [sort_column.asc(), task_id.asc()]
    )
    statement = (
        select(Task, _total(user_id, status, search).label("total"))
        .where(*filters)
        .order_by(*ordering)
        .limit(limit + 1)  # one more than asked tells whether another page follows
        .offset(0 if boundary is not None else offset)
    )
    rows = (await session.exec(statement)).all()
    more_in_reading_direction = len(rows) > limit
    rows = rows[:limit]
    if rows:
        total = int(rows[0][1])
    else:
        total = await _count_without_page(session, user_id, status, search)
    tasks = [row[0] for row in rows]
    if reading_backwards:
        tasks.reverse()
        return Page(tasks, total, has_more_after=True, has_more_before=more_in_reading_direction)
    return Page(
        tasks,
        total,
        has_more_after=more_in_reading_direction,
        has_more_before=boundary is not None or offset > 0,
    )


async def _count_without_page(
    session: AsyncSession, user_id: str, status: str, search: str | None
) -> int:
    # Only past the last page: a second statement, to say how many there are.
    return int((await session.exec(select(_total(user_id, status, search)))).one())
