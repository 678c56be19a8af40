"""Benchmark: what server-side prepared statements (`DB_PREPARED_STATEMENTS`) buy, directly and
through PgBouncer.

    uv run bench/pooler_prepared.py [--rounds 5] [--duration 5] [--connections 8]

Needs the PostgreSQL server of the tests (--postgres-url), wrk (Debian's package, installed when
run as root) and PgBouncer (Debian's `pgbouncer`, 1.18 here).

PgBouncer 1.18 cannot track prepared statements, so through it in transaction mode they are not
safe at all (tests/topology/pgbouncer/ shows the corruption); what can be measured honestly is
their worth where they are safe:

- direct: the service straight to PostgreSQL (`DB_POOLER=none`), prepared statements on / off;
- session pooler: through PgBouncer in session mode (each client keeps its server connection,
  so prepared statements are safe) with the transaction-pooler settings (`DB_POOLER=transaction`:
  no startup options, the timeout per transaction, reads in a transaction), on / off, which is
  what a PgBouncer 1.21+ in transaction mode with `max_prepared_statements` would run;
- transaction pooler: PgBouncer 1.18 in transaction mode with the default settings (off), the
  configuration this service picks behind such a pooler.

One fresh database with 50 people of 20 tasks each; one service (one worker) per case, all
running at once; wrk asks for one task (`get`) and for the first page of a list (`list`) in
rounds, alternating which side of each pair goes first; every answer must be a 2xx. Medians of
the rounds, and the ratio on / off from the same run.
"""

import argparse
import secrets
import statistics
import sys
import tempfile
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import Engine, create_engine, text  # noqa: E402

from bench.support import (  # noqa: E402
    WrkRun,
    add_postgres_url_argument,
    fresh_database,
    our_service,
    require_wrk,
    run_wrk,
    seed_people,
    settings_for_bench,
)
from shared.db import sync_database_url  # noqa: E402
from shared.tokens import mint_token  # noqa: E402
from tests.topology.pgbouncer.server import running_pgbouncer  # noqa: E402

SECRET = secrets.token_urlsafe(48)
PEOPLE = 50
TASKS_PER_PERSON = 20
WORKLOADS = ["get", "list"]
# (case, side) -> how the service connects; a pair's two sides differ only in prepared statements.
CASES = {
    ("direct", "on"): ("direct", {"DB_POOLER": "none", "DB_PREPARED_STATEMENTS": "true"}),
    ("direct", "off"): ("direct", {"DB_POOLER": "none", "DB_PREPARED_STATEMENTS": "false"}),
    ("session pooler", "on"): (
        "session",
        {"DB_POOLER": "transaction", "DB_PREPARED_STATEMENTS": "true"},
    ),
    ("session pooler", "off"): (
        "session",
        {"DB_POOLER": "transaction", "DB_PREPARED_STATEMENTS": "false"},
    ),
    ("transaction pooler", "off"): ("transaction", {"DB_POOLER": "transaction"}),
}


def _seed(engine: Engine) -> dict[str, list[int]]:
    with engine.begin() as connection:
        tasks = seed_people(
            connection, [f"person-{n:03d}" for n in range(PEOPLE)], TASKS_PER_PERSON
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return tasks


def _data_file(folder: Path, tasks: dict[str, list[int]]) -> Path:
    """The Lua table workload.lua reads: people with their tokens and tasks."""
    settings = settings_for_bench(better_auth_secret=SECRET)
    lines = ["return {", "users = {"]
    for user_id, ids in tasks.items():
        token = mint_token(settings, user_id, lifetime=timedelta(hours=6))
        listed = ", ".join(map(str, ids))
        lines.append(f'{{id = "{user_id}", auth = "Bearer {token}", tasks = {{{listed}}}}},')
    lines += ["},", "deletable = {},", "}"]
    path = folder / "people.lua"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    arguments = parser.parse_args()
    require_wrk()

    runs: dict[tuple[str, str, str], list[WrkRun]] = {}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tasks-bench-")))
        url = stack.enter_context(fresh_database(arguments.postgres_url, "pooler"))
        engine = create_engine(sync_database_url(url))
        stack.callback(engine.dispose)
        data = _data_file(folder, _seed(engine))
        # Pool sizes as large as the service's pool: no client waits for a server connection.
        urls = {
            "direct": url,
            "session": stack.enter_context(
                running_pgbouncer(arguments.postgres_url, pool_mode="session")
            ).url(url),
            "transaction": stack.enter_context(
                running_pgbouncer(arguments.postgres_url, pool_mode="transaction")
            ).url(url),
        }
        bases = {}
        for (case, side), (route, settings) in CASES.items():
            base, _ = stack.enter_context(
                our_service(
                    urls[route],
                    SECRET,
                    overrides=settings,
                    log_path=folder / f"{case}-{side}.log".replace(" ", "-"),
                )
            )
            bases[case, side] = base
        pairs = list(dict.fromkeys(case for case, _ in CASES))
        for round_number in range(arguments.rounds + 1):  # round 0 warms up, not counted
            for workload in WORKLOADS:
                for case in pairs:
                    sides = [side for c, side in CASES if c == case]
                    if round_number % 2:
                        sides.reverse()
                    for side in sides:
                        run = run_wrk(
                            bases[case, side],
                            f"{case}/{side}",
                            workload,
                            arguments.connections,
                            1 if round_number == 0 else arguments.duration,
                            data,
                        )
                        if round_number:
                            runs.setdefault((case, side, workload), []).append(run)
            print(f"round {round_number} done", file=sys.stderr)

    _report(runs, pairs, arguments)


def _report(runs, pairs, arguments) -> None:
    print(
        f"\n{arguments.rounds} rounds x {arguments.duration} s per run, wrk -t2 "
        f"-c{arguments.connections}, one worker per service; medians over the rounds; "
        "ratio = prepared statements on / off (above 1: on serves more)."
    )
    header = (
        f"{'case':<19} {'workload':<8} | {'on rps':>7} {'p50':>6} | "
        f"{'off rps':>7} {'p50':>6} | {'ratio':>5} | failed"
    )
    print(header)
    print("-" * len(header))
    failed = 0
    for case in pairs:
        for workload in WORKLOADS:
            figures = {}
            for side in ("on", "off"):
                mine = runs.get((case, side, workload))
                if mine:
                    figures[side] = (
                        statistics.median(r.rps for r in mine),
                        statistics.median(r.p50_ms for r in mine),
                        sum(r.failures for r in mine),
                    )
                    failed += figures[side][2]
            on = figures.get("on")
            off = figures["off"]
            print(
                f"{case:<19} {workload:<8} | "
                + (f"{on[0]:>7.0f} {on[1]:>6.2f} | " if on else f"{'-':>7} {'-':>6} | ")
                + f"{off[0]:>7.0f} {off[1]:>6.2f} | "
                + (f"{on[0] / off[0]:>5.2f}" if on else f"{'-':>5}")
                + f" | {(on[2] if on else 0)}/{off[2]}"
            )
    if failed:
        raise SystemExit("some requests failed: these figures are void")


if __name__ == "__main__":
    main()
