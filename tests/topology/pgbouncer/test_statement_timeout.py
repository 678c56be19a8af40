"""The statement timeout through a real PgBouncer: set per transaction behind a transaction
pooler, and never silently lost when a pooler drops the startup option that carries it."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from sqlalchemy import Engine, text

from migrations import upgrade_database
from shared.db import Database, Statement
from tests.conftest import settings_for_test
from tests.factories import TaskFactory
from tests.faults.conftest import bearer
from tests.support import assert_problem, stored_task

TIMEOUT_SECONDS = 2
LOCK_SECONDS = 20  # far longer than the timeout: an answer within it was not a lock wait's end


@contextmanager
def _row_locked(engine: Engine, task_id: int) -> Iterator[threading.Event]:
    """Another session (straight to PostgreSQL) holds the task's row lock until the block ends or
    LOCK_SECONDS pass."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id}
            )
            locked.set()
            release.wait(LOCK_SECONDS)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(LOCK_SECONDS + 10)


def _put_on_a_locked_row(service, direct_engine, direct_db) -> tuple[httpx2.Response, float]:
    task = TaskFactory(owner__id="alice", title="before")
    with _row_locked(direct_engine, task.id):
        started = time.monotonic()
        response = httpx2.put(
            f"{service.base_url}/api/alice/tasks/{task.id}",
            json={"title": "after"},
            headers=bearer("alice"),
            timeout=LOCK_SECONDS + 30,
        )
        elapsed = time.monotonic() - started
    assert stored_task(direct_db, task.id).title == "before"
    return response, elapsed


def test_a_pooler_dropping_the_timeout_option_is_noticed_and_the_timeout_still_holds(
    direct_url, direct_engine, direct_db, start_pgbouncer, start_service
):
    # DB_POOLER=none, so the timeout goes as a startup option, which this PgBouncer drops.
    bouncer = start_pgbouncer(pool_mode="transaction", ignore_startup_parameters="options")
    pooled_url = bouncer.url(direct_url)
    upgrade_database(pooled_url)
    service = start_service(
        pooled_url, DB_POOLER="none", DB_STATEMENT_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS)
    )

    response, elapsed = _put_on_a_locked_row(service, direct_engine, direct_db)

    assert_problem(response, 503)
    assert elapsed < LOCK_SECONDS / 2, elapsed
    logs = service.logs()
    assert "database.statement_timeout_dropped" in logs, logs
    assert "DB_POOLER=transaction" in logs


def test_behind_a_transaction_pooler_each_transaction_sets_the_timeout(
    direct_url, direct_engine, direct_db, start_pgbouncer, start_service
):
    bouncer = start_pgbouncer(pool_mode="transaction")
    pooled_url = bouncer.url(direct_url)
    upgrade_database(pooled_url)
    service = start_service(
        pooled_url, DB_POOLER="transaction", DB_STATEMENT_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS)
    )

    response, elapsed = _put_on_a_locked_row(service, direct_engine, direct_db)
    ready = httpx2.get(f"{service.base_url}/ready")

    assert_problem(response, 503)
    assert elapsed < LOCK_SECONDS / 2, elapsed
    assert ready.status_code == 200, ready.text
    assert "database.statement_timeout_dropped" not in service.logs()


def test_without_db_pooler_a_transaction_pooler_refuses_the_timeout_option(
    direct_url, start_pgbouncer, start_service
):
    """What DB_POOLER=transaction is for: PgBouncer refuses the startup option outright."""
    bouncer = start_pgbouncer(pool_mode="transaction")
    pooled_url = bouncer.url(direct_url)
    upgrade_database(pooled_url)  # migrations send no startup option: they work regardless
    service = start_service(pooled_url, DB_POOLER="none")

    assert_problem(httpx2.get(f"{service.base_url}/ready"), 503)
    assert "unsupported startup parameter: options" in bouncer.logs()


def test_after_the_timeout_was_found_dropped_the_pool_treats_the_pooler_as_transactional(
    direct_url, start_pgbouncer
):
    bouncer = start_pgbouncer(pool_mode="transaction", ignore_startup_parameters="options")
    settings = settings_for_test(
        database_url=bouncer.url(direct_url),
        db_pooler="none",
        db_statement_timeout_seconds=TIMEOUT_SECONDS,
    )

    async def inspect() -> tuple[bool, bool, object, str]:
        database = Database(settings)
        await database.open()
        try:
            before = database.timeout_per_transaction
            connection, pool = await database.checkout()  # the first connection finds it out
            prepare_threshold = connection.prepare_threshold
            await database.give_back(connection, pool)
            async with database.session() as session:
                shown = await session.one_or_none(Statement(text("SHOW statement_timeout")))
            assert shown is not None
            return before, database.timeout_per_transaction, prepare_threshold, shown[0]
        finally:
            await database.close()

    before, after, prepare_threshold, in_force = asyncio.run(inspect())

    assert (before, after) == (False, True)  # per transaction once found dropped
    assert prepare_threshold is None  # psycopg's default is 5: prepared statements are off
    assert in_force == f"{TIMEOUT_SECONDS}s"  # the transaction's own SET LOCAL
