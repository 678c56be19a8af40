import asyncio
import threading
from datetime import datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, literal, select, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, col

import shared.db
from main import create_app
from migrations import alembic_config, upgrade_database
from shared.db import (
    DatabaseUrlError,
    IdempotencyKey,
    async_database_url,
    sync_database_url,
    utc_now,
)
from shared.tokens import mint_token
from tests.conftest import TEST_SECRET, empty_postgres_database, settings_for_test
from tests.factories import IdempotencyKeyFactory, TaskFactory, UserFactory
from tests.support import (
    observe_database,
    run_sql,
    scalar_at,
    stored_counts,
    stored_task_or_none,
    throwaway_database,
)

HEAD_REVISION = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize(
    ("given", "expected_driver"),
    [
        ("postgres://u:p@host/db", "postgresql+psycopg"),
        ("postgresql://u:p@host/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@host/db", "postgresql+psycopg"),
        # The embedded server's: a Unix socket's folder as `host=`.
        ("postgresql://postgres:@/tasks?host=/srv/app/.postgres", "postgresql+psycopg"),
    ],
)
def test_database_urls_are_normalised_to_psycopg(given, expected_driver):
    assert async_database_url(given).drivername == expected_driver


def test_a_neon_url_keeps_its_tls_parameters():
    neon = (
        "postgresql://owner:secret@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/neondb"
        "?sslmode=require&channel_binding=require"
    )

    url = async_database_url(neon)

    assert url.drivername == "postgresql+psycopg"
    assert dict(url.query) == {"sslmode": "require", "channel_binding": "require"}
    assert url.host == "ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech"
    assert sync_database_url(neon).drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "given",
    [
        "sqlite:///./tasks.db",
        "sqlite+aiosqlite:///./tasks.db",
        "mysql://root@localhost/db",
        "not a url",
    ],
)
def test_other_databases_are_refused_saying_postgresql_is_required(given):
    with pytest.raises(DatabaseUrlError, match="PostgreSQL only") as refused:
        async_database_url(given)

    assert "leave it unset" in str(refused.value)


def test_other_postgresql_drivers_are_refused():
    with pytest.raises(DatabaseUrlError, match="'postgresql\\+asyncpg' is not supported"):
        async_database_url("postgresql+asyncpg://u@h/db")


def test_the_migrations_create_exactly_the_tables_the_code_declares(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, SQLModel.metadata)

    assert differences == []


def test_deleting_a_user_deletes_their_tasks(database, db):
    leavers_task_id = TaskFactory(owner__id="leaver").id
    stayers_task_id = TaskFactory(owner__id="stayer").id

    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE id = 'leaver'"))

    assert stored_task_or_none(db, leavers_task_id) is None
    assert stored_task_or_none(db, stayers_task_id) is not None
    assert stored_counts(db, "leaver") == (0, 0)
    assert stored_counts(db, "stayer") == (1, 0)


def test_a_users_email_need_not_be_unique(db):
    UserFactory(id="first", email="same@example.com")
    UserFactory(id="second", email="same@example.com")


def _upgrade_concurrently(url: str, workers: int = 4) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def upgrade() -> None:
        start.wait()
        try:
            upgrade_database(url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _revision(url: str) -> str:
    engine = create_engine(sync_database_url(url))
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return revision


def test_several_processes_migrating_an_empty_postgresql_database_at_once_is_safe(
    postgres_admin,
):
    with empty_postgres_database(postgres_admin) as url:
        assert _upgrade_concurrently(url) == []
        assert _revision(url) == HEAD_REVISION


def test_the_counts_behind_x_total_count_follow_every_change(database, db):
    user = UserFactory(id="counted")
    first = TaskFactory(owner=user, completed=False)
    TaskFactory(owner=user, completed=True)

    def counts() -> tuple[int, int]:
        return stored_counts(db, "counted")

    assert counts() == (2, 1)
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE tasks SET completed = true WHERE id = :id"), {"id": first.id}
        )
    assert counts() == (2, 2)
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE tasks SET title = 'renamed' WHERE id = :id"), {"id": first.id}
        )
    assert counts() == (2, 2)
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": first.id})
    assert counts() == (1, 1)


def test_upgrading_a_database_with_tasks_counts_them(postgres_admin):
    with empty_postgres_database(postgres_admin) as url:
        config = alembic_config()
        engine = create_engine(sync_database_url(url))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                text("INSERT INTO users (id, created_at) VALUES ('old', '2026-01-01 00:00Z')")
            )
            for completed in (False, True, True):
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, completed, created_at, updated_at) "
                        "VALUES ('old', 't', :c, '2026-01-01 00:00Z', '2026-01-01 00:00Z')"
                    ),
                    {"c": completed},
                )
        engine.dispose()

        upgrade_database(url)

        engine = create_engine(sync_database_url(url))
        with engine.connect() as connection:
            counts = connection.execute(
                text(
                    "SELECT sum(task_count), sum(completed_count) FROM user_task_counts"
                    " WHERE user_id = 'old'"
                )
            ).one()
            versions = (
                connection.execute(text("SELECT DISTINCT version FROM tasks")).scalars().all()
            )
        engine.dispose()
    assert tuple(counts) == (3, 2)
    assert versions == [1]


def test_downgrading_from_counter_slots_restores_the_counts_on_users(postgres_admin):
    with empty_postgres_database(postgres_admin) as url:
        upgrade_database(url)
        engine = create_engine(sync_database_url(url))
        insert_task = text(
            "INSERT INTO tasks (user_id, title, completed, created_at, updated_at) "
            "VALUES ('old', 't', :c, now(), now()) RETURNING id"
        )
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO users (id, created_at) VALUES ('old', now())"))
            ids = [
                connection.execute(insert_task, {"c": c}).scalar_one()
                for c in (True, True, False, False)
            ]
        # Through other backends, so the counts are spread over several slots, some negative.
        with engine.connect() as first, engine.connect() as second:
            first.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": ids[0]})
            first.commit()
            second.execute(text("UPDATE tasks SET completed = true WHERE id = :id"), {"id": ids[2]})
            second.commit()
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
        with engine.begin() as connection:
            restored = connection.execute(
                text("SELECT task_count, completed_count FROM users WHERE id = 'old'")
            ).one()
            # The old trigger is back and counts on the users row.
            connection.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": ids[1]})
            after_delete = connection.execute(
                text("SELECT task_count, completed_count FROM users WHERE id = 'old'")
            ).one()
        engine.dispose()
    assert tuple(restored) == (3, 2)
    assert tuple(after_delete) == (2, 1)


def test_expired_idempotency_keys_are_purged_and_live_ones_kept(settings, db):
    IdempotencyKeyFactory(key="expired")
    IdempotencyKeyFactory(key="live", expires_at=utc_now() + timedelta(hours=1))

    async def purge() -> int:
        database = shared.db.Database(settings)
        await database.open()
        try:
            async with database.session() as session:
                return await shared.db.purge_expired_idempotency_keys(session)
        finally:
            await database.close()

    assert asyncio.run(purge()) == 1
    db.commit()
    assert db.scalars(select(col(IdempotencyKey.key))).all() == ["live"]


NEON_DIRECT = "postgresql://u:p@ep-cool-123.us-east-2.aws.neon.tech/db?sslmode=require"
NEON_POOLED = "postgresql://u:p@ep-cool-123-pooler.us-east-2.aws.neon.tech/db?sslmode=require"
SUPABASE_POOLED = "postgresql://postgres.ref:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
SELF_HOSTED = "postgresql://u:p@pgbouncer.internal:6432/db"


@pytest.mark.parametrize(
    ("database_url", "pooler", "expected"),
    [
        (NEON_DIRECT, "auto", ("none", "default: the host name is no known pooler's", True)),
        (NEON_POOLED, "auto", ("transaction", "host name matched Neon's pooler (-pooler.)", False)),
        (
            SUPABASE_POOLED,
            "auto",
            ("transaction", "host name matched Supabase's pooler (pooler.supabase.com)", False),
        ),
        (SELF_HOSTED, "auto", ("none", "default: the host name is no known pooler's", True)),
        (SELF_HOSTED, "TRANSACTION", ("transaction", "DB_POOLER set explicitly", False)),
        (NEON_POOLED, "none", ("none", "DB_POOLER set explicitly", True)),
    ],
)
def test_the_pooler_is_what_db_pooler_says_or_a_known_pooler_host(database_url, pooler, expected):
    settings = settings_for_test(database_url=database_url, db_pooler=pooler)

    plan = shared.db.connection_plan(settings)

    assert (plan.pooler.value, plan.pooler_reason, plan.prepared_statements) == expected


@pytest.mark.parametrize(
    ("database_url", "setting", "expected"),
    [
        (SELF_HOSTED, "true", (True, "DB_PREPARED_STATEMENTS=true")),
        (NEON_POOLED, "true", (True, "DB_PREPARED_STATEMENTS=true")),
        (NEON_DIRECT, "false", (False, "DB_PREPARED_STATEMENTS=false")),
        (NEON_DIRECT, "", (True, "on for a direct connection (after 5 uses)")),
    ],
)
def test_prepared_statements_follow_the_setting_when_given(database_url, setting, expected):
    settings = settings_for_test(
        database_url=database_url, db_pooler="auto", db_prepared_statements=setting
    )

    plan = shared.db.connection_plan(settings)

    assert (plan.prepared_statements, plan.prepared_statements_reason) == expected


def test_an_unknown_pooler_mode_is_refused():
    with pytest.raises(ValueError, match="db_pooler"):
        settings_for_test(db_pooler="session")


@pytest.mark.parametrize(
    ("database_url", "settings", "expected"),
    [
        (NEON_DIRECT, {}, True),
        ("postgresql://u:p@127.0.0.1:5432/db", {}, True),
        # Behind a transaction pooler the statement timeout is set per transaction, so every
        # request keeps one.
        (NEON_POOLED, {}, False),
        (SELF_HOSTED, {"db_pooler": "transaction"}, False),
        (SELF_HOSTED, {"db_pooler": "transaction", "db_statement_timeout_seconds": 0}, True),
    ],
)
def test_statements_skip_the_transaction_only_where_it_is_safe(database_url, settings, expected):
    settings = settings_for_test(database_url=database_url, **settings)

    database = shared.db.Database(settings)

    assert (not database.timeout_per_transaction) is expected


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Etc/UTC"])
def test_timestamps_are_answered_in_utc_whatever_the_servers_time_zone(request, zone):
    with throwaway_database(request) as url:
        # As a server configured for its operators' local time would send them.
        run_sql(url, f"ALTER DATABASE {make_url(url).database} SET TimeZone = '{zone}'")
        settings = settings_for_test(
            database_url=url, better_auth_secret=TEST_SECRET, migrate_on_start=False
        )
        headers = {"Authorization": f"Bearer {mint_token(settings, 'alice')}"}
        with TestClient(create_app(settings)) as client:
            created = client.post("/api/alice/tasks", json={"title": "x"}, headers=headers)
            read = client.get(f"/api/alice/tasks/{created.json()['id']}", headers=headers)
        stored = scalar_at(url, "SELECT extract(epoch FROM created_at)::float8 FROM tasks")

    assert isinstance(stored, float)
    for body in (created.json(), read.json()):
        assert body["created_at"].endswith("Z"), body
        moment = datetime.fromisoformat(body["created_at"]).timestamp()
        assert moment == pytest.approx(stored, abs=1e-6)


def test_behind_a_transaction_pooler_a_session_is_one_transaction_with_its_time_limit(
    settings, monkeypatch
):
    # The session's own SQL is what is checked, so the direct server stands in for the pooler.
    url = settings.database_url.get_secret_value()
    pooled = settings_for_test(database_url=url, db_pooler="transaction")

    async def a_first_write_with_a_transaction_block() -> None:
        database = shared.db.Database(pooled)
        await database.open()
        try:
            async with database.session() as session:
                await session.begin()  # as record_user does for a person's first write
                async with session.transaction():  # as the Idempotency-Key path does
                    await session.one_or_none(shared.db.Statement(select(literal(1))))
                await session.one_or_none(shared.db.Statement(select(literal(2))))
        finally:
            await database.close()

    with observe_database(monkeypatch) as activity:
        asyncio.run(a_first_write_with_a_transaction_block())

    # One BEGIN with its time limit, and one COMMIT when the session finishes: neither begin()
    # nor the block may open a second transaction or commit the session's early.
    assert activity.verbs == ["BEGIN", "SET", "SELECT", "SELECT", "COMMIT"]
    assert [sent.in_transaction for sent in activity.statements] == [False, True, True, True, True]
