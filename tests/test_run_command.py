"""The newcomer's minute: `main.py` serves with no configuration, on an embedded PostgreSQL
whose data it keeps between runs; `main.py token` fits it."""

import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil
import pytest

from main import tcp_listening_socket
from tests.service import PROJECT_ROOT, clean_environment, running_service


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL server processes (the postmaster and its children) of that data folder."""
    postmasters = [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "postgres" and str(data_dir) in (process.info["cmdline"] or [])
    ]
    return [child for parent in postmasters for child in [parent, *parent.children()]]


def _ready(service) -> None:
    """Wait for the start-up migration: /health answers before it has run, /ready after."""
    deadline = time.monotonic() + 60
    while httpx2.get(f"{service.base_url}/ready").status_code != 200:
        assert time.monotonic() < deadline, service.logs()
        time.sleep(0.1)


def _stop(service) -> None:
    # uvicorn shuts down gracefully, then lets the signal end the process as it would have.
    assert service.stop() in (0, -signal.SIGTERM)
    assert "app.stopped" in service.logs()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The embedded PostgreSQL's folder: the one setting given, so that a test never touches
    the project's own `.postgres/`. Outside pytest's own temporary folders, which each pytest
    session makes private to root again, out of reach of the server's account when run as root.
    """
    with tempfile.TemporaryDirectory(prefix="tasks-embedded-") as folder:
        yield Path(folder) / "data"


@pytest.fixture
def server(tmp_path, data_dir):
    """`python main.py` from an empty folder: no .env, no DATABASE_URL, no secret."""
    with running_service(tmp_path, EMBEDDED_POSTGRES_DIR=str(data_dir)) as service:
        yield service.base_url, tmp_path, service.environment
        _stop(service)


def test_the_curl_walkthrough_works_against_a_server_with_no_configuration(server, data_dir):
    base_url, workdir, environment = server
    token = _token(environment, workdir, "--email", "a@x.io")
    api = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})

    created = api.post("/api/alice/tasks", json={"title": "Try the API"})
    assert created.status_code == 201
    task_url = created.headers["location"]
    assert api.get("/api/alice/tasks").json()[0]["title"] == "Try the API"
    assert api.get(task_url).json()["id"] == created.json()["id"]
    assert api.put(task_url, json={"title": "Tried it"}).json()["title"] == "Tried it"
    assert api.patch(f"{task_url}/complete").json()["completed"] is True
    assert api.delete(task_url).status_code == 204
    assert api.get(task_url).status_code == 404
    assert api.get("/api/bob/tasks").status_code == 403
    assert httpx2.get(f"{base_url}/docs").status_code == 200
    assert (data_dir / "PG_VERSION").is_file()


def _token(environment: dict[str, str], workdir: Path, *claims: str) -> str:
    """A token for alice from `main.py token` (with `--email` and such as `claims`)."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), "token", "alice", *claims],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def test_the_embedded_database_keeps_the_tasks_and_stops_with_the_service(tmp_path, data_dir):
    with running_service(tmp_path, EMBEDDED_POSTGRES_DIR=str(data_dir)) as first:
        _ready(first)
        headers = {"Authorization": f"Bearer {_token(first.environment, tmp_path)}"}
        created = httpx2.post(
            f"{first.base_url}/api/alice/tasks", json={"title": "Still here?"}, headers=headers
        )
        assert created.status_code == 201
        assert _postgres_processes(data_dir)
        _stop(first)
    assert _postgres_processes(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()

    with running_service(tmp_path, EMBEDDED_POSTGRES_DIR=str(data_dir)) as second:
        _ready(second)
        fetched = httpx2.get(f"{second.base_url}{created.headers['location']}", headers=headers)
        _stop(second)

    assert fetched.status_code == 200
    assert fetched.json() == created.json()
    assert _postgres_processes(data_dir) == []
    logs = second.logs()
    assert "database.embedded_started" in logs
    assert str(data_dir) in logs


def test_the_token_command_starts_no_database(tmp_path, data_dir):
    token = _token(clean_environment(EMBEDDED_POSTGRES_DIR=str(data_dir)), tmp_path)

    assert token.startswith("eyJ")
    assert not data_dir.exists()


def test_the_workers_shared_socket_turns_nagle_off_on_every_connection():
    """With several workers, a response written in two parts must not wait for the client's
    delayed acknowledgement: each accepted connection has TCP_NODELAY."""
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # as uvicorn creates it
    bound.bind(("127.0.0.1", 0))
    listening = tcp_listening_socket(bound)
    port = listening.getsockname()[1]
    seen: list[int] = []

    async def accept_one() -> None:
        accepted = asyncio.Event()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            seen.append(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
            accepted.set()

        server = await asyncio.start_server(connected, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(accepted.wait(), timeout=10)
            writer.close()

    asyncio.run(accept_one())

    assert listening.proto == socket.IPPROTO_TCP
    assert seen == [1]
