"""The newcomer's minute: `main.py` serves with no configuration; `main.py token` fits it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from shared.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clean_environment(**extra: str) -> dict[str, str]:
    settings_names = {name.upper() for name in Settings.model_fields}
    clean = {key: value for key, value in os.environ.items() if key.upper() not in settings_names}
    return {**clean, **extra}


@pytest.fixture
def server(tmp_path):
    """`python main.py` from an empty folder: no .env, no DATABASE_URL, no secret."""
    port = _free_port()
    environment = _clean_environment(PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "main.py")],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {process.stdout.read()}")
        try:
            if httpx2.get(f"{base_url}/health", timeout=1).status_code == 200:
                break
        except httpx2.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the server did not answer /health within 30 s")
    yield base_url, tmp_path, environment
    process.terminate()
    process.wait(timeout=15)


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
