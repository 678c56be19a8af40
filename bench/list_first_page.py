"""Benchmark: the first page of a person's list costs the same at 10 tasks and at 100,000, and
other people's tasks do not slow it.

    uv run bench/list_first_page.py [--postgres-url URL] [--rounds 7] [--requests 200]

It creates two PostgreSQL databases on the server (dropped afterwards) and serves each from its
own instance of the service, under production settings, on loopback:

- "alone": only the reader (10 tasks) and a person with 1,000 tasks;
- "crowded": the same two, a person with 100,000 tasks, and 1,000 others with 100 tasks each.

The default page holds 1,000 tasks (every task of any realistic list). A page of 1,000 from a
10-task list is 10 tasks, so the target compares the same page size: the 10-task list against
the first 10 of the 100,000. The default page of 1,000, and a page of 20, are each compared
with the same page from the 1,000-task list.

It then requests first pages from both, round after round, alternating the order, and prints
the median latency of each case across rounds and its ratio to the reader's list in the "alone"
database. Every response is checked (status, number of tasks, X-Total-Count); a single wrong one
stops the run, so no error is ever counted as a timing.

Latency on a shared machine is noisy, so the script also reports a figure that is not: how many
rows and buffer pages the database touched for each page (EXPLAIN ANALYZE of the very statement
the endpoint sends).
"""

import argparse
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import httpx2  # noqa: E402
import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.support import (  # noqa: E402
    add_postgres_url_argument,
    fresh_database,
    our_service,
    settings_for_bench,
)
from main import create_app  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import sync_database_url  # noqa: E402
from shared.tokens import mint_token  # noqa: E402

SECRET = secrets.token_urlsafe(48)
LONG_LIST = 100_000
OTHER_PEOPLE = 1_000
EACH_OTHER_PERSONS_TASKS = 100


@dataclass(frozen=True)
class Case:
    name: str
    database: str  # "alone" or "crowded"
    user_id: str
    query: str
    expected_tasks: int
    expected_total: int
    compared_with: str  # the case with the same page from a short list


SHORT_10 = "reader, 10 tasks, alone"
SHORT_20 = "1,000 tasks, first 20, alone"
SHORT_PAGE = "1,000 tasks, alone (default page)"
TARGET = "100,000 tasks, first 10"
PAGE = 1_000  # the default page size
SHORT_LIST = 1_000
# The target is TARGET against SHORT_10: the same page (10 tasks) of a 10-task list and of a
# 100,000-task list. The rest compare pages of 20 and of the default 1,000 likewise, show that
# other people's tasks change nothing, and that a page deep in a long list costs what the
# first one does.
CASES = [
    Case(SHORT_10, "alone", "reader", "", 10, 10, SHORT_10),
    Case(TARGET, "crowded", "heavy", "?limit=10", 10, LONG_LIST, SHORT_10),
    Case("reader, 10 tasks, among 201,000 others'", "crowded", "reader", "", 10, 10, SHORT_10),
    Case(SHORT_20, "alone", "thousand", "?limit=20", 20, SHORT_LIST, SHORT_20),
    Case("100,000 tasks, first 20", "crowded", "heavy", "?limit=20", 20, LONG_LIST, SHORT_20),
    Case(SHORT_PAGE, "alone", "thousand", "", PAGE, SHORT_LIST, SHORT_PAGE),
    Case(
        "100,000 tasks, first 1,000 (default)", "crowded", "heavy", "", PAGE, LONG_LIST, SHORT_PAGE
    ),
    Case(
        "100,000 tasks, first 1,000 pending",
        "crowded",
        "heavy",
        "?status=pending",
        PAGE,
        LONG_LIST - LONG_LIST // 3,
        SHORT_PAGE,
    ),
    Case(
        "100,000 tasks, first 1,000 by title",
        "crowded",
        "heavy",
        "?sort=title&order=asc",
        PAGE,
        LONG_LIST,
        SHORT_PAGE,
    ),
    Case(
        "100,000 tasks, 1,000 at 50,000 (cursor)",
        "crowded",
        "heavy",
        "DEEP",
        PAGE,
        LONG_LIST,
        SHORT_PAGE,
    ),
]


def _seed(url: str, *, crowded: bool) -> None:
    """The people and their tasks, written by the database itself."""
    people: list[tuple[str, int]] = [("reader", 10), ("thousand", SHORT_LIST)]
    if crowded:
        people.append(("heavy", LONG_LIST))
        people += [(f"other-{n}", EACH_OTHER_PERSONS_TASKS) for n in range(OTHER_PEOPLE)]
    engine = create_engine(sync_database_url(url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, created_at) "
                "SELECT id, now() FROM unnest(CAST(:ids AS text[])) AS id"
            ),
            {"ids": [user_id for user_id, _ in people]},
        )
        # The count trigger would update one counter slot 100,000 times in this one transaction,
        # which takes minutes; the counts are set once afterwards instead, as migration 0004
        # does, and every response's X-Total-Count is checked against them.
        connection.execute(text("ALTER TABLE tasks DISABLE TRIGGER tasks_keep_user_counts"))
        for user_id, count in people:
            # Every third task done; updated_at in another order than created_at, as in life.
            connection.execute(
                text(
                    """INSERT INTO tasks (user_id, title, description, completed,
                                          created_at, updated_at)
                       SELECT :user_id, 'task ' || n, 'notes for task ' || n, n % 3 = 0,
                              now() - n * interval '1 second',
                              now() - (n * 7919 % :count) * interval '1 second'
                         FROM generate_series(1, :count) AS n"""
                ),
                {"user_id": user_id, "count": count},
            )
        connection.execute(text("ALTER TABLE tasks ENABLE TRIGGER tasks_keep_user_counts"))
        connection.execute(
            text(
                # Every one of the 64 slots filled, as a person written to from many
                # connections has them: the read sums the most rows it can.
                """INSERT INTO user_task_counts (user_id, slot, task_count, completed_count)
                   SELECT user_id, slot, CASE slot WHEN 0 THEN total ELSE 0 END,
                          CASE slot WHEN 0 THEN done ELSE 0 END
                     FROM (SELECT user_id, count(*) AS total,
                                  count(*) FILTER (WHERE completed) AS done
                             FROM tasks GROUP BY user_id) AS counted,
                          generate_series(0, 63) AS slot"""
            )
        )
    # As autovacuum would: the planner's statistics, and the visibility map for index scans.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _settings(url: str) -> Settings:
    return settings_for_bench(
        app_env="production",
        database_url=url,
        better_auth_secret=SECRET,
        migrate_on_start=False,
        log_level="WARNING",  # only for the in-process app that shows the plans
    )


def _deep_cursor_query(base_url: str, token: str) -> str:
    """A cursor halfway down the long list, from the Link header of the page before it."""
    response = httpx2.get(
        f"{base_url}/api/heavy/tasks?offset={LONG_LIST // 2 - PAGE}",
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return "?" + response.links["next"]["url"].split("?", 1)[1]


def _time_case(
    client: httpx2.Client, path: str, token: str, case: Case, requests: int
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        if (
            response.status_code != 200
            or len(response.json()) != case.expected_tasks
            or response.headers.get("x-total-count") != str(case.expected_total)
        ):
            raise SystemExit(
                f"{case.name}: a wrong answer ({response.status_code}, "
                f"X-Total-Count {response.headers.get('x-total-count')}): {response.text[:300]}"
            )
        timings.append(elapsed * 1000)
    return timings


@dataclass(frozen=True)
class DatabaseWork:
    rows_read: int
    buffers: int


def _database_work(
    url: str, paths: dict[str, tuple[str, str]], tokens: dict[str, str]
) -> dict[str, Any]:
    """Per case, the rows the tasks scan read (kept or filtered out) and the buffer pages the
    statement touched, from EXPLAIN ANALYZE of the statement the endpoint sends."""
    app = create_app(_settings(url))
    sent: list[tuple[str, Any]] = []
    execute = psycopg.AsyncCursor.execute

    async def recording_execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        # The app runs on psycopg directly: its cursor is where the statement is seen.
        statement = query.decode() if isinstance(query, bytes) else str(query)
        if statement.lstrip().upper().startswith("SELECT") and "FROM tasks" in statement:
            sent.append((statement, params))
        return await execute(cursor, query, params, **kwargs)

    psycopg.AsyncCursor.execute = recording_execute  # type: ignore[method-assign]
    engine = create_engine(sync_database_url(url))
    work = {}
    with TestClient(app) as client, engine.connect() as connection:
        for name, (user_id, path) in paths.items():
            sent.clear()
            headers = {"Authorization": f"Bearer {tokens[user_id]}"}
            client.get(path, headers=headers).raise_for_status()
            statement, parameters = sent[0]
            plan = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters
            ).scalar_one()[0]["Plan"]
            work[name] = DatabaseWork(_rows_read(plan), _buffers(plan))
    engine.dispose()
    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    return work


def _rows_read(plan: dict) -> int:
    # Rows that scans of tasks produced or threw away, over the whole plan (count subplans too).
    own = 0
    if plan.get("Relation Name") == "tasks":
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get(
            "Actual Loops", 1
        )
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


def _buffers(plan: dict) -> int:
    # The top node's counts include its children's.
    return plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200, help="per case and round")
    arguments = parser.parse_args()

    with (
        fresh_database(arguments.postgres_url, "alone") as alone_url,
        fresh_database(arguments.postgres_url, "crowded") as crowded_url,
    ):
        started = time.perf_counter()
        _seed(alone_url, crowded=False)
        _seed(crowded_url, crowded=True)
        print(f"seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        settings = _settings(alone_url)
        tokens = {
            user_id: mint_token(settings, user_id, lifetime=timedelta(hours=2))
            for user_id in ("reader", "thousand", "heavy")
        }
        with (
            our_service(alone_url, SECRET) as (alone, _),
            our_service(crowded_url, SECRET) as (crowded, _),
        ):
            servers = {"alone": alone, "crowded": crowded}
            deep_query = _deep_cursor_query(crowded, tokens["heavy"])
            paths = {
                case.name: (
                    case.user_id,
                    f"/api/{case.user_id}/tasks"
                    + (deep_query if case.query == "DEEP" else case.query),
                )
                for case in CASES
            }
            clients = {name: httpx2.Client(base_url=url) for name, url in servers.items()}
            medians: dict[str, list[float]] = {case.name: [] for case in CASES}
            p99s: dict[str, list[float]] = {case.name: [] for case in CASES}
            for round_number in range(arguments.rounds + 1):
                # Each round starts at another case, so no case always follows the same one.
                shift = round_number % len(CASES)
                for case in CASES[shift:] + CASES[:shift]:
                    timings = _time_case(
                        clients[case.database],
                        paths[case.name][1],
                        tokens[case.user_id],
                        case,
                        arguments.requests,
                    )
                    if round_number == 0:
                        continue  # the first round only warms caches and connections
                    medians[case.name].append(statistics.median(timings))
                    p99s[case.name].append(statistics.quantiles(timings, n=100)[98])
                print(f"round {round_number} done", file=sys.stderr)
            for client in clients.values():
                client.close()

        work = {
            **_database_work(
                alone_url,
                {c.name: paths[c.name] for c in CASES if c.database == "alone"},
                tokens,
            ),
            **_database_work(
                crowded_url,
                {c.name: paths[c.name] for c in CASES if c.database == "crowded"},
                tokens,
            ),
        }

    typical = {case.name: statistics.median(medians[case.name]) for case in CASES}
    print(
        f"\nFirst page of one person's list over HTTP, {arguments.rounds} rounds x "
        f"{arguments.requests} requests per case: the median of the rounds' medians and p99s; "
        "ratio = against the same page size from a short list; rows and buffers = what the "
        "database touched for one such page."
    )
    print(
        f"{'case':<40} {'median ms':>9} {'p99 ms':>8} {'ratio':>6} {'rows read':>9} {'buffers':>8}"
    )
    for case in CASES:
        p99 = statistics.median(p99s[case.name])
        ratio = typical[case.name] / typical[case.compared_with]
        print(
            f"{case.name:<40} {typical[case.name]:>9.2f} {p99:>8.2f} {ratio:>6.2f} "
            f"{work[case.name].rows_read:>9} {work[case.name].buffers:>8}"
        )
    target = typical[TARGET] / typical[SHORT_10]
    verdict = "met" if target <= 1.5 else "NOT met"
    print(f"\n10 vs 100,000 tasks, same page: ratio {target:.2f} (target at most 1.5: {verdict})")


if __name__ == "__main__":
    main()
