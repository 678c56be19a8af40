from fastapi import APIRouter, Request

from features.health.check_readiness.query import find_schema_revision
from features.health.check_readiness.schemas import CheckReadinessResponse
from shared.db import DbSession, SchemaNotReadyError

router = APIRouter()


@router.get(
    "/ready",
    operation_id="check_readiness",
    tags=["operations"],
    responses={
        503: {
            "description": "The database is unreachable, or not yet at this code's schema; "
            "retry after `Retry-After` seconds.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        }
    },
)
async def check_readiness(request: Request, session: DbSession) -> CheckReadinessResponse:
    """Answer 200 when the database answers and holds the schema this code expects, else 503."""
    expected: str = request.app.state.schema_revision
    found = await find_schema_revision(session)
    if found != expected:
        raise SchemaNotReadyError(
            f"The database schema is at revision {found or 'none'}, not {expected}; "
            "it needs migrating (uv run main.py migrate)."
        )
    return CheckReadinessResponse(schema_revision=found)
