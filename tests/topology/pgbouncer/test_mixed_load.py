"""A concurrent mixed load through a real PgBouncer 1.18 in transaction mode, against the real
service (two workers), with fewer server connections than the service's pools hold, so that
each server connection serves many clients in turn: the case where a statement prepared by one
client meets another client's transaction.

It must end with zero errors and a database exactly as the acknowledged responses say; and the
same load with prepared statements forced on (which PgBouncer before 1.21 does not track) must be
caught by the same checker, so this test is known to be able to fail."""

import time

import httpx2

from migrations import upgrade_database
from tests.topology.pgbouncer.mixed_load import Outcome, run_mixed_load, seed, stored_problems

# 2 workers x 8 connections = 16 clients of PgBouncer, which shares 3 server connections.
SERVICE = {"WORKERS": "2", "DB_POOL_SIZE": "8", "DB_POOLER": "transaction"}
SERVER_CONNECTIONS = 3
LOAD_SECONDS = 15.0


def _wait_until_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while (ready := httpx2.get(f"{base_url}/ready", timeout=5)).status_code != 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)


def _load(
    direct_url,
    direct_db,
    direct_engine,
    start_pgbouncer,
    start_service,
    *,
    broken=False,
    **settings,
):
    bouncer = start_pgbouncer(pool_mode="transaction", default_pool_size=SERVER_CONNECTIONS)
    pooled_url = bouncer.url(direct_url)
    upgrade_database(pooled_url)
    rows = seed(direct_db)
    service = start_service(
        pooled_url, tracebacks_expected=broken, MIGRATE_ON_START="true", **{**SERVICE, **settings}
    )
    _wait_until_ready(service.base_url)
    outcome = run_mixed_load(service.base_url, rows, clients=24, seconds=LOAD_SECONDS)
    return service, outcome, [*outcome.problems, *stored_problems(direct_engine, rows, outcome)]


def _summary(outcome: Outcome, problems: list[str]) -> str:
    return f"{outcome.requests} requests, {dict(outcome.statuses)}; problems: {problems[:20]}"


def test_a_mixed_load_through_pgbouncer_changes_nothing_it_should_not(
    direct_url, direct_db, direct_engine, start_pgbouncer, start_service
):
    service, outcome, problems = _load(
        direct_url, direct_db, direct_engine, start_pgbouncer, start_service
    )

    assert problems == [], _summary(outcome, problems)
    # Enough of every kind for statements to pass psycopg's prepare threshold (5) many times.
    kinds = {what for what, _ in outcome.statuses}
    assert kinds == {"get read-only", "list read-only", "get", "toggle", "delete", "create"}
    assert (
        min(sum(n for (what, _), n in outcome.statuses.items() if what == kind) for kind in kinds)
        > 5 * SERVER_CONNECTIONS
    ), _summary(outcome, problems)
    assert outcome.deleted
    assert outcome.created
    assert outcome.toggles
    logs = service.logs()
    assert '"database_pooler": "transaction"' in logs
    assert '"database_pooler_reason": "DB_POOLER set explicitly"' in logs
    assert '"prepared_statements": false' in logs


def test_the_same_load_with_prepared_statements_forced_on_is_caught(
    direct_url, direct_db, direct_engine, start_pgbouncer, start_service
):
    service, outcome, problems = _load(
        direct_url,
        direct_db,
        direct_engine,
        start_pgbouncer,
        start_service,
        broken=True,
        DB_PREPARED_STATEMENTS="true",
    )

    assert problems, "the checker found nothing wrong: " + _summary(outcome, problems)
    assert "prepared statement" in service.logs(), _summary(outcome, problems)
