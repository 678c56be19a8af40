"""A query written as a SQLAlchemy statement, compiled once to the SQL psycopg runs.

Slices write their queries as SQLModel/SQLAlchemy statements with named `bindparam`s, at import
(or once per shape of request, cached). `Statement` compiles each one once, with the psycopg
dialect, to SQL text with `%(name)s` placeholders; a request then hands psycopg that text and its
values, and nothing of SQLAlchemy runs per request. Building and compiling a statement per
request, and SQLAlchemy's execution layer around psycopg, cost about as much as everything else
in a request together (bench/RESULTS.md).

The rows come back as `row` objects (a frozen dataclass that says what a row holds) or, without
one, as tuples. Timestamps come back in UTC, whatever the server's `TimeZone`
(`shared/db/database.py` registers the loader).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from psycopg.rows import class_row, tuple_row
from sqlalchemy import ARRAY, BigInteger, ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.selectable import Select
from sqlmodel import col

from shared.db.tables import Task

RowT = TypeVar("RowT")

_DIALECT = psycopg_dialect.dialect()


class Statement(Generic[RowT]):
    """`expression` compiled once; its rows read as `row` objects (tuples when not given)."""

    __slots__ = ("defaults", "idempotent", "query", "row_factory", "sql")

    def __init__(self, expression: ClauseElement, row: type[RowT] | None = None) -> None:
        compiled = expression.compile(dialect=_DIALECT)
        self.sql: str = str(compiled)
        self.query = self.sql.encode()
        # Values SQLAlchemy bound itself (the 1 of `version + 1`); the caller's come on top.
        self.defaults: Mapping[str, Any] = {
            name: value for name, value in (compiled.params or {}).items() if value is not None
        }
        # A SELECT changes nothing, so running it a second time (on a fresh connection, after the
        # first one broke) cannot do anything twice.
        self.idempotent = isinstance(expression, Select)
        # (psycopg's row factories serve its sync and async cursors alike.)
        self.row_factory: Any = class_row(row) if row is not None else tuple_row

    def values(self, given: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self.defaults, **given} if self.defaults else given

    def __repr__(self) -> str:
        return f"Statement({self.sql!r})"


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A `tasks` row as the task routes answer it (every column, in the table's order)."""

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    version: int


def task_of_user() -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick the task `task_id` of the person `user_id`: another person's
    task is then indistinguishable from none."""
    return (col(Task.id) == bindparam("task_id"), col(Task.user_id) == bindparam("user_id"))


def at_expected_versions() -> ColumnElement[bool]:
    """The condition `If-Match` adds to a write, in the write's own statement so that no other
    change slips in between check and write: the task is still at one of `versions` (a list)."""
    return col(Task.version) == any_(bindparam("versions", type_=ARRAY(BigInteger)))
