"""What one write pays for the per-user count trigger: the counter slots of migration 0004 (the
schema as the migrations leave it) against migration 0002's trigger on the `users` row.

    uv run bench/insert_cost.py [--rounds 3] [--duration 5] [--clients 8]
                                [--modes transaction,autocommit] [--ops insert,delete,toggle]

Needs the PostgreSQL server of the tests (--postgres-url) and pgbench (Debian's
postgresql-client or postgresql-contrib package).

One seeded database (this service's migrated schema; a busy person with 100,000 tasks and 1,000
people with 100 each, vacuumed), copied once per variant: the schema as the migrations leave it
("as is": each backend adds its deltas to the person's counter slot `pg_backend_pid() % 64`),
with migration 0002's design put back ("users row": the counts on the person's `users` row and
0002's trigger function, by running migration 0004's own downgrade on the copy), and
without any count trigger (the floor). The variants change only these bench databases.

pgbench then sends, by `--clients` connections at once, each write the endpoints send: the
create endpoint's INSERT (one row, `RETURNING id`), a delete of one task, and a toggle of one
task's `completed` (with its version and updated_at, as complete_task does); each prepared, for
one person (every write for the busy person, so under 0002 every write updates the same `users`
row) or many people (each write for a task of one of the 1,000 at random), and each write
either as one autocommit statement or inside BEGIN ... COMMIT. A delete or toggle picks the
first task at or after a random id, so it nearly always finds one. Each round runs every
variant once per case, in an order that rotates from round to round, after an uncounted warm-up
round; before each run the count tables are vacuumed, as autovacuum would. The script prints the
medians of the rounds: writes per second, the ratio to "users row", and the time per write
(1 / throughput).

Then what the read side pays for each way of knowing the count of the busy person's 100,000
tasks (the list sends it as X-Total-Count with every page): the sum of the counter slots, the
stored count on the users row, and a count at read time, beside the first page of 20 itself.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import LiteralString

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.support import add_postgres_url_argument, fresh_database  # noqa: E402
from migrations import alembic_config, migration_engine  # noqa: E402
from shared.db import sync_database_url  # noqa: E402

BUSY_PERSON = "busy"
PEOPLE = 1_000
TASKS_EACH = 100

# {low} and {high}: the id range of the case's seeded tasks (the busy person's, or the others'),
# which hold no one else's: a pick walks the primary key from a random id.
PICK = "SELECT min(id) FROM tasks WHERE id >= :r AND id <= {high}"
# Each write as the endpoints send it, with pgbench's variables; {who} names the person (one or
# many), PICK the task a delete or toggle changes.
WRITES = {
    "insert": (
        "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at,"
        " version) VALUES ({who}, 'a new task', NULL, false, now(), now(), 1) RETURNING id;"
    ),
    "delete": f"DELETE FROM tasks WHERE id = ({PICK});",
    "toggle": (
        "UPDATE tasks SET completed = NOT completed, version = version + 1, updated_at = now()"
        f" WHERE id = ({PICK}) RETURNING version;"
    ),
}
PEOPLE_CASES = {
    "one": ("\\set r random({low}, {high})\n", f"'{BUSY_PERSON}'"),
    "many": (
        f"\\set p random(1, {PEOPLE})\n\\set r random({{low}}, {{high}})\n",
        "'person-' || :p::text",
    ),
}
MODES = {"autocommit": "{write}\n", "transaction": "BEGIN;\n{write}\nCOMMIT;\n"}


def _users_row_design(url: str) -> None:
    """Migration 0002's design (the counts on the `users` row, its trigger function), put back by
    migration 0004's own downgrade rather than by a copy of it."""
    from alembic import command

    engine = migration_engine(sync_database_url(url))
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0003")
    finally:
        engine.dispose()


def _without_count_trigger(url: str) -> None:
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute("DROP TRIGGER tasks_keep_user_counts ON tasks")


# How each variant's copy is changed from the migrated schema ("as is": not at all).
VARIANTS: dict[str, Callable[[str], None] | None] = {
    "as is": None,
    "users row": _users_row_design,
    "no count trigger": _without_count_trigger,
}
BASELINE = "users row"

READS: dict[str, tuple[str, LiteralString]] = {
    "first page of 20 (the list's own read)": (
        "as is",
        "SELECT id, title, completed FROM tasks WHERE user_id = %s"
        " ORDER BY created_at DESC, id DESC LIMIT 20",
    ),
    "sum of counter slots (as is)": (
        "as is",
        "SELECT coalesce(sum(task_count), 0)::bigint FROM user_task_counts WHERE user_id = %s",
    ),
    "stored count on the users row (0002)": (
        "users row",
        "SELECT task_count FROM users WHERE id = %s",
    ),
    "count at read time, all": (
        "no count trigger",
        "SELECT count(*) FROM tasks WHERE user_id = %s",
    ),
}


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _seed(url: str, busy_tasks: int) -> dict[str, tuple[int, int]]:
    """Seeds the people and their tasks; the id range of each case's tasks."""
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, created_at) SELECT 'person-' || n, now()"
            " FROM generate_series(1, %s) AS n",
            (PEOPLE,),
        )
        connection.execute("INSERT INTO users (id, created_at) VALUES (%s, now())", (BUSY_PERSON,))
        # The trigger's 100,000 updates of one counter slot in one transaction would each walk
        # the row's growing chain of versions: the counts are set once, after the tasks.
        connection.execute("ALTER TABLE tasks DISABLE TRIGGER tasks_keep_user_counts")
        # Titles and descriptions that vary, so the trigram indexes hold what a real list gives.
        connection.execute(
            """INSERT INTO tasks (user_id, title, description, completed, created_at,
                                  updated_at, version)
               SELECT 'person-' || p, 'task ' || n || ' of person ' || p,
                      'notes ' || md5(p::text || '-' || n), n %% 3 = 0,
                      now() - n * interval '1 minute', now() - n * interval '1 minute', 1
                 FROM generate_series(1, %s) AS p, generate_series(1, %s) AS n""",
            (PEOPLE, TASKS_EACH),
        )
        connection.execute(
            """INSERT INTO tasks (user_id, title, description, completed, created_at,
                                  updated_at, version)
               SELECT %s, 'task ' || n, 'notes ' || md5(n::text), n %% 3 = 0,
                      now() - n * interval '1 second', now() - n * interval '1 second', 1
                 FROM generate_series(1, %s) AS n""",
            (BUSY_PERSON, busy_tasks),
        )
        connection.execute(
            """INSERT INTO user_task_counts (user_id, slot, task_count, completed_count)
               SELECT user_id, 0, count(*), count(*) FILTER (WHERE completed)
                 FROM tasks GROUP BY user_id"""
        )
        connection.execute("ALTER TABLE tasks ENABLE TRIGGER tasks_keep_user_counts")
        connection.execute("VACUUM ANALYZE")
        ranges = {}
        ranges_of: tuple[tuple[str, LiteralString], ...] = (
            ("one", "SELECT min(id), max(id) FROM tasks WHERE user_id = %s"),
            ("many", "SELECT min(id), max(id) FROM tasks WHERE user_id <> %s"),
        )
        for people, statement in ranges_of:
            low, high = connection.execute(statement, (BUSY_PERSON,)).fetchone() or (0, 0)
            ranges[people] = (low, high)
        return ranges


@contextmanager
def _copies(admin_url: str, template: str) -> Iterator[dict[str, str]]:
    """One database per variant, copied from the seeded one and changed as the variant says."""
    admin = _libpq_url(admin_url)
    template_name = make_url(template).database
    if not template_name:
        raise SystemExit(f"{template} names no database to copy")
    names = {variant: f"tasks_bench_insert_{uuid.uuid4().hex[:8]}" for variant in VARIANTS}
    try:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in names.values():
                connection.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template_name)
                    )
                )
        urls = {
            variant: make_url(template).set(database=name).render_as_string(hide_password=False)
            for variant, name in names.items()
        }
        for variant, url in urls.items():
            if change := VARIANTS[variant]:
                change(url)
                with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
                    connection.execute("VACUUM ANALYZE")
        yield urls
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in names.values():
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _script(folder: Path, people: str, write: str, mode: str, id_range: tuple[int, int]) -> Path:
    prelude, who = PEOPLE_CASES[people]
    low, high = id_range
    statement = WRITES[write].format(who=who, high=high)
    path = folder / f"{people}-{write}-{mode}.sql"
    path.write_text(prelude.format(low=low, high=high) + MODES[mode].format(write=statement))
    return path


def _vacuum_counts(url: str) -> None:
    """What autovacuum would do between runs (the tests' server runs without it): the rows the
    count trigger updates on every write otherwise drag chains of dead versions from run to run."""
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM users")
        if connection.execute("SELECT to_regclass('user_task_counts')").fetchone() != (None,):
            connection.execute("VACUUM user_task_counts")


def _pgbench(url: str, script: Path, clients: int, seconds: int) -> float:
    """Writes per second (pgbench's tps: one write per transaction of the script)."""
    completed = subprocess.run(
        [
            "pgbench",
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(clients, 2)}",
            f"--time={seconds}",
            f"--file={script}",
            _libpq_url(url),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # A statement that fails aborts its client, and pgbench then exits with an error.
    if completed.returncode != 0 or "number of failed transactions: 0 " not in completed.stdout:
        raise SystemExit(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
    found = re.search(r"tps = ([0-9.]+)", completed.stdout)
    if found is None:
        raise SystemExit(f"no tps in pgbench's output:\n{completed.stdout}")
    return float(found.group(1))


def _check_counts(urls: dict[str, str]) -> None:
    """After the runs, each variant's stored counts must still equal a real count."""
    checks: dict[str, LiteralString] = {
        "as is": "SELECT user_id, sum(task_count), sum(completed_count) FROM user_task_counts"
        " GROUP BY user_id HAVING sum(task_count) <> 0 OR sum(completed_count) <> 0",
        "users row": "SELECT id, task_count, completed_count FROM users"
        " WHERE task_count <> 0 OR completed_count <> 0",
    }
    counted: LiteralString = (
        "SELECT user_id, count(*), count(*) FILTER (WHERE completed) FROM tasks GROUP BY user_id"
    )
    for variant, stored in checks.items():
        with psycopg.connect(_libpq_url(urls[variant]), autocommit=True) as connection:
            kept = {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(stored)}
            real = {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(counted)}
        if kept != real:
            raise SystemExit(f"{variant}: the stored counts differ from a real count")


def _read_costs(urls: dict[str, str], repeats: int) -> dict[str, tuple[float, float]]:
    """Median and p99 milliseconds of each way of reading the busy person's count."""
    costs = {}
    for what, (variant, statement) in READS.items():
        with psycopg.connect(_libpq_url(urls[variant]), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE tasks")  # index-only scans need the visibility map
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                connection.execute(statement, (BUSY_PERSON,), prepare=True).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        costs[what] = (statistics.median(timings), timings[int(len(timings) * 0.99) - 1])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per pgbench run")
    parser.add_argument("--clients", type=int, default=8, help="connections writing at once")
    parser.add_argument("--busy-tasks", type=int, default=100_000, help="the busy person's list")
    parser.add_argument("--reads", type=int, default=200, help="repeats of each read")
    parser.add_argument("--modes", default=",".join(MODES), help="of: " + ", ".join(MODES))
    parser.add_argument("--ops", default=",".join(WRITES), help="of: " + ", ".join(WRITES))
    arguments = parser.parse_args()

    modes = arguments.modes.split(",")
    writes = arguments.ops.split(",")
    cases = [(p, w, m) for p in PEOPLE_CASES for w in writes for m in modes]
    tps: dict[tuple[str, str, str, str], list[float]] = {}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tasks-insert-")))
        template = stack.enter_context(fresh_database(arguments.postgres_url, "insert_seed"))
        ranges = _seed(template, arguments.busy_tasks)
        urls = stack.enter_context(_copies(arguments.postgres_url, template))
        variants = list(VARIANTS)
        for round_number in range(arguments.rounds + 1):
            for case_number, (people, write, mode) in enumerate(cases):
                script = _script(folder, people, write, mode, ranges[people])
                shift = (round_number + case_number) % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    _vacuum_counts(urls[variant])
                    seconds = 1 if round_number == 0 else arguments.duration
                    rate = _pgbench(urls[variant], script, arguments.clients, seconds)
                    if round_number > 0:  # round 0 warms every database up, uncounted
                        tps.setdefault((people, write, mode, variant), []).append(rate)
            print(f"round {round_number} done", file=sys.stderr)
        _check_counts(urls)
        reads = _read_costs(urls, arguments.reads)
    _report(tps, cases, reads, arguments)


def _report(tps, cases, reads, arguments) -> None:
    print(
        f"\n{arguments.rounds} rounds x {arguments.duration} s per pgbench run, "
        f"{arguments.clients} connections writing at once; medians over the rounds. "
        f"one = every write for the person with {arguments.busy_tasks:,} tasks; many = each "
        f"for one of {PEOPLE:,} people at random. us/write = 1e6 / writes per second. "
        "The stored counts equalled a real count after the runs."
    )
    for people, write, mode in cases:
        print(f"\n{'one person' if people == 'one' else 'many people'}, {write}, {mode}:")
        print(f"  {'variant':<18} {'writes/s':>10} {'vs ' + BASELINE:>13} {'us/write':>9}")
        baseline = statistics.median(tps[people, write, mode, BASELINE])
        for variant in VARIANTS:
            rate = statistics.median(tps[people, write, mode, variant])
            print(f"  {variant:<18} {rate:>10,.0f} {rate / baseline:>13.2f} {1e6 / rate:>9.0f}")
    print(f"\nreading the count of the busy person's {arguments.busy_tasks:,} tasks, ms:")
    print(f"  {'read':<40} {'median':>7} {'p99':>7}")
    for what, (median, p99) in reads.items():
        print(f"  {what:<40} {median:>7.3f} {p99:>7.3f}")


if __name__ == "__main__":
    main()
