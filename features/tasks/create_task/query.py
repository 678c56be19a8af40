from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from shared.db import (
    FIRST_VERSION,
    DatabaseSession,
    IdempotencyKey,
    Statement,
    StoredTask,
    Task,
    utc_now,
)

IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)

_INSERT_TASK = Statement(
    insert(Task)
    .values(
        user_id=bindparam("user_id"),
        title=bindparam("new_title"),
        description=bindparam("new_description"),
        completed=bindparam("new_completed"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        version=bindparam("first_version"),
    )
    .returning(Task),
    row=StoredTask,
)


async def insert_task(
    session: DatabaseSession, user_id: str, title: str, description: str | None, completed: bool
) -> StoredTask:
    """One INSERT ... RETURNING, the task as stored."""
    task = await session.one_or_none(
        _INSERT_TASK,
        user_id=user_id,
        new_title=title,
        new_description=description,
        new_completed=completed,
        now=utc_now(),
        # Set here, not left to the table's default: a replay's ETag names this version too.
        first_version=FIRST_VERSION,
    )
    if task is None:  # never: an INSERT ... RETURNING returns its row or raises
        raise RuntimeError("the INSERT returned no task")
    return task


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """What a live idempotency key holds of the request that first used it."""

    request_fingerprint: str
    task_id: int
    response_body: str


_LIVE_KEY = Statement(
    select(
        col(IdempotencyKey.request_fingerprint),
        col(IdempotencyKey.task_id),
        col(IdempotencyKey.response_body),
    ).where(
        col(IdempotencyKey.user_id) == bindparam("user_id"),
        col(IdempotencyKey.key) == bindparam("key"),
        col(IdempotencyKey.expires_at) > bindparam("now"),
    ),
    row=EarlierRequest,
)


async def find_live_idempotency_key(
    session: DatabaseSession, user_id: str, key: str
) -> EarlierRequest | None:
    return await session.one_or_none(_LIVE_KEY, user_id=user_id, key=key, now=utc_now())


_CLAIMED_COLUMNS = ("request_fingerprint", "task_id", "response_body", "created_at", "expires_at")
_new_key = insert(IdempotencyKey).values(
    user_id=bindparam("user_id"),
    key=bindparam("key"),
    **{name: bindparam(f"new_{name}") for name in _CLAIMED_COLUMNS},
)
# An expired key is free again; a live one is not. A racing request's uncommitted key makes this
# wait for it, then see it.
_CLAIM_KEY = Statement(
    _new_key.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={name: _new_key.excluded[name] for name in _CLAIMED_COLUMNS},
        where=col(IdempotencyKey.expires_at) <= bindparam("now"),
    ).returning(col(IdempotencyKey.key))
)


async def claim_idempotency_key(
    session: DatabaseSession,
    user_id: str,
    key: str,
    request_fingerprint: str,
    task_id: int,
    response_body: str,
) -> bool:
    """Store the key with the response it got; False if a live one is already there (another
    request with this key got in first, and this one's work must be undone)."""
    now = utc_now()
    claimed = await session.execute(
        _CLAIM_KEY,
        user_id=user_id,
        key=key,
        new_request_fingerprint=request_fingerprint,
        new_task_id=task_id,
        new_response_body=response_body,
        new_created_at=now,
        new_expires_at=now + IDEMPOTENCY_KEY_LIFETIME,
        now=now,
    )
    return claimed > 0
