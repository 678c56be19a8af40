from datetime import timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import FIRST_VERSION, IdempotencyKey, Task, utc_now

IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


async def insert_task(
    session: AsyncSession, user_id: str, title: str, description: str | None, completed: bool
) -> Task:
    now = utc_now()
    task = Task(
        user_id=user_id,
        title=title,
        description=description,
        completed=completed,
        created_at=now,
        updated_at=now,
        # Set here, not left to the table's default: a replay's ETag names this version too.
        version=FIRST_VERSION,
    )
    session.add(task)
    # One INSERT ... RETURNING id; everything else we already hold, so nothing is re-read.
    await session.flush()
    return task


async def find_live_idempotency_key(
    session: AsyncSession, user_id: str, key: str
) -> IdempotencyKey | None:
    statement = select(IdempotencyKey).where(
        col(IdempotencyKey.user_id) == user_id,
        col(IdempotencyKey.key) == key,
        col(IdempotencyKey.expires_at) > utc_now(),
    )
    return (await session.exec(statement)).one_or_none()


async def claim_idempotency_key(
    session: AsyncSession,
    user_id: str,
    key: str,
    request_fingerprint: str,
    task_id: int,
    response_body: str,
) -> bool:
    """Store the key with the response it got; False if a live one is already there (another
    request with this key got in first, and this one's work must be undone)."""
    now = utc_now()
    values = {
        "user_id": user_id,
        "key": key,
        "request_fingerprint": request_fingerprint,
        "task_id": task_id,
        "response_body": response_body,
        "created_at": now,
        "expires_at": now + IDEMPOTENCY_KEY_LIFETIME,
    }
    statement = insert(IdempotencyKey).values(**values)
    # An expired key is free again; a live one is not. On PostgreSQL a racing request's
    # uncommitted key makes this wait for it, then see it.
    statement = statement.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={name: statement.excluded[name] for name in values if name not in {"user_id", "key"}},
        where=col(IdempotencyKey.expires_at) <= now,
    ).returning(col(IdempotencyKey.key))
    return (await session.exec(statement)).first() is not None
