"""What the benchmark scripts share: a fresh database, a free port, and our service started as
production runs it."""

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from migrations import upgrade_database
from shared.config import Settings
from shared.db import sync_database_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def wait_until_up(url: str, process: subprocess.Popen, what: str) -> None:
    # Generous: on a busy 2-core machine two workers can take over 30 s to start.
    deadline = time.monotonic() + 120
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
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`main.py` (of `project`: this checkout unless told) under production settings on a free
    port: its base URL and process."""
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
        [sys.executable, str(project / "main.py")],
        ready_url="/health",
        port=port,
        what="the Tasks API",
        environment=environment,
        log_path=log_path,
    ) as running_service:
        yield running_service


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
    log = log_path.open("w") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        if log_path:
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
