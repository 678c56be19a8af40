"""Which methods a path answers: HEAD wherever GET is, and a 405 whose `Allow` lists them all."""

from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The order `Allow` lists them in; any other method follows, alphabetically.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def methods_at(scope: Scope, routes: Sequence[BaseRoute]) -> list[str]:
    """Every method some route answers at this request's path, HEAD wherever GET is.

    Starlette's router answers a 405 with the methods of the first route whose path matched,
    which at `/api/{user_id}/tasks` is list_tasks' GET alone, though create_task's POST is
    there too; so every route is asked here (those of included routers too).
    """
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.methods and route.matches(scope)[0] is not Match.NONE:
            methods.update(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m))


class HeadAsGetMiddleware:
    """Answers HEAD as GET, without the content (RFC 9110, section 9.3.2).

    FastAPI routes only the methods a route names, and naming HEAD on every GET route would
    document a second operation for each; so HEAD is turned into GET here, once. The content
    is dropped here too, though uvicorn would not send it either; `Content-Length` stays what
    GET's would be.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_content(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server keeps reading the method from the scope it passed in.
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, without_content)
        finally:
            # The request log line names the route the router found.
            if "route" in as_get:
                scope["route"] = as_get["route"]
