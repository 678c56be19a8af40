"""Benchmark: what uvicorn's options cost per request, to keep in main.py `_serve` only those
that help or are needed.

    uv run bench/uvicorn_options.py [--rounds 5] [--duration 3] [--connections 32]

Each variant is uvicorn (0.54, one worker, as `_serve` passes its options) serving one of two
apps on loopback, measured with wrk (`GET`, keep-alive):

- bare: a minimal ASGI app answering 200 with a small JSON body, so that uvicorn's own cost is
  most of each request;
- health: the Tasks API's /health (the whole middleware stack, no database), so that the figure
  is seen against the service's own cost.

All variants are started first and stay up; rounds then alternate which is measured first.
Variants, each a change from `_serve`'s options as they stood before this measurement:
`before` (loop/http "auto", proxy headers on, Date on), `explicit` (loop uvloop, http
httptools), `no-date` (date_header off), `no-proxy` (proxy_headers off). The figure is the
median of the rounds' requests per second, and each variant's ratio to `before` in the same
run. Needs wrk (Debian's package), and PostgreSQL only for the app's settings (the health route
touches no database).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import add_postgres_url_argument, free_port, require_wrk, running
from shared.config import Settings

BEFORE = {
    "log_config": None,
    "access_log": False,
    "proxy_headers": True,
    "server_header": False,
}
VARIANTS = {
    "before": {},
    "explicit": {"loop": "uvloop", "http": "httptools"},
    "no-date": {"date_header": False},
    "no-proxy": {"proxy_headers": False},
}
BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
"""


def _server_command(app: str, options: dict, port: int) -> list[str]:
    call = {**BEFORE, **options, "host": "127.0.0.1", "port": port}
    if app == "bare":
        script = f"{BARE_APP}\nimport uvicorn\nuvicorn.run(app, **{call!r})"
    else:
        script = f"import uvicorn\nuvicorn.run('main:create_served_app', factory=True, **{call!r})"
    return [sys.executable, "-c", script]


def _requests_per_second(base: str, path: str, args) -> float:
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", f"{base}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in completed.stdout or "Socket errors" in completed.stdout:
        raise SystemExit(f"wrk saw failures:\n{completed.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", completed.stdout)
    if found is None:
        raise SystemExit(f"no figure in wrk's output:\n{completed.stdout}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--apps", nargs="+", choices=["bare", "health"], default=["bare", "health"])
    add_postgres_url_argument(parser)
    args = parser.parse_args()
    require_wrk()
    environment = {
        **{k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields},
        "APP_ENV": "production",
        "DATABASE_URL": args.postgres_url,
        "BETTER_AUTH_SECRET": "bench-secret-of-more-than-thirty-two-bytes-0123456789",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": "WARNING",
    }
    for app in args.apps:
        path = "/" if app == "bare" else "/health"
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        with ExitStack() as stack:
            # All variants up at once, idle but one, so that each round sees the same machine.
            bases = {}
            for name, options in VARIANTS.items():
                port = free_port()
                bases[name], _process = stack.enter_context(
                    running(
                        _server_command(app, options, port),
                        ready_url=path,
                        port=port,
                        what=f"uvicorn ({name})",
                        environment=environment,
                    )
                )
                _requests_per_second(bases[name], path, args)  # warm-up, not counted
            names = list(VARIANTS)
            for round_number in range(args.rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    rates[name].append(_requests_per_second(bases[name], path, args))
        before = statistics.median(rates["before"])
        print(f"{app}: median requests/s of {args.rounds} rounds, c={args.connections}")
        for name, values in rates.items():
            median = statistics.median(values)
            spread = f"{min(values):.0f}-{max(values):.0f}"
            print(f"  {name:<10} {median:>9.0f}  {median / before:>5.3f}  ({spread})")


if __name__ == "__main__":
    main()
