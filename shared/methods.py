"""Which methods a path answers, for a 405's `Allow`: HEAD wherever GET is (the edge,
shared/edge.py, answers HEAD as GET)."""

from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

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
