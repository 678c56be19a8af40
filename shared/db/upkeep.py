"""What the service does to the database by itself, outside any request."""

from sqlalchemy import bindparam, delete
from sqlmodel import col

from shared.db.database import DatabaseSession
from shared.db.statements import Statement
from shared.db.tables import IdempotencyKey, utc_now

_PURGE_EXPIRED_KEYS = Statement(
    delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) < bindparam("now"))
)


async def purge_expired_idempotency_keys(session: DatabaseSession) -> int:
    """Delete the idempotency keys past their 24 hours; how many went."""
    return await session.execute(_PURGE_EXPIRED_KEYS, now=utc_now())
