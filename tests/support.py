"""Reading back what the app stored, and checking the shape of its answers."""

from datetime import datetime

import httpx2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import Task, User

TASK_FIELDS = {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"}


def _forget(db: Session) -> None:
    # End any open snapshot and drop cached objects, so reads see what the app committed.
    db.commit()
    db.expunge_all()


def stored_task(db: Session, task_id: int) -> Task | None:
    _forget(db)
    return db.get(Task, task_id)


def stored_user(db: Session, user_id: str) -> User | None:
    _forget(db)
    return db.get(User, user_id)


def task_count(db: Session) -> int:
    _forget(db)
    return db.scalar(select(func.count()).select_from(Task)) or 0


def user_count(db: Session) -> int:
    _forget(db)
    return db.scalar(select(func.count()).select_from(User)) or 0


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 UTC timestamp as the API writes it, with a `Z`."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def assert_task_matches(body: dict, task: Task) -> None:
    assert set(body) == TASK_FIELDS
    assert body["id"] == task.id
    assert body["user_id"] == task.user_id
    assert body["title"] == task.title
    assert body["description"] == task.description
    assert body["completed"] is task.completed
    assert parse_timestamp(body["created_at"]) == task.created_at
    assert parse_timestamp(body["updated_at"]) == task.updated_at


def assert_problem(
    response: httpx2.Response, status: int, *, invalid_fields: set[str] | None = None
) -> dict:
    """The response is an RFC 9457 problem with this status (naming these invalid fields)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if invalid_fields is not None:
        assert {error["field"] for error in body["errors"]} == invalid_fields
    return body
