from fastapi import APIRouter, Depends, Request

from features.health.check_readiness.query import find_schema_revision
from features.health.check_readiness.schemas import CheckReadinessResponse
from shared.db import DbSession, SchemaNotReadyError
from shared.drain import refuse_while_draining

router = APIRouter()


@router.get(
    "/ready",
    operation_id="check_readiness",
    tags=["operations"],
    # Draining (after SIGTERM): 503 at once, before the database is asked anything.
    dependencies=[Depends(refuse_while_draining)],
    responses={
        503: {
            "description": "The database is unreachable, or not yet at this code's schema; "
            "retry after `Retry-After` seconds. Or the instance is shutting down (draining).",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        }
    },
)
async def check_readiness(request: Request, session: DbSession) -> CheckReadinessResponse:
    """Answer 200 when the database answers and holds the schema this code expects, else 503
    (503 too once the instance is shutting down)."""
    expected: str = request.app.state.schema_revision
    found = await find_schema_revision(session)
    if found != expected:
        raise SchemaNotReadyError(
            f"The database schema is at revision {found or 'none'}, not {expected}; "
            "it needs migrating (uv run main.py migrate)."
        )
    return CheckReadinessResponse(schema_revision=found)
