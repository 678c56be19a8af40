"""The newcomer's minute: `main.py` serves with no configuration; `main.py token` fits it."""

import asyncio
import signal
import socket
import subprocess
import sys

import httpx2
import pytest

from main import tcp_listening_socket
from tests.service import PROJECT_ROOT, running_service


@pytest.fixture
def server(tmp_path):
    """`python main.py` from an empty folder: no .env, no DATABASE_URL, no secret."""
    with running_service(tmp_path) as service:
        yield service.base_url, tmp_path, service.environment
        # uvicorn shuts down gracefully, then lets the signal end the process as it would have.
        assert service.stop() in (0, -signal.SIGTERM)
        assert "app.stopped" in service.logs()


def test_the_curl_walkthrough_works_against_a_server_with_no_configuration(server):
    base_url, workdir, environment = server
    token = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), "token", "alice", "--email", "a@x.io"],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
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
    assert (workdir / "tasks.db").is_file()


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
