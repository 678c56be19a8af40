"""What one insert pays for the per-user count trigger and the two trigram indexes.

    uv run bench/insert_cost.py [--rounds 5] [--duration 5] [--clients 8]

Needs the PostgreSQL server of the tests (--postgres-url) and pgbench (Debian's
postgresql-client or postgresql-contrib package).

One seeded database (this service's migrated schema; a busy person with 100,000 tasks and 1,000
people with 100 each, vacuumed), copied once per variant: the schema as the migrations leave it
("as is"), without migration 0002's count trigger, without migration 0003's two trigram GIN
indexes, without both, and the candidates for keeping an exact count at a lower cost per write
(a statement-level trigger; per-connection counter slots instead of the one `users` row; the GIN
indexes with `fastupdate` off, to show what the default buys). The variants change only these
bench databases, never the migrations.

pgbench then sends the INSERT the create endpoint sends (one row, `RETURNING id`, prepared), by
`--clients` connections at once, for each case: one person (every insert for the busy person, so
every insert updates the same `users` row) or many people (each insert for one of the 1,000 at
random), and each insert either as one autocommit statement or inside BEGIN ... COMMIT. Each
round runs every variant once per case, in an order that rotates from round to round, after an
uncounted warm-up round; before each run the variant's `users` table is vacuumed, as autovacuum
would. The script prints the medians of the rounds: inserts per second, the ratio to "as is",
and the time per insert (1 / throughput) with its difference from the schema that has neither.

Then what the read side pays for each way of knowing the count of the busy person's 100,000
tasks (the list sends it as X-Total-Count with every page): the stored count, a count at read
time (an index-only scan of the person's index entries), and the sum of the counter slots, beside
the first page of 20 itself.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import LiteralString

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.support import add_postgres_url_argument, fresh_database  # noqa: E402

BUSY_PERSON = "busy"
PEOPLE = 1_000
TASKS_EACH = 100
# The counter slots' number. Two connections whose backend pids agree modulo SLOTS share a row
# (and wait for each other, as every connection does on the one users row).
SLOTS = 16

# The INSERT create_task sends (SQLModel's flush of a new Task), with pgbench's variables.
INSERT = (
    "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at, version)"
    " VALUES ({who}, 'a new task', NULL, false, now(), now(), 1) RETURNING id;"
)
PEOPLE_CASES = {
    "one": ("", f"'{BUSY_PERSON}'"),
    "many": (f"\\set p random(1, {PEOPLE})\n", "'person-' || :p::text"),
}
MODES = {"autocommit": "{insert}\n", "transaction": "BEGIN;\n{insert}\nCOMMIT;\n"}

DROP_TRIGGER = "DROP TRIGGER tasks_keep_user_counts ON tasks;"
DROP_TRIGRAMS = "DROP INDEX ix_tasks_title_trigrams; DROP INDEX ix_tasks_description_trigrams;"
# Only the INSERT half: what an insert pays is the question (a delete or an update of
# `completed` would need its own statement trigger, with its own transition table).
STATEMENT_TRIGGER = """
CREATE FUNCTION tasks_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET task_count = task_count + added.tasks,
                     completed_count = completed_count + added.completed
      FROM (SELECT user_id, count(*) AS tasks, count(*) FILTER (WHERE completed) AS completed
              FROM inserted GROUP BY user_id) AS added
     WHERE users.id = added.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_count_inserted AFTER INSERT ON tasks REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_inserted();
"""
# Each connection adds to its own row of the person's counts (its backend's slot), so writers
# on different connections never wait for one another's row lock; the count is the sum of at
# most SLOTS rows, read from their primary key.
COUNTER_SLOTS = sql.SQL("""
CREATE TABLE user_count_slots (
    user_id varchar(255) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slot integer NOT NULL,
    task_count bigint NOT NULL,
    completed_count bigint NOT NULL,
    PRIMARY KEY (user_id, slot)
);
INSERT INTO user_count_slots SELECT id, 0, task_count, completed_count FROM users;
CREATE FUNCTION tasks_count_in_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_count_slots AS slots VALUES
        (NEW.user_id, pg_backend_pid() % {slots}, 1, NEW.completed::int)
    ON CONFLICT (user_id, slot) DO UPDATE
        SET task_count = slots.task_count + 1,
            completed_count = slots.completed_count + EXCLUDED.completed_count;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_count_in_slot AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_count_in_slot();
""").format(slots=sql.Literal(SLOTS))
FASTUPDATE_OFF = (
    "ALTER INDEX ix_tasks_title_trigrams SET (fastupdate = off);"
    " ALTER INDEX ix_tasks_description_trigrams SET (fastupdate = off);"
)
# What each variant changes in its copy of the database (None: nothing).
VARIANTS: dict[str, sql.SQL | sql.Composed | None] = {
    "as is": None,
    "no count trigger": sql.SQL(DROP_TRIGGER),
    "no trigram indexes": sql.SQL(DROP_TRIGRAMS),
    "neither": sql.SQL(DROP_TRIGGER + DROP_TRIGRAMS),
    "statement-level trigger": sql.SQL(DROP_TRIGGER + STATEMENT_TRIGGER),
    "counter slots": sql.SQL(DROP_TRIGGER) + COUNTER_SLOTS,
    "GIN fastupdate off": sql.SQL(FASTUPDATE_OFF),
}

READS: dict[str, tuple[str, LiteralString]] = {
    "first page of 20 (the list's own read)": (
        "as is",
        "SELECT id, title, completed FROM tasks WHERE user_id = %s"
        " ORDER BY created_at DESC, id DESC LIMIT 20",
    ),
    "stored count (the trigger's users row)": (
        "as is",
        "SELECT task_count FROM users WHERE id = %s",
    ),
    "count at read time, all": (
        "no count trigger",
        "SELECT count(*) FROM tasks WHERE user_id = %s",
    ),
    "count at read time, pending": (
        "no count trigger",
        "SELECT count(*) FROM tasks WHERE user_id = %s AND NOT completed",
    ),
    "sum of counter slots": (
        "counter slots",
        "SELECT sum(task_count) FROM user_count_slots WHERE user_id = %s",
    ),
}


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _seed(url: str, busy_tasks: int) -> None:
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, created_at) SELECT 'person-' || n, now()"
            " FROM generate_series(1, %s) AS n",
            (PEOPLE,),
        )
        connection.execute("INSERT INTO users (id, created_at) VALUES (%s, now())", (BUSY_PERSON,))
        # The trigger's 100,000 updates of one users row in one transaction would each walk the
        # row's growing chain of versions: the counts are set once, after the tasks.
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
            """UPDATE users SET task_count = counts.tasks, completed_count = counts.completed
                 FROM (SELECT user_id, count(*) AS tasks, count(*) FILTER (WHERE completed)
                         AS completed FROM tasks GROUP BY user_id) AS counts
                WHERE users.id = counts.user_id"""
        )
        connection.execute("ALTER TABLE tasks ENABLE TRIGGER tasks_keep_user_counts")
        connection.execute("VACUUM ANALYZE")


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
            if (change := VARIANTS[variant]) is not None:
                with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
                    connection.execute(change)
                    connection.execute("VACUUM ANALYZE")
        yield urls
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in names.values():
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _script(folder: Path, people: str, mode: str) -> Path:
    prelude, who = PEOPLE_CASES[people]
    path = folder / f"{people}-{mode}.sql"
    path.write_text(prelude + MODES[mode].format(insert=INSERT.format(who=who)))
    return path


def _vacuum_users(url: str) -> None:
    """What autovacuum would do between runs (the tests' server runs without it): the busy
    person's `users` row, updated by every insert that the count trigger counts, otherwise
    drags a chain of dead versions from run to run."""
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM users")


def _pgbench(url: str, script: Path, clients: int, seconds: int) -> float:
    """Inserts per second (pgbench's tps: one insert per transaction of the script)."""
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per pgbench run")
    parser.add_argument("--clients", type=int, default=8, help="connections inserting at once")
    parser.add_argument("--busy-tasks", type=int, default=100_000, help="the busy person's list")
    parser.add_argument("--reads", type=int, default=200, help="repeats of each read")
    arguments = parser.parse_args()

    cases = [(people, mode) for people in PEOPLE_CASES for mode in MODES]
    tps: dict[tuple[str, str, str], list[float]] = {}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tasks-insert-")))
        template = stack.enter_context(fresh_database(arguments.postgres_url, "insert_seed"))
        _seed(template, arguments.busy_tasks)
        urls = stack.enter_context(_copies(arguments.postgres_url, template))
        variants = list(VARIANTS)
        for round_number in range(arguments.rounds + 1):
            for case_number, (people, mode) in enumerate(cases):
                script = _script(folder, people, mode)
                shift = (round_number + case_number) % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    _vacuum_users(urls[variant])
                    seconds = 1 if round_number == 0 else arguments.duration
                    rate = _pgbench(urls[variant], script, arguments.clients, seconds)
                    if round_number > 0:  # round 0 warms every database up, uncounted
                        tps.setdefault((people, mode, variant), []).append(rate)
            print(f"round {round_number} done", file=sys.stderr)
        reads = _read_costs(urls, arguments.reads)
    _report(tps, cases, reads, arguments)


def _report(tps, cases, reads, arguments) -> None:
    print(
        f"\n{arguments.rounds} rounds x {arguments.duration} s per pgbench run, "
        f"{arguments.clients} connections inserting at once; medians over the rounds. "
        f"one = every insert for the person with {arguments.busy_tasks:,} tasks; many = each "
        f"for one of {PEOPLE:,} people at random. us/insert = 1e6 / inserts per second; "
        "extra = its difference from 'neither'."
    )
    for people, mode in cases:
        print(f"\n{'one person' if people == 'one' else 'many people'}, {mode}:")
        header = (
            f"  {'variant':<24} {'inserts/s':>10} {'vs as is':>9} {'us/insert':>10} {'extra':>7}"
        )
        print(header)
        bare = statistics.median(tps[people, mode, "neither"])
        as_is = statistics.median(tps[people, mode, "as is"])
        for variant in VARIANTS:
            rate = statistics.median(tps[people, mode, variant])
            print(
                f"  {variant:<24} {rate:>10,.0f} {rate / as_is:>9.2f} {1e6 / rate:>10.0f} "
                f"{1e6 / rate - 1e6 / bare:>+7.0f}"
            )
    print(f"\nreading the count of the busy person's {arguments.busy_tasks:,} tasks, ms:")
    print(f"  {'read':<40} {'median':>7} {'p99':>7}")
    for what, (median, p99) in reads.items():
        print(f"  {what:<40} {median:>7.3f} {p99:>7.3f}")


if __name__ == "__main__":
    main()
