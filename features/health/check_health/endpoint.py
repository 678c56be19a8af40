from fastapi import APIRouter

from features.health.check_health.schemas import CheckHealthResponse

router = APIRouter()


@router.get("/health", operation_id="check_health", tags=["operations"])
async def check_health() -> CheckHealthResponse:
    """Answer 200 while the process is up; it touches no database, so it says nothing of one."""
    return CheckHealthResponse()
