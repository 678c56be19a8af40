"""The one ordered list of slice routers. A new endpoint is one new slice plus one line here."""

from typing import Any

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


# The slice routers are included in the app itself, not in a router of their own that the app
# then includes: FastAPI keeps included routers nested and matches a request level by level,
# twice at each (once to choose, once to handle), so each level cost every request routing time.


def include_public_routers(app: APIRouter) -> None:
    """The public routes. Readiness also answers 503 at once, before asking the database, while
    the instance drains after SIGTERM, so a balancer stops sending it new requests; declared here
    so that the slice depends on the shared modules it may, and not on serving."""
    for slice_router in PUBLIC_ROUTERS:
        drains = slice_router is check_readiness
        app.include_router(
            slice_router, dependencies=[Depends(refuse_while_draining)] if drains else None
        )


TASK_ROUTERS: list[APIRouter] = [
    list_tasks,
    create_task,
    get_task,
    update_task,
    delete_task,
    complete_task,
]

# What every task route can answer besides its own errors; the problem schema is added in main.
_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
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


def include_task_routers(app: APIRouter) -> None:
    """Every task route (each slice names its own path under `/api/{user_id}/tasks`), open
    only to the path's owner.

    The bearer token itself is verified earlier, by the edge (shared/edge.py), for all of `/api/`;
    the owner check here is declared once so no slice can forget it.
    """
    for slice_router in TASK_ROUTERS:
        app.include_router(
            slice_router,
            tags=["tasks"],
            dependencies=[Depends(owner_of_path)],
            responses=_COMMON_ERRORS,
        )
