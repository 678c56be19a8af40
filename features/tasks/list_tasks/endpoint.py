import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from features.tasks.list_tasks.query import Boundary, find_page_of_tasks
from features.tasks.list_tasks.schemas import ListTasksItem, ListTasksQuery
from shared.auth import TaskOwner
from shared.db import DbSession, ProblemError, is_storable_text, json_response

router = APIRouter()


class InvalidCursorError(ProblemError):
    # Not in this route's `responses=`: the 400 that every task route declares (in
    # features/registry.py, for invalid input) covers it.
    status = 400
    description = "The cursor is not one this list gave out, or comes with `offset`."

    def __init__(
        self, detail: str = "The cursor is not one this list gave out; start over without it"
    ) -> None:
        super().__init__(detail)


def _encode_cursor(query: ListTasksQuery, task: Any, side: str) -> str:
    sort_value = {"created": task.created_at, "updated": task.updated_at, "title": task.title}[
        query.sort
    ]
    if isinstance(sort_value, datetime):
        sort_value = sort_value.isoformat()
    # The cursor names its order too, so it cannot be applied to a list sorted differently.
    data = {"k": query.sort, "o": query.order, "v": sort_value, "id": task.id, "s": side}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _decode_cursor(query: ListTasksQuery) -> Boundary | None:
    if query.cursor is None:
        return None
    if query.offset:
        raise InvalidCursorError("Give either cursor or offset, not both")
    try:
        raw = base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4))
        data = json.loads(raw)
        sort, order, value, task_id, side = (data[k] for k in ("k", "o", "v", "id", "s"))
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidCursorError from None
    if (
        (sort, order) != (query.sort, query.order)
        or side not in {"after", "before"}
        or type(task_id) is not int
        or not 0 < task_id < 2**63
        or not isinstance(value, str)
        or not is_storable_text(value)
    ):
        raise InvalidCursorError
    if sort == "title":
        return Boundary(value, task_id, side)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCursorError from None
    if moment.tzinfo is None:
        raise InvalidCursorError
    return Boundary(moment, task_id, side)


def _page_link(request: Request, query: ListTasksQuery, cursor: str, relation: str) -> str:
    parameters = [
        (k, v) for k, v in request.query_params.multi_items() if k not in {"cursor", "offset"}
    ]
    parameters.append(("cursor", cursor))
    return f'<{request.url.path}?{urlencode(parameters)}>; rel="{relation}"'


@router.get(
    "/api/{user_id}/tasks",
    operation_id="list_tasks",
    response_model=list[ListTasksItem],
    responses={
        200: {
            "headers": {
                "X-Total-Count": {
                    "description": "How many tasks match the filters, over all pages.",
                    "schema": {"type": "integer"},
                },
                "Link": {
                    "description": 'RFC 8288 links to the `rel="next"` and `rel="prev"` pages, '
                    "when there are such pages.",
                    "schema": {"type": "string"},
                },
            }
        }
    },
)
async def list_tasks(
    owner: TaskOwner,
    session: DbSession,
    query: Annotated[ListTasksQuery, Query()],
    request: Request,
) -> Response:
    """List the signed-in person's tasks (newest first unless asked otherwise), a page at a time."""
    page = await find_page_of_tasks(
        session,
        owner.id,
        status=query.status,
        sort=query.sort,
        order=query.order,
        search=query.q,
        limit=query.limit,
        offset=query.offset,
        boundary=_decode_cursor(query),
    )
    headers = {"X-Total-Count": str(page.total)}
    links = []
    if page.tasks and page.has_more_after:
        links.append(
            _page_link(request, query, _encode_cursor(query, page.tasks[-1], "after"), "next")
        )
    if page.tasks and page.has_more_before:
        links.append(
            _page_link(request, query, _encode_cursor(query, page.tasks[0], "before"), "prev")
        )
    if links:
        headers["Link"] = ", ".join(links)
    return json_response(list[ListTasksItem], page.tasks, headers=headers)
