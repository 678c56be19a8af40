"""The one ordered list of slice routers. A new endpoint is one new slice plus one line here."""

from fastapi import APIRouter, Depends

from features.health.check_health.endpoint import router as check_health
from features.health.check_readiness.endpoint import router as check_readiness
from features.tasks.complete_task.endpoint import router as complete_task
from features.tasks.create_task.endpoint import router as create_task
from features.tasks.delete_task.endpoint import router as delete_task
from features.tasks.get_task.endpoint import router as get_task
from features.tasks.list_tasks.endpoint import router as list_tasks
from features.tasks.update_task.endpoint import router as update_task
from shared.auth import owner_of_path
from shared.drain import refuse_while_draining

# Open to anyone: listed apart so that being public is a visible decision.
PUBLIC_ROUTERS: list[APIRouter] = [check_health, check_readiness]


def public_router() -> APIRouter:
    """The public routes. Readiness also answers 503 at once, before asking the database, while
    the instance drains after SIGTERM, so a balancer stops sending it new requests; declared here
    so that the slice depends on the shared modules it may, and not on serving."""
    router = APIRouter()
    for slice_router in PUBLIC_ROUTERS:
        drains = slice_router is check_readiness
        router.include_router(
            slice_router, dependencies=[Depends(refuse_while_draining)] if drains else None
        )
    return router


TASK_ROUTERS: list[APIRouter] = [
    list_tasks,
    create_task,
    get_task,
    update_task,
    delete_task,
    complete_task,
]

# What every task route can answer besides its own errors; the problem schema is added in main.
_COMMON_ERRORS = {
    400: {"description": "The request is invalid; `errors` names each invalid field."},
    401: {
        "description": "No token, or one that is malformed, badly signed or expired.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"description": "The path's user id is not the signed-in user's."},
    413: {"description": "The body is larger than the service accepts."},
    431: {"description": "The request's headers are larger or more numerous than accepted."},
    500: {"description": "A fault of the server; the body carries only the request id."},
    503: {
        "description": "The database is unreachable or busy (no free connection, a time "
        "limit, a lock or a conflicting change); retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


def tasks_router() -> APIRouter:
    """Every task route (each slice names its own path under `/api/{user_id}/tasks`), open
    only to the path's owner.

    The bearer token itself is verified earlier, by the edge (shared/edge.py), for all of `/api/`;
    the owner check here is declared once so no slice can forget it.
    """
    router = APIRouter(
        tags=["tasks"],
        dependencies=[Depends(owner_of_path)],
        responses=_COMMON_ERRORS,
    )
    for slice_router in TASK_ROUTERS:
        router.include_router(slice_router)
    return router
