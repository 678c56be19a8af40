"""The tables: `users`, `tasks`, `user_task_counts` and `idempotency_keys`, and the timestamps
they hold."""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 1000
USER_ID_MAX_LENGTH = 255


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp (`timestamptz`) that is written and read back in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        # psycopg returns a timestamptz in the session's time zone.
        return None if value is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """A person, as the frontend's Better Auth knows them; `id` is the token's subject."""

    # SQLModel declares __tablename__ as a declared_attr; a plain string is its documented
    # form, which its annotation does not admit (a typing gap in the library).
    __tablename__ = "users"  # pyright: ignore[reportAssignmentType]

    id: str = Field(primary_key=True, max_length=USER_ID_MAX_LENGTH)
    # Neither is unique: the id is the identity, and an email may move between accounts.
    email: str | None = Field(default=None, sa_type=String)
    name: str | None = Field(default=None, sa_type=String)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


class Task(SQLModel, table=True):
    """One item of one person's todo list."""

    __tablename__ = "tasks"  # pyright: ignore[reportAssignmentType]
    # Each sort order of the list, and the status filter under the default order, reads one
    # person's rows in index order and stops after a page.
    __table_args__ = (
        Index("ix_tasks_user_id_newest_first", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_id_title", "user_id", "title", "id"),
        Index("ix_tasks_user_id_completed_created", "user_id", "completed", "created_at", "id"),
        # The search's trigram indexes (migration 0003 says why).
        *(
            Index(
                f"ix_tasks_{column}_trigrams",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
            for column in ("title", "description")
        ),
    )

    id: int | None = Field(
        default=None,
        # An identity's sequence never hands out an id twice, a deleted task's included: a
        # stale `If-Match` for a deleted task can never match a new one.
        sa_column=Column(BigInteger(), Identity(), primary_key=True),
    )
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", max_length=USER_ID_MAX_LENGTH)
    title: str = Field(max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    completed: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Bumped by every change, in the same UPDATE: the task's ETag.
    version: int = Field(default=1, sa_type=BigInteger, sa_column_kwargs={"server_default": "1"})


class UserTaskCount(SQLModel, table=True):
    """One counter slot of a person's task counts; the counts are the sums over their slots.

    Kept by the trigger on `tasks` (migration 0004 says why slots), never written by the
    application: each database backend adds to its own slot, so one person's writes on different
    connections do not wait for one another.
    """

    __tablename__ = "user_task_counts"  # pyright: ignore[reportAssignmentType]

    user_id: str = Field(
        foreign_key="users.id", ondelete="CASCADE", primary_key=True, max_length=USER_ID_MAX_LENGTH
    )
    slot: int = Field(sa_column=Column(Integer(), primary_key=True, autoincrement=False))
    task_count: int = Field(sa_type=BigInteger)
    completed_count: int = Field(sa_type=BigInteger)


class IdempotencyKey(SQLModel, table=True):
    """A create request's `Idempotency-Key`, with the response it got, replayed for a retry."""

    __tablename__ = "idempotency_keys"  # pyright: ignore[reportAssignmentType]

    user_id: str = Field(
        foreign_key="users.id", ondelete="CASCADE", primary_key=True, max_length=USER_ID_MAX_LENGTH
    )
    key: str = Field(primary_key=True, max_length=255)
    request_fingerprint: str = Field(max_length=64)
    task_id: int = Field(sa_type=BigInteger)
    response_body: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
