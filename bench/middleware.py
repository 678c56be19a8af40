"""Benchmark: what the middleware costs per request, the edge (shared/edge.py) against the stack
of eight layers it replaced, in process, with no network and no database.

    uv run bench/middleware.py [--before REF] [--requests 500] [--rounds 41]

Each variant is the app `create_app` builds under production settings (JSON log lines, written
to /dev/null), plus one route under `/api/` that answers a small JSON object without touching
the database, called as uvicorn calls it: a fresh scope per request, with a valid bearer token.
The variants:

- edge: the app as it is, its one middleware;
- before: the same app with the middleware stack of `REF` (by default the commit before
  shared/edge.py was added), its modules read from git into a temporary folder and loaded
  from there (their own imports resolve to this checkout's shared modules);
- bare: no middleware at all (no token checked), for what the middleware costs in all.

Rounds are short and alternate the order of the variants, so a machine's load changes touch
each alike; the figure of each variant is the median of its rounds' microseconds of CPU time
per request, and the saving is the median of the rounds' paired differences.
"""

import argparse
import asyncio
import gc
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from fastapi import FastAPI  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.types import Message  # noqa: E402

from bench.support import settings_for_bench  # noqa: E402
from main import create_app  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import app_state  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.tokens import mint_token  # noqa: E402

SECRET = "bench-secret-of-more-than-thirty-two-bytes-0123456789"  # noqa: S105
PATH = "/api/alice/bench"
# The modules of the stack before the edge, by their path in the repository.
BEFORE_MODULES = (
    "shared/logging.py",
    "shared/header_limit.py",
    "shared/body_limit.py",
    "shared/security_headers.py",
    "shared/methods.py",
    "shared/drain.py",
    "shared/auth.py",
    "shared/cors.py",
)


def _settings() -> Settings:
    return settings_for_bench(
        app_env="production",
        better_auth_secret=SECRET,
        # Never connected to: the bench route touches no database.
        database_url="postgresql://bench@127.0.0.1:1/bench",
        migrate_on_start=False,
        cors_origins=["https://app.example.com"],
    )


def _app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    configure_logging(settings, stream=open(os.devnull, "w"))  # noqa: SIM115

    @app.get(PATH)
    async def bench() -> dict[str, bool]:
        return {"ok": True}

    return app


def _edge_commit() -> str:
    """The commit before the one that added shared/edge.py (HEAD while it is uncommitted)."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "-1", "--", "shared/edge.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{added}^" if added else "HEAD"


def _load_before(ref: str, folder: Path) -> dict[str, ModuleType]:
    modules = {}
    for path in BEFORE_MODULES:
        source = subprocess.run(
            ["git", "show", f"{ref}:{path}"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        name = Path(path).stem
        file = folder / f"{name}.py"
        file.write_text(source)
        spec = importlib.util.spec_from_file_location(f"before_edge_{name}", file)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def _before_stack(app: FastAPI, settings: Settings, old: dict[str, ModuleType]) -> None:
    """The eight layers as main.py added them before the edge, outermost first."""
    (edge,) = app.user_middleware
    app.user_middleware = [
        Middleware(old["drain"].DrainMiddleware, drain=app_state(app).drain),
        Middleware(old["security_headers"].SecurityHeadersMiddleware, production=True),
        Middleware(
            old["cors"].documented_cors,
            document=lambda: app.openapi(),
            origins=settings.cors_origins,
        ),
        Middleware(old["logging"].RequestContextMiddleware),
        Middleware(old["header_limit"].HeaderLimitMiddleware),
        Middleware(old["body_limit"].BodyLimitMiddleware),
        Middleware(old["auth"].BearerAuthMiddleware, verifier=edge.kwargs["verifier"]),
        Middleware(old["methods"].HeadAsGetMiddleware),
    ]


def _scope(app: FastAPI, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"bench"),
            (b"accept", b"*/*"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "state": {},
    }


async def _round(app: FastAPI, template: dict[str, Any], requests: int) -> float:
    """Microseconds of this process's CPU time per request over `requests` sequential calls:
    CPU time, not wall time, so that other processes on a shared machine count far less."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    gc.collect()
    started = time.process_time()
    for _ in range(requests):
        scope = {**template, "headers": list(template["headers"]), "state": {}}
        await app(scope, receive, send)
    elapsed = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"the bench route answered {sorted(set(statuses))}, not only 200")
    return elapsed / requests * 1e6


async def _measure(apps: dict[str, FastAPI], token: str, requests: int, rounds: int) -> None:
    templates = {name: _scope(app, token) for name, app in apps.items()}
    for name, app in apps.items():  # builds each middleware stack, warms caches
        await _round(app, templates[name], requests // 5 or 1)
    figures: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for number in range(rounds):
        for name in order if number % 2 == 0 else order[::-1]:
            figures[name].append(await _round(apps[name], templates[name], requests))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(
            f"{name:>7}: median {medians[name]:7.1f} µs per request "
            f"(min {min(values):.1f}, max {max(values):.1f}, {rounds} rounds of {requests})"
        )
    before, edge, bare = medians["before"], medians["edge"], medians["bare"]
    print(f"middleware alone: before {before - bare:.1f} µs, edge {edge - bare:.1f} µs")
    # Round by round, the two ran next to each other: their difference and ratio drift less
    # with the machine's load than either figure does.
    saved = [b - e for b, e in zip(figures["before"], figures["edge"], strict=True)]
    ratios = [e / b for b, e in zip(figures["before"], figures["edge"], strict=True)]
    low, _, high = statistics.quantiles(saved, n=4)
    print(
        f"edge / before, paired by round: {statistics.median(ratios):.3f} of the time; "
        f"{statistics.median(saved):.1f} µs saved a request (quartiles {low:.1f} to {high:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    parser.add_argument("--before", help="the commit whose stack is compared (default: above)")
    parser.add_argument("--requests", type=int, default=500, help="requests a round")
    parser.add_argument("--rounds", type=int, default=41, help="rounds per variant")
    arguments = parser.parse_args()
    settings = _settings()
    token = mint_token(settings, "alice")
    with tempfile.TemporaryDirectory(prefix="before_edge_") as folder:
        old = _load_before(arguments.before or _edge_commit(), Path(folder))
        before = _app(settings)
        _before_stack(before, settings, old)
        bare = _app(settings)
        bare.user_middleware = []
        apps = {"before": before, "edge": _app(settings), "bare": bare}
        asyncio.run(_measure(apps, token, arguments.requests, arguments.rounds))


if __name__ == "__main__":
    main()
