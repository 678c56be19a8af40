"""A real PgBouncer (Debian's, 1.18) of the tests' own, in front of the suite's PostgreSQL.

Started on a free loopback port, in a private folder, with every database of the server
reachable by its own name (`* = host=... port=...`), and stopped whatever happens. PgBouncer
refuses to run as root: as root it runs as the `postgres` account, like the faults' server, or,
in front of a server reached by its Unix socket (the embedded one), as the account that owns the
socket's folder, the one account sure to reach it.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.programs import required_program
from tests.service import free_port

SERVER_USER = "postgres"  # PgBouncer refuses to run as root; this account runs it


@dataclass(frozen=True)
class PgBouncer:
    port: int
    folder: Path

    def url(self, direct_url: str) -> str:
        """`direct_url` (a database on the server behind it) as reached through this pooler."""
        url = make_url(direct_url)
        # A Unix socket's folder, given as `?host=`, would take precedence over the pooler's.
        query = {name: value for name, value in url.query.items() if name != "host"}
        url = url.set(host="127.0.0.1", port=self.port, query=query)
        return url.render_as_string(hide_password=False)

    def logs(self) -> str:
        return (self.folder / "pgbouncer.log").read_text(errors="replace")


def _runuser() -> str:
    found = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail("running as root, and runuser (util-linux) is missing to run PgBouncer")
    return found


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@contextmanager
def running_pgbouncer(
    server_url: str,
    *,
    pool_mode: str = "transaction",
    default_pool_size: int = 20,
    ignore_startup_parameters: str = "",
) -> Iterator[PgBouncer]:
    """PgBouncer in front of the PostgreSQL server of `server_url`, ready for connections."""
    program = required_program("pgbouncer", "pgbouncer")
    server = make_url(server_url)
    # The embedded server listens on a Unix socket only, named by the URL's `host=` query.
    socket_folder = server.query.get("host")
    server_host = socket_folder if isinstance(socket_folder, str) else server.host or "127.0.0.1"
    folder = Path(tempfile.mkdtemp(prefix="tasks-pgbouncer-"))
    port = free_port()
    # trust: the client is not asked for a password, but its user must be in the auth file,
    # whose password PgBouncer then gives the server if it asks for one.
    (folder / "userlist.txt").write_text(
        f"{_quoted(server.username or 'postgres')} {_quoted(server.password or '')}\n"
    )
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server_host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'userlist.txt'}\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        f"pidfile = {folder / 'pgbouncer.pid'}\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {default_pool_size}\n"
        "max_client_conn = 500\n"
        "max_db_connections = 0\n"
        f"ignore_startup_parameters = {ignore_startup_parameters}\n"
        # A cancelled statement must reach the server quickly; the tests' databases come and go.
        "server_login_retry = 1\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
    )
    command = [str(program), str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        user = Path(server_host).owner() if server_host.startswith("/") else SERVER_USER
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, user)
        command = [_runuser(), "-u", user, "--", *command]
    output = (folder / "stdout.log").open("w")
    process = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    output.close()
    bouncer = PgBouncer(port, folder)
    try:
        _wait_until_listening(process, bouncer)
        yield bouncer
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen, bouncer: PgBouncer) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            output = (bouncer.folder / "stdout.log").read_text(errors="replace")
            pytest.fail(f"pgbouncer exited with {process.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", bouncer.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("pgbouncer did not listen within 30 s")
            time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    # Its own session: the signal reaches runuser and PgBouncer (SIGTERM: immediate shutdown).
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
