"""Two instances of the service behind a real HAProxy (Debian's), each restarted in turn while
clients create, toggle and delete: no request fails or goes unanswered, and the database holds
exactly what the acknowledged responses say.

HAProxy is configured as the README recommends (`haproxy_config`): health checks on `/ready`
whose interval x fall is well inside the drain, retries only of connections that failed (the
request never reached a server), redispatched to the other server. One instance runs two
workers and the other one, so both ways of serving are restarted. Without the drain the same
run loses requests (`test_without_the_drain_a_restart_loses_requests`)."""

import csv
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import create_engine, text

from migrations import upgrade_database
from shared.db import sync_database_url
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, empty_postgres_database, settings_for_test
from tests.programs import required_program
from tests.service import Service, free_port, running_service

CLIENTS = 6
CHECK_INTERVAL_MS = 500
# Generous: on a busy machine a loaded instance may take a while to answer, and two slow
# answers in a row must not take a healthy instance out while the other one restarts.
CHECK_TIMEOUT_MS = 3000
FALL = 2
RISE = 2
# Longer than HAProxy can take to see a draining instance fail: a check in flight may take
# CHECK_TIMEOUT_MS, then FALL checks CHECK_INTERVAL_MS apart (a draining instance's 503 is
# immediate).
DRAIN_SECONDS = 5


def haproxy_config(
    frontend_port: int, servers: dict[str, int], stats_socket: Path, *, retries: bool = True
) -> str:
    """The configuration the README recommends, on loopback ports (times for the test's drain);
    `retries=False`: a balancer that sends each request once, as many do."""
    retry = [
        # A connection refused or reset before the request was sent is retried, on the other
        # server: safe for every method. Nothing else is: a request a server received may have
        # done its work (a POST with an Idempotency-Key could be replayed, a toggle could not).
        "    retries 3",
        "    retry-on conn-failure",
        "    option redispatch 1",
    ]
    lines = [
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        f"    timeout check {CHECK_TIMEOUT_MS}ms",
        *(retry if retries else ["    retries 0"]),
        "frontend api",
        f"    bind 127.0.0.1:{frontend_port}",
        "    default_backend tasks",
        "backend tasks",
        "    balance roundrobin",
        "    option httpchk GET /ready",
        "    http-check expect status 200",
        f"    default-server inter {CHECK_INTERVAL_MS}ms fall {FALL} rise {RISE}",
    ]
    lines += [f"    server {name} 127.0.0.1:{port} check" for name, port in servers.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Balancer:
    base_url: str
    stats_socket: Path
    process: subprocess.Popen
    log_path: Path

    def server_status(self) -> dict[str, str]:
        """HAProxy's view of each server of the backend: UP, DOWN, or on its way (`UP 1/2`)."""
        with socket.socket(socket.AF_UNIX) as stats:
            stats.settimeout(5)
            stats.connect(str(self.stats_socket))
            stats.sendall(b"show stat\n")
            answer = b""
            while chunk := stats.recv(65536):
                answer += chunk
        rows = csv.DictReader(answer.decode().removeprefix("# ").splitlines())
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "tasks" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_until(self, server: str, status: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self.server_status().get(server)) != status:
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, f"HAProxy sees {server} {seen}, not {status}"
            time.sleep(0.1)


@contextmanager
def running_haproxy(workdir: Path, servers: dict[str, int], *, retries: bool) -> Iterator[Balancer]:
    haproxy = required_program("haproxy", "haproxy")
    port = free_port()
    stats_socket = workdir / "haproxy.sock"
    config = workdir / "haproxy.cfg"
    config.write_text(haproxy_config(port, servers, stats_socket, retries=retries))
    log_path = workdir / "haproxy.log"
    with log_path.open("w") as log:
        # -db: in the foreground, so that it is this process and stops with it.
        process = subprocess.Popen(
            [str(haproxy), "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    balancer = Balancer(f"http://127.0.0.1:{port}", stats_socket, process, log_path)
    try:
        deadline = time.monotonic() + 30
        while not stats_socket.exists():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "HAProxy did not start"
            time.sleep(0.05)
        yield balancer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class ClientRecord:
    """What one client sent and what it was told: only acknowledged writes count."""

    user_id: str
    created: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> id (201)
    completed: dict[int, bool] = field(default_factory=dict)  # id -> state last acknowledged
    deleted: set[int] = field(default_factory=set)  # ids answered 204
    requests: int = 0
    failures: list[str] = field(default_factory=list)


def _client_loop(base_url: str, record: ClientRecord, stop: threading.Event) -> None:
    settings = settings_for_test(better_auth_secret=TEST_SECRET)
    headers = {"Authorization": f"Bearer {mint_token(settings, record.user_id)}"}
    tasks = f"/api/{record.user_id}/tasks"
    chooser = random.Random(record.user_id)  # noqa: S311 (a workload, not a secret)
    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as client:
        while not stop.is_set():
            alive = sorted(set(record.completed) - record.deleted)
            operation = chooser.choice(
                ["create", "create", "toggle", "delete"] if alive else ["create"]
            )
            try:
                if operation == "create":
                    key = str(uuid.uuid4())
                    response = client.post(
                        tasks, json={"title": f"task {key}"}, headers={"Idempotency-Key": key}
                    )
                    if response.status_code == 201:
                        record.created[key] = response.json()["id"]
                        record.completed[response.json()["id"]] = False
                elif operation == "toggle":
                    task_id = chooser.choice(alive)
                    response = client.patch(f"{tasks}/{task_id}/complete")
                    if response.status_code == 200:
                        record.completed[task_id] = response.json()["completed"]
                else:
                    task_id = chooser.choice(alive)
                    response = client.delete(f"{tasks}/{task_id}")
                    if response.status_code == 204:
                        record.deleted.add(task_id)
                if response.status_code not in (200, 201, 204):
                    record.failures.append(f"{operation}: {response.status_code} {response.text}")
            except httpx2.TransportError as error:
                record.failures.append(f"{operation}: no response ({error!r})")
            record.requests += 1


def _stored(database_url: str) -> list[tuple[str, int, str, bool]]:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    text("SELECT user_id, id, title, completed FROM tasks ORDER BY id")
                )
            ]
    finally:
        engine.dispose()


@pytest.fixture
def migrated_database(postgres_admin) -> Iterator[str]:
    with empty_postgres_database(postgres_admin) as url:
        upgrade_database(url)
        yield url


def _rolling_restart_under_load(
    workdir: Path, database_url: str, drain_seconds: int, *, retries: bool = True
) -> tuple[list[ClientRecord], str]:
    """Starts two instances and HAProxy, runs the clients while each instance in turn is
    stopped with SIGTERM and started again on its port; the clients' records and all logs."""
    settings = {
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "MIGRATE_ON_START": "false",
        "DRAIN_SECONDS": str(drain_seconds),
    }
    workers = {"a": "2", "b": "1"}
    ports = {name: free_port() for name in workers}
    services: dict[str, Service] = {}
    logs: list[Callable[[], str]] = []
    with ExitStack() as stack:

        def start(name: str) -> None:
            services[name] = stack.enter_context(
                running_service(workdir, ports[name], WORKERS=workers[name], **settings)
            )

        for name in workers:
            start(name)
            logs.append(services[name].logs)
        balancer = stack.enter_context(running_haproxy(workdir, ports, retries=retries))
        for name in workers:
            balancer.wait_until(name, "UP")

        stop = threading.Event()
        records = [ClientRecord(f"client-{number}") for number in range(CLIENTS)]
        clients = [
            threading.Thread(target=_client_loop, args=(balancer.base_url, record, stop))
            for record in records
        ]
        for client in clients:
            client.start()
        try:
            time.sleep(2)
            for name in workers:
                services[name].stop(signal.SIGTERM, timeout=drain_seconds + 60)
                start(name)
                balancer.wait_until(name, "UP")
                time.sleep(2)  # load on both again before the next restart
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
        assert not any(client.is_alive() for client in clients)
        logs.append(lambda: balancer.log_path.read_text())
    return records, "\n".join(read() for read in logs)


def test_a_rolling_restart_behind_haproxy_loses_no_request_and_no_write(
    tmp_path, migrated_database
):
    records, logs = _rolling_restart_under_load(tmp_path, migrated_database, DRAIN_SECONDS)

    failures = [failure for record in records for failure in record.failures]
    assert failures == []
    assert sum(record.requests for record in records) > 100  # there was load throughout
    assert "Traceback" not in logs
    assert logs.count("server.drained") == 3  # two workers of a, then b's one

    stored = _stored(migrated_database)
    titles = [title for _, _, title, _ in stored]
    assert len(titles) == len(set(titles))  # no create stored twice
    rows = {task_id: (user_id, title, completed) for user_id, task_id, title, completed in stored}
    for record in records:
        for key, task_id in record.created.items():
            if task_id in record.deleted:
                assert task_id not in rows  # every acknowledged delete is gone
            else:  # every acknowledged create is there once, as its last toggle left it
                assert rows[task_id] == (record.user_id, f"task {key}", record.completed[task_id])
    acknowledged_alive = {task_id for record in records for task_id in record.created.values()} - {
        task_id for record in records for task_id in record.deleted
    }
    assert set(rows) == acknowledged_alive  # nothing stored that no response acknowledged


def test_without_the_drain_a_balancer_that_does_not_retry_loses_requests(
    tmp_path, migrated_database
):
    """The test above can fail. Without the drain an instance stops accepting the moment it
    gets SIGTERM, while HAProxy still counts it up until its checks fail; with the retries of
    refused connections that the README recommends those requests go to the other instance,
    but a balancer that sends each request once answers them 503. With the drain the instance
    serves on until the balancer has taken it out, which is what makes the retries a spare."""
    records, _ = _rolling_restart_under_load(tmp_path, migrated_database, 0, retries=False)

    failures = [failure for record in records for failure in record.failures]
    assert failures, "no request failed without the drain: the test above proves nothing"
