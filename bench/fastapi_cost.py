"""What FastAPI's own machinery costs per request, in process: no network, no server.

For get_task, list_tasks (20 tasks) and create_task it times ASGI calls straight into the app
(the whole middleware stack included) in two ways, alternating, several rounds:

- `app`: the whole request, against a fresh PostgreSQL database;
- `no db`: the same route with the slice's database calls answered by a constant and the
  session dependency handing out a stand-in, so what is left is the framework's and ours;

and then profiles the `no db` requests with cProfile to split that share between middleware,
routing, dependency solving, request validation, the handler and response serialisation.

    uv run bench/fastapi_cost.py [--postgres-url URL] [--requests 500] [--rounds 5]

It is a benchmark, not a test: it prints figures, it asserts only that each answer is the
expected status.
"""

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastapi.routing
from sqlalchemy import create_engine

import features.tasks.create_task.endpoint as create_task_endpoint
import features.tasks.get_task.endpoint as get_task_endpoint
import features.tasks.list_tasks.endpoint as list_tasks_endpoint
from bench.support import (
    add_postgres_url_argument,
    fresh_database,
    seed_people,
    settings_for_bench,
)
from features.tasks.list_tasks.query import Page
from main import create_app
from shared.db import StoredTask, app_state, sync_database_url
from shared.logging import configure_logging
from shared.tokens import mint_token

SECRET = secrets.token_urlsafe(48)
PERSON = "bench-person"
LIST_SIZE = 20

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Asgi:
    """Calls into the app as a server would, keeping only the status and the body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lifespan_end = asyncio.Event()
        self._lifespan: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is not None:
                return message
            await self._lifespan_end.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()
            elif message["type"] == "lifespan.startup.failed":
                raise RuntimeError(message.get("message"))

        self._lifespan = asyncio.create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        )
        await started.wait()

    async def stop(self) -> None:
        self._lifespan_end.set()
        if self._lifespan is not None:
            await self._lifespan

    async def call(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"bench"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # a client that stays connected
            raise AssertionError

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


class _StandInSession:
    """What the session dependency and the handlers touch of a session when no query reaches
    it. It stands in for the database, not the dependency: `dependency_overrides` would make
    FastAPI analyse the dependency's signature again on every request, a cost of its own."""

    def after_commit(self, callback: Callable[[], object]) -> None:
        callback()

    async def finish(self) -> None:
        return None

    async def abandon(self) -> None:
        return None


class _StandInDatabase:
    def session(self) -> _StandInSession:
        return _StandInSession()


def _constant_task(task_id: int) -> StoredTask:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return StoredTask(
        id=task_id,
        user_id=PERSON,
        title=f"task {task_id}",
        description=f"notes for task {task_id}",
        completed=task_id % 3 == 0,
        created_at=moment - timedelta(minutes=task_id),
        updated_at=moment - timedelta(minutes=task_id),
        version=1,
    )


@contextmanager
def database_answered_by_constants(app: Any) -> Iterator[None]:
    """The slices' queries and the session replaced by constants, for the framework's share."""
    one = _constant_task(1)
    page = Page([_constant_task(n) for n in range(1, LIST_SIZE + 1)], LIST_SIZE, False, False)

    async def find_task_of_user(*_: Any) -> StoredTask:
        return one

    async def find_page_of_tasks(*_: Any, **__: Any) -> Page:
        return page

    async def insert_task(*_: Any) -> StoredTask:
        return one

    async def record_user(*_: Any) -> None:
        return None

    replaced = [
        (get_task_endpoint, "find_task_of_user", find_task_of_user),
        (list_tasks_endpoint, "find_page_of_tasks", find_page_of_tasks),
        (create_task_endpoint, "insert_task", insert_task),
        (create_task_endpoint, "record_user", record_user),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in replaced]
    for module, name, stand_in in replaced:
        setattr(module, name, stand_in)
    state = app_state(app)
    database = state.database
    state.database = _StandInDatabase()  # type: ignore[assignment]  # a stand-in, on purpose
    try:
        yield
    finally:
        state.database = database
        for module, name, original in originals:
            setattr(module, name, original)


def requests(task_id: int) -> dict[str, tuple[str, str, bytes, int]]:
    base = f"/api/{PERSON}/tasks"
    return {
        "get_task": ("GET", f"{base}/{task_id}", b"", 200),
        "list_tasks": ("GET", f"{base}?limit={LIST_SIZE}", b"", 200),
        "create_task": ("POST", base, b'{"title":"bench","description":"a task"}', 201),
    }


async def time_requests(
    client: Asgi, request: tuple[str, str, bytes, int], headers: Any, count: int
) -> tuple[float, float]:
    """Microseconds per request over `count` requests, one after another: elapsed, and this
    process's CPU time (what the request costs us, whatever else the machine's cores run)."""
    method, path, body, expected = request
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        status, answer = await client.call(method, path, headers, body)
        if status != expected:
            raise RuntimeError(f"{method} {path}: {status} {answer[:200]!r}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return elapsed / count * 1e6, cpu / count * 1e6


# Where each share of a request is found in the profile: (file ending, function name).
_SHARES = {
    "router": ("starlette/routing.py", "__call__"),
    "solve_dependencies": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "request params validation": ("fastapi/dependencies/utils.py", "request_params_to_args"),
    "request body validation": ("fastapi/dependencies/utils.py", "request_body_to_args"),
    "body read and JSON parse": ("starlette/requests.py", "json"),
    "endpoint function": ("fastapi/routing.py", "run_endpoint_function"),
    "serialize_response": ("fastapi/routing.py", "serialize_response"),
    "jsonable_encoder": ("fastapi/encoders.py", "jsonable_encoder"),
    "shared.db response encoding": ("shared/db/responses.py", "json_response"),
}


def _cumulative(stats: pstats.Stats, file_end: str, name: str) -> float:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    for (file, _line, function), (_cc, _nc, _tt, cumulative, _callers) in raw.items():
        if function == name and file.replace(os.sep, "/").endswith(file_end):
            total += cumulative
    return total


def _apps_defined_in(stats: pstats.Stats, enclosing: Callable[..., Any]) -> list[float]:
    """The cumulative times of the nested functions named `app` that FastAPI's
    fastapi/routing.py defines inside `enclosing` (and after it), in the order they are
    written: `request_response`'s outer and inner `app`, `get_request_handler`'s `app`."""
    start = enclosing.__code__.co_firstlineno
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    found = sorted(
        (line, cumulative)
        for (file, line, function), (_cc, _nc, _tt, cumulative, _callers) in raw.items()
        if function == "app" and file.endswith("fastapi/routing.py") and line > start
    )
    return [cumulative for _, cumulative in found]


async def profile_shares(
    client: Asgi, request: tuple[str, str, bytes, int], headers: Any, count: int
) -> dict[str, float]:
    """Each share's fraction of the whole request, from cProfile's cumulative times."""
    method, path, body, _ = request
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(count):
        await client.call(method, path, headers, body)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    whole = _cumulative(stats, "bench/fastapi_cost.py", "call")
    shares = {name: _cumulative(stats, *where) / whole for name, where in _SHARES.items()}
    route_app, route_inner_app = _apps_defined_in(stats, fastapi.routing.request_response)[:2]
    handler = _apps_defined_in(stats, fastapi.routing.get_request_handler)[0]
    shares["fastapi handler (dependencies, endpoint, response)"] = handler / whole
    # The middleware stack is everything between the server's call and the router.
    shares["middleware (all, outside the router)"] = 1 - shares["router"]
    shares["routing (router to the route's app)"] = shares["router"] - route_app / whole
    shares["exit stacks (dependency teardown), send"] = (route_inner_app - handler) / whole
    return shares


async def run(admin_url: str, count: int, rounds: int, devnull: TextIO) -> None:
    with fresh_database(admin_url, "fastapi_cost") as url:
        engine = create_engine(sync_database_url(url))
        with engine.begin() as connection:
            task_ids = seed_people(connection, [PERSON], LIST_SIZE)[PERSON]
        engine.dispose()
        settings = settings_for_bench(
            database_url=url, better_auth_secret=SECRET, migrate_on_start=False
        )
        app = create_app(settings)
        # The request log line is part of the cost; only where it is written changes.
        configure_logging(settings, devnull)
        client = Asgi(app)
        await client.start()
        try:
            token = mint_token(settings, PERSON, lifetime=timedelta(hours=2))
            headers = [
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", b"application/json"),
            ]
            routes = requests(task_ids[0])
            await report(client, app, routes, headers, count, rounds)
        finally:
            await client.stop()


async def report(
    client: Asgi, app: Any, routes: dict[str, Any], headers: Any, count: int, rounds: int
) -> None:
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for request in routes.values():  # warm up both ways
        await time_requests(client, request, headers, count // 10 + 1)
        with database_answered_by_constants(app):
            await time_requests(client, request, headers, count // 10 + 1)
    for _ in range(rounds):
        for name, request in routes.items():
            figures.setdefault((name, "app"), []).append(
                await time_requests(client, request, headers, count)
            )
            with database_answered_by_constants(app):
                figures.setdefault((name, "no db"), []).append(
                    await time_requests(client, request, headers, count)
                )
    print(f"median of {rounds} alternating rounds of {count} sequential in-process requests;")
    print("µs per request, elapsed and CPU time of this process")
    print(
        f"{'route':<12} {'app':>7} {'app cpu':>8} {'no db':>7} {'no db cpu':>10}  "
        "no-db cpu of each round"
    )
    medians: dict[str, float] = {}
    for name in routes:
        whole = [statistics.median(way) for way in zip(*figures[(name, "app")], strict=True)]
        framework = [statistics.median(way) for way in zip(*figures[(name, "no db")], strict=True)]
        medians[name] = framework[1]
        spread = " ".join(f"{cpu:.0f}" for _, cpu in figures[(name, "no db")])
        print(
            f"{name:<12} {whole[0]:7.0f} {whole[1]:8.0f} {framework[0]:7.0f} {framework[1]:10.0f}"
            f"  {spread}"
        )
    print("\nthe no-db request split by cProfile on CPU time (shares of the profiled request, as")
    print("µs of the unprofiled CPU median; shares nest: validation is inside solve_dependencies,")
    print("the handler inside the router, and so on)")
    with database_answered_by_constants(app):
        for name, request in routes.items():
            shares = await profile_shares(client, request, headers, max(count // 4, 200))
            print(f"\n{name} (no db, {medians[name]:.0f} µs CPU)")
            for share, fraction in sorted(shares.items(), key=lambda item: -item[1]):
                if fraction > 0:
                    print(f"  {share:<52} {fraction:6.1%} {fraction * medians[name]:6.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--requests", type=int, default=500, help="requests per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        asyncio.run(run(arguments.postgres_url, arguments.requests, arguments.rounds, devnull))


if __name__ == "__main__":
    main()
