"""The service as production runs it: `python main.py` in a process of its own, on a free port,
for the tests that need a real HTTP server (signals, raw sockets, the HTTP parser's limits)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from shared.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any of the service's variables, plus `settings`."""
    names = {name.upper() for name in Settings.model_fields}
    clean = {key: value for key, value in os.environ.items() if key.upper() not in names}
    return {**clean, **settings}


@dataclass
class Service:
    base_url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    environment: dict[str, str]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, how: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        return self.process.wait(timeout=timeout)


@contextmanager
def running_service(
    workdir: Path, port: int | None = None, /, **settings: str
) -> Iterator[Service]:
    """Start the service with these settings (as environment variables), on `port` or a free
    one, and wait until it answers /health; stop it afterwards whatever happened. Its logs go
    to a file, not a pipe, so a chatty server can never block on a full pipe. `port` is
    positional only, so that a mapping of settings passed with ** is never taken for it."""
    port = port or free_port()
    environment = clean_environment(HOST="127.0.0.1", PORT=str(port), **settings)
    log_path = workdir / f"service-{port}.log"
    with log_path.open("a") as log_file:  # a restart on the same port adds to the same log
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "main.py")],
            cwd=workdir,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # A group of its own: killing it kills the workers too, never orphaning them.
            start_new_session=True,
        )
    service = Service(f"http://127.0.0.1:{port}", port, process, log_path, environment)
    try:
        # Generous: on a busy 2-core machine each worker's start can take 15 s or more.
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}: {service.logs()}")
            try:
                if httpx2.get(f"{service.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the service did not answer /health within {STARTUP_TIMEOUT_SECONDS} s: "
                    f"{service.logs()}"
                )
            time.sleep(0.1)
        yield service
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
