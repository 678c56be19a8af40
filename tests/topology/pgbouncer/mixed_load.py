"""A concurrent mixed load on the real service, and a checker of everything it was told.

Many clients at once read, list, create (with `Idempotency-Key`, some retried), toggle and delete
the same rows. Every answer is checked as it arrives (only the statuses that request can
legitimately get; read-only tasks exactly as stored), and afterwards the database is compared
with what the acknowledged responses say: read-only tasks unchanged, every acknowledged delete
gone and nothing else gone, every surviving task toggled exactly as often as was acknowledged,
every acknowledged create stored once and no other.
"""

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx2
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shared.db import Task
from tests.factories import TaskFactory, UserFactory
from tests.faults.conftest import bearer

READER = "load-reader"  # whose tasks are only ever read
WRITER = "load-writer"  # whose tasks are read, toggled and deleted
CREATOR = "load-creator"  # who only creates


@dataclass
class Rows:
    read_only: dict[int, tuple]  # id -> every column as stored
    mutable: list[int]


def seed(session: Session, *, read_only: int = 200, mutable: int = 200) -> Rows:
    UserFactory(id=READER)
    UserFactory(id=WRITER)
    UserFactory(id=CREATOR)
    readers = [TaskFactory(owner__id=READER) for _ in range(read_only)]
    writers = [TaskFactory(owner__id=WRITER) for _ in range(mutable)]
    return Rows({task.id: _columns(task) for task in readers}, [task.id for task in writers])


def _columns(task: Task) -> tuple:
    return (
        task.user_id,
        task.title,
        task.description,
        task.completed,
        task.created_at,
        task.updated_at,
        task.version,
    )


@dataclass
class Outcome:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    toggles: Counter = field(default_factory=Counter)
    created: dict[str, int] = field(default_factory=dict)  # title -> id


class _Client:
    """One client's loop: its own keep-alive connection, its own share of the work."""

    def __init__(self, base_url: str, rows: Rows, outcome: Outcome, lock: threading.Lock, seed_):
        self.http = httpx2.Client(base_url=base_url, timeout=30)
        self.rows = rows
        self.outcome = outcome
        self.lock = lock
        self.random = random.Random(seed_)  # noqa: S311  (a load, not a secret)
        self.reader = {**bearer(READER)}
        self.writer = {**bearer(WRITER)}
        self.creator = {**bearer(CREATOR)}

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.outcome.problems) < 200:
                self.outcome.problems.append(text)

    def send(self, what: str, method: str, url: str, allowed: set[int], **options):
        try:
            response = self.http.request(method, url, **options)
        except httpx2.TransportError as error:
            self.problem(f"{what}: no response ({type(error).__name__}: {error})")
            return None
        with self.lock:
            self.outcome.requests += 1
            self.outcome.statuses[(what, response.status_code)] += 1
        if response.status_code not in allowed:
            self.problem(f"{what} {url}: {response.status_code} {response.text[:300]}")
            return None
        return response

    def step(self) -> None:
        choice = self.random.random()
        if choice < 0.25:
            self.get_read_only()
        elif choice < 0.40:
            self.list_read_only()
        elif choice < 0.55:
            task_id = self.random.choice(self.rows.mutable)
            self.send(
                "get", "GET", f"/api/{WRITER}/tasks/{task_id}", {200, 404}, headers=self.writer
            )
        elif choice < 0.75:
            self.toggle()
        elif choice < 0.85:
            self.delete()
        else:
            self.create()

    def get_read_only(self) -> None:
        task_id = self.random.choice(list(self.rows.read_only))
        response = self.send(
            "get read-only", "GET", f"/api/{READER}/tasks/{task_id}", {200}, headers=self.reader
        )
        if response is not None:
            self.compare_read_only(response.json())

    def list_read_only(self) -> None:
        offset = self.random.randrange(0, len(self.rows.read_only))
        response = self.send(
            "list read-only",
            "GET",
            f"/api/{READER}/tasks",
            {200},
            params={"limit": 20, "offset": offset, "sort": "title", "order": "asc"},
            headers=self.reader,
        )
        if response is None:
            return
        if response.headers.get("x-total-count") != str(len(self.rows.read_only)):
            self.problem(f"list read-only: X-Total-Count {response.headers.get('x-total-count')}")
        page = response.json()
        if len(page) != min(20, len(self.rows.read_only) - offset):
            self.problem(f"list read-only at {offset}: {len(page)} tasks")
        for item in page:
            self.compare_read_only(item)

    def compare_read_only(self, body: dict) -> None:
        task_id = body.get("id")
        stored = self.rows.read_only.get(task_id) if isinstance(task_id, int) else None
        if stored is None:
            self.problem(f"read-only read answered a task it does not hold: {body}")
        elif (body["user_id"], body["title"], body["description"], body["completed"]) != stored[:4]:
            self.problem(f"read-only task {body['id']} answered changed: {body}")

    def toggle(self) -> None:
        task_id = self.random.choice(self.rows.mutable)
        url = f"/api/{WRITER}/tasks/{task_id}/complete"
        response = self.send("toggle", "PATCH", url, {200, 404}, headers=self.writer)
        if response is not None and response.status_code == 200:
            with self.lock:
                self.outcome.toggles[task_id] += 1

    def delete(self) -> None:
        task_id = self.random.choice(self.rows.mutable)
        url = f"/api/{WRITER}/tasks/{task_id}"
        response = self.send("delete", "DELETE", url, {204, 404}, headers=self.writer)
        if response is not None and response.status_code == 204:
            with self.lock:
                if task_id in self.outcome.deleted:
                    self.problem(f"task {task_id} was deleted twice (204 both times)")
                self.outcome.deleted.add(task_id)

    def create(self) -> None:
        title = f"created {uuid.uuid4().hex}"
        headers = {**self.creator, "Idempotency-Key": uuid.uuid4().hex}
        ids = set()
        # A quarter of the creates are sent twice, as a client retrying would.
        for _ in range(2 if self.random.random() < 0.25 else 1):
            response = self.send(
                "create",
                "POST",
                f"/api/{CREATOR}/tasks",
                {201},
                json={"title": title},
                headers=headers,
            )
            if response is None:
                return
            ids.add(response.json()["id"])
        if len(ids) != 1:
            self.problem(f"one Idempotency-Key created tasks {sorted(ids)}")
            return
        with self.lock:
            self.outcome.created[title] = ids.pop()


def run_mixed_load(
    base_url: str,
    rows: Rows,
    *,
    clients: int = 16,
    seconds: float = 15.0,
    max_requests: int = 12_000,
) -> Outcome:
    """`clients` concurrent clients for `seconds` (or until `max_requests` were answered)."""
    outcome = Outcome()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    workers = [_Client(base_url, rows, outcome, lock, number) for number in range(clients)]

    def loop(client: _Client) -> None:
        try:
            while time.monotonic() < deadline and outcome.requests < max_requests:
                client.step()
        except Exception as error:  # a checker's own failure must be reported, not lost
            client.problem(f"client crashed: {type(error).__name__}: {error}")
        finally:
            client.http.close()

    threads = [threading.Thread(target=loop, args=(worker,), daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
        if thread.is_alive():
            outcome.problems.append("a client was still waiting two minutes after the load ended")
    return outcome


def stored_problems(engine: Engine, rows: Rows, outcome: Outcome) -> list[str]:
    """How the database differs from what the acknowledged responses say."""
    problems = []
    with Session(engine) as session:
        stored = {task.id: task for task in session.scalars(select(Task))}
    for task_id, columns in rows.read_only.items():
        task = stored.get(task_id)
        if task is None:
            problems.append(f"read-only task {task_id} is gone")
        elif _columns(task) != columns:
            problems.append(f"read-only task {task_id} changed: {columns} -> {_columns(task)}")
    for task_id in rows.mutable:
        task = stored.get(task_id)
        if task_id in outcome.deleted:
            if task is not None:
                problems.append(f"task {task_id} was acknowledged deleted and is still there")
            continue
        if task is None:
            problems.append(f"task {task_id} is gone, though no delete of it was acknowledged")
            continue
        toggles = outcome.toggles[task_id]
        if (task.version, task.completed) != (1 + toggles, toggles % 2 == 1):
            problems.append(
                f"task {task_id} toggled {toggles} times (acknowledged) is at version "
                f"{task.version}, completed={task.completed}"
            )
    created = [task for task in stored.values() if task.user_id == CREATOR]
    titles = Counter(task.title for task in created)
    for title, task_id in outcome.created.items():
        if titles[title] != 1 or stored.get(task_id) is None or stored[task_id].title != title:
            problems.append(f"acknowledged create {task_id} is stored {titles[title]} times")
    unacknowledged = set(titles) - set(outcome.created)
    if unacknowledged:
        problems.append(f"{len(unacknowledged)} tasks were created that no response acknowledged")
    return problems
