"""Fault injection on a real PostgreSQL: a server of the tests' own, stopped, started and
restarted for real, so the shared server the rest of the suite uses is never disturbed.

The server is made with the PostgreSQL binaries on this machine (initdb, pg_ctl). When they are
missing these tests skip, unless TASKS_TEST_REQUIRE_POSTGRES=1 (set by CI) makes that a failure.
"""

import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from migrations import upgrade_database
from shared.db import sync_database_url
from shared.tokens import mint_token
from tests.conftest import REQUIRE_POSTGRES, TEST_SECRET, settings_for_test
from tests.service import Service, free_port
from tests.support import log_events

SERVER_USER = "postgres"  # PostgreSQL refuses to run as root; this account owns the server


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _runuser() -> str:
    # An administrator's command: often outside a bare PATH (CI's is /usr/local/bin:/usr/bin:/bin).
    found = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail("running as root, and runuser (util-linux) is missing to run PostgreSQL")
    return found


@dataclass
class PostgresServer:
    """A PostgreSQL server in a folder of its own, on a port of its own."""

    binaries: Path
    data: Path
    port: int

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self.binaries / program), *arguments]
        if os.geteuid() == 0:
            command = [_runuser(), "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.data} -c fsync=on"
        )
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "server.log"),
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect every client and shut down cleanly; `immediate`: like a crash."""
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", mode)

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin_connection(self, database: str = "postgres") -> psycopg.Connection:
        """The superuser through the server's Unix socket, for the tests' own set-up."""
        return psycopg.connect(
            host=str(self.data), port=self.port, user="postgres", dbname=database, autocommit=True
        )


@contextmanager
def _private_server(prefix: str) -> Iterator[PostgresServer]:
    """A new server in a temporary folder, initialised and started; stopped and removed
    afterwards whatever happened."""
    binaries = _binaries()
    if binaries is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
        if REQUIRE_POSTGRES:
            pytest.fail(f"TASKS_TEST_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
        shutil.chown(data, SERVER_USER)
    server = PostgresServer(binaries, data, free_port())
    try:
        server._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        yield server
    finally:
        if server.is_running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _private_server("tasks-faults-") as server:
        server.start()
        yield server


@dataclass(frozen=True)
class TlsDatabase:
    """A database on the TLS server, owned by a role that is nothing more than its owner."""

    server: PostgresServer
    name: str
    role: str
    password: str

    def url(self, *, password: str | None = None, sslmode: str = "require") -> str:
        """Neon's URL shape: TLS required, and SCRAM's channel binding to the TLS session."""
        return (
            f"postgresql://{self.role}:{password or self.password}@127.0.0.1:{self.server.port}"
            f"/{self.name}?sslmode={sslmode}&channel_binding=require"
        )


def _write_self_signed_certificate(data: Path) -> None:
    """server.crt and server.key (PostgreSQL's default names) in the data folder, for
    127.0.0.1; `sslmode=require` encrypts without checking who signed it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    files = {
        data / "server.crt": certificate.public_bytes(serialization.Encoding.PEM),
        data / "server.key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    for path, content in files.items():
        path.write_bytes(content)
        path.chmod(0o600)  # the server refuses a key others can read
        if os.geteuid() == 0:
            shutil.chown(path, SERVER_USER)


@pytest.fixture(scope="session")
def tls_postgres_server() -> Iterator[PostgresServer]:
    """A server that takes TCP connections only over TLS and only with SCRAM-SHA-256, as
    Neon does; the superuser may connect through the Unix socket alone (the tests' set-up)."""
    with _private_server("tasks-tls-") as server:
        _write_self_signed_certificate(server.data)
        (server.data / "pg_hba.conf").write_text(
            "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
        )
        with (server.data / "postgresql.conf").open("a") as configuration:
            configuration.write("ssl = on\npassword_encryption = 'scram-sha-256'\n")
        server.start()
        yield server


@pytest.fixture
def tls_database(tls_postgres_server: PostgresServer) -> Iterator[TlsDatabase]:
    """A fresh database owned by a fresh role with a random password, no superuser, no
    CREATEDB, no CREATEROLE; both dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    database = TlsDatabase(
        tls_postgres_server, f"db_{suffix}", f"app_{suffix}", secrets.token_urlsafe(24)
    )
    role, name = sql.Identifier(database.role), sql.Identifier(database.name)
    with tls_postgres_server.admin_connection() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(database.password))
        )
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, role))
    yield database
    with tls_postgres_server.admin_connection() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


@pytest.fixture
def fault_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, migrated database on the private server (its URL); the server is running
    before and after each test, whatever the test did to it."""
    if not postgres_server.is_running():
        postgres_server.start()
    name = f"faults_{uuid.uuid4().hex[:10]}"
    # No pool: the test may restart the server, which would sever a pooled connection.
    admin = create_engine(
        sync_database_url(postgres_server.url()), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.url(name)
    upgrade_database(url)
    yield url
    if not postgres_server.is_running():
        postgres_server.start()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def bearer(user_id: str) -> dict[str, str]:
    settings = settings_for_test(better_auth_secret=TEST_SECRET)
    return {"Authorization": f"Bearer {mint_token(settings, user_id)}"}


def logged(service: Service, event: str) -> list[dict]:
    """The service's log lines (JSON, as in production) for one event."""
    return [line for line in log_events(service.logs()) if line["event"] == event]
