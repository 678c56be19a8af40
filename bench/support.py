"""What the benchmark scripts share: a fresh database, a free port, and our service started as
production runs it."""

import argparse
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from migrations import upgrade_database
from shared.config import Settings
from shared.db import sync_database_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_SCRIPT = Path(__file__).resolve().parent / "workload.lua"


def settings_for_bench(**values: Any) -> Settings:
    """Settings from `values` alone: the developer's `.env` does not change what is measured."""
    # `_env_file` is pydantic-settings' own init argument, missing from the signature pyright
    # derives from the fields (a typing gap of the library, not of this call).
    return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def fresh_database(admin_url: str, purpose: str) -> Iterator[str]:
    """A new database on the server of `admin_url`, migrated (its URL); dropped afterwards."""
    admin = create_engine(sync_database_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"tasks_bench_{purpose}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# Generous: on a busy machine a worker's `import main` alone has taken over 20 s.
START_SECONDS = 120


def wait_until_up(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


@contextmanager
def our_service(
    database_url: str,
    secret: str,
    *,
    workers: int = 1,
    overrides: dict[str, str] | None = None,
    log_path: Path | None = None,
    project: Path = PROJECT_ROOT,
    server: str = "uvicorn",
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`main.py` (of `project`: this checkout unless told) under production settings on a free
    port: its base URL and process. `server="granian"` serves the same app with granian instead
    (an experiment: granian is no dependency of the project, so the caller's environment must
    have it, e.g. `uv run --with granian==2.8.7`)."""
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields},
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": secret,
        "MIGRATE_ON_START": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": str(workers),
        "DRAIN_SECONDS": "0",  # no balancer in front: stop at once
        **(overrides or {}),
    }
    with running(
        _server_command(server, project, port, workers),
        ready_url="/health",
        port=port,
        what="the Tasks API",
        environment=environment,
        log_path=log_path,
    ) as running_service:
        yield running_service


def _server_command(server: str, project: Path, port: int, workers: int) -> list[str]:
    if server == "uvicorn":
        return [sys.executable, str(project / "main.py")]
    if server != "granian":
        raise SystemExit(f"unknown server {server!r}: uvicorn or granian")
    if importlib.util.find_spec("granian") is None:
        raise SystemExit(
            "granian is not installed: run the script with `uv run --with granian==2.8.7 ...`"
        )
    # The app main.py serves, built in each worker, with the event loop uvicorn uses (uvloop);
    # HTTP/1.1 only, no WebSockets, no access log, as main.py serves it. create_app rather than
    # create_served_app: the drain wraps uvicorn's signal handlers, and the bench stops at once.
    return [
        *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning"),
        *("--working-dir", str(project)),
        "main:create_app",
    ]


@contextmanager
def running(
    command: list[str],
    *,
    ready_url: str,
    port: int,
    what: str,
    environment: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A server process on 127.0.0.1:`port`, once `ready_url` answers; stopped afterwards."""
    log = log_path.open("w") if log_path else None
    try:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log:
            log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}{ready_url}", process, what)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def add_postgres_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TASKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's maintenance database, to create the bench databases",
    )


def require_wrk() -> None:
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # A fresh machine of this kind: wrk comes from Debian's packages.
        print("installing wrk (apt-get install wrk)", file=sys.stderr)
        installed = subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
        if installed.returncode != 0:
            subprocess.run(["apt-get", "update"], check=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")


@dataclass(frozen=True)
class WrkRun:
    service: str
    workload: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int


def run_wrk(
    base: str, service: str, workload: str, connections: int, duration: int, data: Path
) -> WrkRun:
    """One wrk run of workload.lua (`service`: "postgrest", or a name of ours; `data`: the
    Lua file of people, tokens and tasks it reads). A non-2xx answer counts as a failure."""
    threads = 2
    completed = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(WORKLOAD_SCRIPT),
            base,
            "--",
            "postgrest" if service == "postgrest" else "ours",
            workload,
        ],
        env={**os.environ, "BENCH_DATA": str(data), "BENCH_THREADS": str(threads)},
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    failures = figures["errors"] + figures["socket_errors"] + figures["deletions_exhausted"]
    if failures:
        print(
            f"  {service} {workload} c={connections}: {failures} failed requests "
            f"{completed.stderr.strip()[:400]}",
            file=sys.stderr,
        )
    return WrkRun(
        service,
        workload,
        connections,
        figures["rps"],
        figures["p50_ms"],
        figures["p99_ms"],
        failures,
    )


def seed_people(connection: Connection, people: list[str], tasks_each: int) -> dict[str, list[int]]:
    """These people, each with `tasks_each` tasks (a third of them done); their task ids."""
    connection.execute(
        text(
            "INSERT INTO users (id, created_at) "
            "SELECT id, now() FROM unnest(CAST(:ids AS text[])) AS id"
        ),
        {"ids": people},
    )
    rows = connection.execute(
        text(
            """INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at)
               SELECT person, 'task ' || n, 'notes for task ' || n, n % 3 = 0,
                      now() - n * interval '1 minute', now() - n * interval '1 minute'
                 FROM unnest(CAST(:ids AS text[])) AS person,
                      generate_series(1, :count) AS n
               RETURNING user_id, id"""
        ),
        {"ids": people, "count": tasks_each},
    )
    tasks: dict[str, list[int]] = {}
    for user_id, task_id in rows:
        tasks.setdefault(user_id, []).append(task_id)
    return tasks
