import psycopg
from fastapi import APIRouter, Request

from features.health.check_readiness.query import find_schema_revision
from features.health.check_readiness.schemas import CheckReadinessResponse
from shared.db import DatabaseNotReadyError, SchemaNotReadyError, StatementError, app_state

router = APIRouter()


@router.get(
    "/ready",
    operation_id="check_readiness",
    tags=["operations"],
    # Draining (after SIGTERM) is a 503 too, at once: features/registry.py adds that check.
    responses={
        503: {
            "description": "The database is unreachable or failing, or not yet at this code's "
            "schema, or the instance is shutting down (draining); retry after `Retry-After` "
            "seconds.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        }
    },
)
async def check_readiness(request: Request) -> CheckReadinessResponse:
    """Answer 200 when the database answers and holds the schema this code expects, else 503
    (503 too once the instance is shutting down)."""
    state = app_state(request.app)
    expected = state.schema_revision
    try:
        if not state.schema_ready:
            raise SchemaNotReadyError
        # Its own session rather than the request's DbSession, whose failures (while connecting,
        # say) would be answered as any request's: a probe hears 503 whatever the database did.
        async with state.database.session() as session:
            found = await find_schema_revision(session)
        if found != expected:
            raise SchemaNotReadyError(
                f"The database schema is at revision {found or 'none'}, not {expected}; "
                "it needs migrating (uv run main.py migrate)."
            )
    except (psycopg.Error, StatementError, SchemaNotReadyError) as error:
        raise DatabaseNotReadyError from error
    return CheckReadinessResponse(schema_revision=expected)
