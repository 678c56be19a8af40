"""A response made once, straight to JSON bytes, from what the database returned."""

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from starlette.responses import Response


@cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


def json_response(
    shape: Any,
    content: object,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """`content` (a table row, or a list of them) read into `shape`, the route's
    `response_model` (`GetTaskResponse`, `list[ListTasksItem]`), and encoded to JSON by
    pydantic, once.

    The route keeps `response_model=shape` for its OpenAPI document; a handler's `Response` is
    sent as it is, so FastAPI neither validates the model a second time nor encodes it again.
    The bytes are those FastAPI's own encoding of `shape` gives: the same field order, `null`s
    and timestamps.
    """
    adapter = _adapter(shape)
    body = adapter.dump_json(adapter.validate_python(content, from_attributes=True))
    return Response(body, status_code, headers, media_type="application/json")
