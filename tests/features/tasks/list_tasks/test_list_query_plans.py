"""Each way of reading the list is served by an index, read in the list's order, and stops after a
page: the plan of the statement the endpoint really sends, asked of the database with EXPLAIN.

A plan is not a timing: it is the same on a busy machine and a quiet one, so it can be asserted.
The timings themselves are in bench/list_first_page.py.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

# From the modules that define them, as in tests/factories.py: the package re-exports them
# without marking them public for a type checker.
from factory import declarations
from factory.helpers import build_batch
from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Session

from shared.db import Task, User, utc_now
from tests import factories
from tests.factories import TaskFactory, UserFactory
from tests.support import DatabaseActivity, observe_database

READERS_TASKS = 10_000
OTHER_PEOPLE = 20
EACH_OTHER_PERSONS_TASKS = 500
RARE_WORD = "quixotic"


@dataclass(frozen=True)
class Plan:
    """What a query plan does with the tasks table."""

    indexes: set[str]
    sorts: bool
    reads_whole_table: bool
    index_conditions: str


def _is_the_total(node: dict) -> bool:
    # X-Total-Count is a scalar subquery of its own (a stored count, or for a search the number
    # of matches); what is checked here is how the page itself is read.
    return "Subplan Name" in node


def _plan(connection: Any, statement: str, parameters: Any) -> Plan:
    explained = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
    nodes, pending = [], [explained.scalar_one()[0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(child for child in node.get("Plans", []) if not _is_the_total(child))
    # A bitmap index scan names its index but not its table; this schema's task indexes say.
    on_tasks = [
        node
        for node in nodes
        if node.get("Relation Name") == "tasks"
        or node.get("Index Name", "").startswith(("ix_tasks_", "tasks_"))
    ]
    return Plan(
        indexes={node["Index Name"] for node in on_tasks if "Index Name" in node},
        sorts=any(node["Node Type"] in {"Sort", "Incremental Sort"} for node in nodes),
        reads_whole_table=any(node["Node Type"] == "Seq Scan" for node in on_tasks),
        index_conditions=" ".join(node.get("Index Cond", "") for node in on_tasks),
    )


@pytest.fixture
def sent_statements(monkeypatch) -> Iterator[DatabaseActivity]:
    """What the app sends to the database, the list's SELECTs among it."""
    with observe_database(monkeypatch) as activity:
        yield activity


@pytest.fixture(scope="module")
def long_lists(database) -> Iterator[str]:
    """One reader with a long list, among other people with lists of their own; yields the
    reader's id. Statistics are refreshed so that the planner knows the table's shape.

    Seeded once for the module (the tests here only read) and removed afterwards, as the
    per-test `db` fixture would."""
    now = utc_now()
    with Session(database.engine, expire_on_commit=False) as session:
        factories.bind(session)
        owners = [UserFactory(id="reader")] + [
            UserFactory(id=f"other-{n}") for n in range(OTHER_PEOPLE)
        ]
        for owner in owners:
            count = READERS_TASKS if owner.id == "reader" else EACH_OTHER_PERSONS_TASKS
            rows = build_batch(
                dict,
                count,
                FACTORY_CLASS=TaskFactory,
                owner=owner,
                # Generated text rather than Faker's: tens of thousands of rows, quickly.
                title=declarations.Sequence(lambda n: f"task number {n}"),
                description=declarations.Sequence(lambda n: f"notes for task {n}"),
                completed=declarations.Iterator([False, False, True]),
                created_at=declarations.Sequence(lambda n, now=now: now - timedelta(seconds=n)),
                updated_at=declarations.Sequence(
                    lambda n, now=now: now - timedelta(seconds=n % 977)
                ),
            )
            session.execute(insert(Task), rows)
        session.commit()
        TaskFactory(owner=owners[0], title=f"a {RARE_WORD} plan", description=None)
        factories.bind(None)
    # As autovacuum would in time: fresh statistics, and the trigram indexes' pending entries
    # merged (VACUUM, outside a transaction), which the planner's costs count.
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    yield "reader"
    with database.engine.begin() as connection:
        connection.execute(delete(Task))
        connection.execute(delete(User))


@pytest.fixture
def client(_running_client):
    # The module's rows must outlive each test, so not the suite's `client` (which empties the
    # tables after every test); reads leave nothing behind to clean.
    return _running_client


def _plan_of_list_request(
    client, database, headers, query: str, activity: DatabaseActivity
) -> Plan:
    activity.clear()
    response = client.get(f"/api/reader/tasks{query}", headers=headers)
    assert response.status_code == 200, response.text
    sent = [s for s in activity.statements if s.verb == "SELECT" and "FROM tasks" in s.sql]
    assert sent, "the list sent no SELECT on tasks"
    with database.engine.connect() as connection:
        return _plan(connection, sent[0].sql, sent[0].values)


FIRST_PAGES = {
    "newest first (the default)": ("", "ix_tasks_user_id_newest_first"),
    "oldest first": ("?order=asc", "ix_tasks_user_id_newest_first"),
    "recently updated": ("?sort=updated", "ix_tasks_user_id_updated"),
    "least recently updated": ("?sort=updated&order=asc", "ix_tasks_user_id_updated"),
    "by title": ("?sort=title&order=asc", "ix_tasks_user_id_title"),
    "by title, descending": ("?sort=title", "ix_tasks_user_id_title"),
    "pending": ("?status=pending", "ix_tasks_user_id_completed_created"),
    "completed, oldest first": (
        "?status=completed&order=asc",
        "ix_tasks_user_id_completed_created",
    ),
    "pending by title": ("?status=pending&sort=title&order=asc", "ix_tasks_user_id_title"),
    "a common word": ("?q=task", "ix_tasks_user_id_newest_first"),
    "a small page": ("?limit=5", "ix_tasks_user_id_newest_first"),
}


def test_each_first_page_reads_its_index_in_order_without_sorting(
    client, database, auth_headers, long_lists, sent_statements
):
    headers = auth_headers(long_lists)
    for case, (query, expected_index) in FIRST_PAGES.items():
        plan = _plan_of_list_request(client, database, headers, query, sent_statements)

        assert plan.indexes == {expected_index}, (case, plan)
        assert not plan.sorts, (case, plan)
        assert not plan.reads_whole_table, (case, plan)


@pytest.mark.parametrize(
    ("query", "expected_index", "sort_column"),
    [
        ("?limit=50", "ix_tasks_user_id_newest_first", "created_at"),
        ("?limit=50&sort=title&order=asc", "ix_tasks_user_id_title", "title"),
        ("?limit=50&sort=updated", "ix_tasks_user_id_updated", "updated_at"),
        ("?limit=50&status=pending", "ix_tasks_user_id_completed_created", "created_at"),
    ],
)
def test_a_later_page_starts_reading_the_index_at_its_cursor(
    client, database, auth_headers, long_lists, sent_statements, query, expected_index, sort_column
):
    headers = auth_headers(long_lists)
    first = client.get(f"/api/reader/tasks{query}", headers=headers)
    next_url = first.links["next"]["url"]
    split = urlsplit(next_url)

    plan = _plan_of_list_request(client, database, headers, f"?{split.query}", sent_statements)

    assert plan.indexes == {expected_index}, plan
    assert not plan.sorts, plan
    # The cursor is part of the index condition (where the scan starts), not a filter applied
    # to every row before it: page 1,000 costs what page 2 does.
    assert sort_column in plan.index_conditions, plan


def test_a_search_for_a_rare_word_uses_the_trigram_indexes(
    client, database, auth_headers, long_lists, sent_statements
):
    headers = auth_headers(long_lists)

    plan = _plan_of_list_request(client, database, headers, f"?q={RARE_WORD}", sent_statements)

    assert plan.indexes == {"ix_tasks_title_trigrams", "ix_tasks_description_trigrams"}, plan
    assert not plan.reads_whole_table, plan
