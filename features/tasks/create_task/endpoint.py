import structlog
from fastapi import APIRouter, Request, Response, status

from features.tasks.create_task.query import insert_task
from features.tasks.create_task.schemas import CreateTaskRequest, CreateTaskResponse
from shared.auth import TaskOwner, record_user
from shared.db import DbSession, entity_tag

router = APIRouter()
log = structlog.get_logger()


@router.post(
    "/api/{user_id}/tasks",
    operation_id="create_task",
    status_code=status.HTTP_201_CREATED,
    response_description="The created task; `Location` gives its URL.",
    responses={
        201: {
            "headers": {
                "Location": {"description": "The new task's URL.", "schema": {"type": "string"}},
                "ETag": {"description": "The task's version.", "schema": {"type": "string"}},
            }
        }
    },
)
async def create_task(
    body: CreateTaskRequest,
    owner: TaskOwner,
    session: DbSession,
    request: Request,
    response: Response,
) -> CreateTaskResponse:
    """Add a task to the signed-in person's list."""
    await record_user(request, session, owner)
    task = await insert_task(session, owner.id, body.title, body.description, body.completed)
    # The collection's URL exactly as the client wrote it, so the Location needs no re-encoding.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    collection = raw_path.decode("latin-1").rstrip("/")
    response.headers["Location"] = f"{collection}/{task.id}"
    response.headers["ETag"] = entity_tag(task.version)
    log.info("task.created", task_id=task.id, user_id=owner.id)
    return CreateTaskResponse.model_validate(task)
