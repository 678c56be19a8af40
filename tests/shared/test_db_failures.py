"""The one classification of database failures, checked against errors the real database
raises: each SQLSTATE class on the side of 503 or 500 that README's table says, and no bound
value in what is logged."""

from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from shared.db import SchemaNotReadyError, StatementError, sync_database_url
from shared.db_failures import (
    WITHHELD_MESSAGE,
    FailureKind,
    describe_database_failure,
)
from tests.service import free_port

SECRET_VALUE = "secret-value-7731"


@pytest.fixture
def postgres(postgres_server_url) -> Iterator[Engine]:
    engine = create_engine(sync_database_url(postgres_server_url), hide_parameters=True)
    yield engine
    engine.dispose()


def _failure_of(engine: Engine, failing: str, *, setup: tuple[str, ...] = (), **parameters):
    with engine.connect() as connection:
        for statement in setup:
            connection.execute(text(statement))
        with pytest.raises(DBAPIError) as raised:
            connection.execute(text(failing), parameters)
    failure = describe_database_failure(raised.value)
    assert failure is not None
    return failure


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("08006", FailureKind.UNAVAILABLE),  # connection failure
        ("28P01", FailureKind.UNAVAILABLE),  # invalid password
        ("53300", FailureKind.UNAVAILABLE),  # too many connections
        ("57P01", FailureKind.UNAVAILABLE),  # admin shutdown
        ("57P03", FailureKind.UNAVAILABLE),  # cannot connect now
        ("58030", FailureKind.UNAVAILABLE),  # I/O error
        ("57014", FailureKind.TIMEOUT),  # query canceled: statement_timeout
        ("55P03", FailureKind.TIMEOUT),  # lock not available: lock_timeout
        ("40001", FailureKind.CONTENTION),  # serialization failure
        ("40P01", FailureKind.CONTENTION),  # deadlock detected
        ("42703", FailureKind.FAULT),  # undefined column
        ("42P01", FailureKind.FAULT),  # undefined table
        ("42804", FailureKind.FAULT),  # datatype mismatch
        ("42501", FailureKind.FAULT),  # insufficient privilege
        ("23505", FailureKind.FAULT),  # unique violation
        ("23503", FailureKind.FAULT),  # foreign key violation
        ("25006", FailureKind.FAULT),  # read-only transaction
        ("0A000", FailureKind.FAULT),  # feature not supported
        ("55000", FailureKind.FAULT),  # object not in prerequisite state
        ("57000", FailureKind.FAULT),  # operator intervention, but none of the passing ones
        ("XX000", FailureKind.FAULT),  # internal error
        ("P0001", FailureKind.FAULT),  # raise exception
    ],
)
def test_each_sqlstate_the_server_raises_is_classified(postgres, sqlstate, kind):
    failure = _failure_of(
        postgres,
        f"DO $$ BEGIN RAISE EXCEPTION 'raised for the test' USING ERRCODE = '{sqlstate}'; END $$",
    )

    assert failure.kind == kind
    assert failure.retryable is (kind != FailureKind.FAULT)
    assert failure.fields["sqlstate"] == sqlstate
    assert failure.fields["message"] == "raised for the test"  # the primary message only
    assert "RAISE EXCEPTION" in failure.fields["statement"]


def test_real_schema_and_type_faults_are_faults_with_the_servers_message(postgres):
    missing_column = _failure_of(postgres, "SELECT no_such_column FROM pg_class")
    missing_table = _failure_of(postgres, "SELECT * FROM no_such_table")
    wrong_type = _failure_of(
        postgres,
        "INSERT INTO flags VALUES (1)",
        setup=("CREATE TEMPORARY TABLE flags (flag boolean)",),
    )

    assert (missing_column.kind, missing_column.fields["sqlstate"]) == (FailureKind.FAULT, "42703")
    assert missing_column.fields["message"] == 'column "no_such_column" does not exist'
    assert (missing_table.kind, missing_table.fields["sqlstate"]) == (FailureKind.FAULT, "42P01")
    assert missing_table.fields["message"] == 'relation "no_such_table" does not exist'
    assert (wrong_type.kind, wrong_type.fields["sqlstate"]) == (FailureKind.FAULT, "42804")
    assert "is of type boolean" in wrong_type.fields["message"]


def test_a_real_statement_timeout_is_a_timeout(postgres):
    failure = _failure_of(postgres, "SELECT pg_sleep(5)", setup=("SET statement_timeout = 10",))

    assert (failure.kind, failure.fields["sqlstate"]) == (FailureKind.TIMEOUT, "57014")
    assert failure.fields["message"] == "canceling statement due to statement timeout"


def test_a_data_errors_message_quoting_a_bound_value_is_withheld(postgres):
    failure = _failure_of(postgres, "SELECT CAST(:value AS integer)", value=SECRET_VALUE)

    assert (failure.kind, failure.fields["sqlstate"]) == (FailureKind.FAULT, "22P02")
    assert failure.fields["message"] == WITHHELD_MESSAGE
    # The server's message was `invalid input syntax for type integer: "secret-value-7731"`.
    assert SECRET_VALUE not in repr(failure.log_fields())
    assert "%(value)s" in failure.fields["statement"]


def _connection_failure(url: str):
    engine = create_engine(url)
    try:
        with pytest.raises(DBAPIError) as raised:
            engine.connect()
    finally:
        engine.dispose()
    failure = describe_database_failure(raised.value)
    assert failure is not None
    return failure


def test_a_refused_connection_is_unavailable_with_libpqs_text_and_no_sqlstate():
    failure = _connection_failure(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")

    assert (failure.kind, failure.fields["sqlstate"]) == (FailureKind.UNAVAILABLE, None)
    assert "Connection refused" in failure.fields["message"]
    assert "\n" not in failure.fields["message"]  # one line, whatever libpq wrapped


def test_the_pool_and_the_start_up_migration_are_their_own_reasons():
    pool = describe_database_failure(PoolTimeout("all 1 connections of the pool stayed in use"))
    starting = describe_database_failure(SchemaNotReadyError())

    assert pool is not None
    assert starting is not None
    assert (pool.kind, pool.fields["message"]) == (
        FailureKind.POOL,
        "all 1 connections of the pool stayed in use",
    )
    assert starting.kind == FailureKind.SCHEMA_PENDING
    assert pool.retryable
    assert starting.retryable


def test_what_is_not_the_databases_is_not_described():
    assert describe_database_failure(RuntimeError("a bug")) is None


def test_a_requests_failed_statement_is_described_by_its_driver_error_and_its_sql(
    postgres_server_url,
):
    # What a request's statement raises (shared/db/database.py): psycopg's error, with the SQL.
    sql = "SELECT %(value)s::integer"
    with psycopg.connect(postgres_server_url) as connection, pytest.raises(psycopg.Error) as raised:
        connection.execute(sql, {"value": SECRET_VALUE})
    lock_wait = psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")

    failure = describe_database_failure(StatementError(raised.value, sql))
    waited = describe_database_failure(StatementError(lock_wait, "UPDATE tasks SET ..."))

    assert failure is not None
    assert waited is not None
    assert failure.kind == FailureKind.FAULT
    assert (failure.fields["sqlstate"], failure.fields["statement"]) == ("22P02", sql)
    assert failure.fields["message"] == WITHHELD_MESSAGE
    assert SECRET_VALUE not in str(failure.log_fields())
    assert (waited.kind, waited.retryable) == (FailureKind.TIMEOUT, True)
