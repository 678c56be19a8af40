"""Benchmark: how long the service takes to start, and what `import main` costs.

    uv run bench/startup.py [--postgres-url URL] [--runs 5] [--workers 1,2] [--compare PATH]

For each worker count it starts `main.py` under production settings against a fresh migrated
database (MIGRATE_ON_START=false, as production runs it) and measures the time from starting
the process to the first `/ready` 200, over several runs; and it times `import main` in fresh
interpreters. It prints medians (and the spread) and, from one `python -X importtime` run, the
packages whose import costs the most. `--compare` measures another checkout with this
environment alongside (e.g. the commit before a change, exported with `git archive`), run for
run in alternating order: on a shared machine the figures move with its load, so only figures
taken together compare.
"""

import argparse
import collections
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import httpx2  # noqa: E402

from bench.support import add_postgres_url_argument, fresh_database, our_service  # noqa: E402

SECRET = "bench-secret-of-more-than-thirty-two-bytes-0123456789"  # noqa: S105
IMPORT_MAIN = "import time; t = time.perf_counter(); import main; print(time.perf_counter() - t)"


def _import_seconds(project: Path) -> float:
    output = subprocess.run(
        [sys.executable, "-c", IMPORT_MAIN],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return float(output.strip().splitlines()[-1])


def _costliest_imports(project: Path, top: int) -> list[tuple[str, float]]:
    """Seconds of import per top-level package (each module's own time, summed)."""
    report = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import main"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stderr
    microseconds: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        microseconds[name.strip().split(".")[0]] += int(own)
    return [(package, own / 1e6) for package, own in microseconds.most_common(top)]


def _seconds_to_ready(
    database_url: str, workers: int, project: Path, timeout: float
) -> float | None:
    """From starting the process to the first /ready 200; None if not within `timeout`."""
    started = time.perf_counter()
    try:
        with our_service(database_url, SECRET, workers=workers, project=project) as service:
            base, process = service
            while time.perf_counter() - started < timeout and process.poll() is None:
                try:
                    if httpx2.get(f"{base}/ready", timeout=5).status_code == 200:
                        return time.perf_counter() - started
                except httpx2.TransportError:
                    pass
                time.sleep(0.05)
    except SystemExit:  # bench.support's word for "did not answer /health in time"
        pass
    return None


def _summary(values: list[float | None]) -> str:
    done = [value for value in values if value is not None]
    missed = len(values) - len(done)
    text = (
        f"median {statistics.median(done):.2f} s (min {min(done):.2f}, max {max(done):.2f})"
        if done
        else "never"
    )
    return text + (f", {missed} of {len(values)} runs not ready in time" if missed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.split("\n\n")[0])
    add_postgres_url_argument(parser)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout (e.g. `git archive` of an earlier commit) measured alongside, "
        "run for run in alternating order, so both see the same machine",
    )
    parser.add_argument("--top", type=int, default=12, help="packages listed (default 12)")
    parser.add_argument(
        "--ready-timeout", type=float, default=120, help="seconds a start may take (default 120)"
    )
    arguments = parser.parse_args()
    projects = {"this checkout": PROJECT_ROOT}
    if arguments.compare is not None:
        projects[str(arguments.compare)] = arguments.compare.resolve()
    worker_counts = [int(count) for count in arguments.workers.split(",")]

    def alternating(run: int) -> list[tuple[str, Path]]:
        order = list(projects.items())
        return order if run % 2 == 0 else order[::-1]

    imports: dict[str, list[float | None]] = {name: [] for name in projects}
    for run in range(arguments.runs):
        for name, project in alternating(run):
            imports[name].append(_import_seconds(project))
    for name, seconds in imports.items():
        print(f"{name}: import main: {_summary(seconds)} over {arguments.runs} runs")
    with fresh_database(arguments.postgres_url, "startup") as database_url:
        for workers in worker_counts:
            ready: dict[str, list[float | None]] = {name: [] for name in projects}
            for run in range(arguments.runs):
                for name, project in alternating(run):
                    ready[name].append(
                        _seconds_to_ready(database_url, workers, project, arguments.ready_timeout)
                    )
            for name, seconds in ready.items():
                print(f"{name}: start to ready, {workers} worker(s): {_summary(seconds)}")
    for name, project in projects.items():
        print(f"{name}: costliest imports (own time summed per package, one run):")
        for package, seconds in _costliest_imports(project, arguments.top):
            print(f"  {package:24} {seconds:.2f} s")


if __name__ == "__main__":
    main()
