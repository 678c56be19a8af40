"""Per-user task counts kept in counter slots instead of the person's `users` row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0002's trigger added every insert, delete and toggle to the person's one `users` row,
# which stays locked until the commit: one person's writes queued behind one another, a fifth of
# the rate without the trigger (bench/RESULTS.md, "The cost of a write"). Now each database
# backend adds its changes to a row of its own, the person's slot `pg_backend_pid() % SLOTS`,
# and the count is the sum of the person's slots (at most SLOTS rows, read by primary key).
# A backend runs one transaction at a time, so its slot is only waited for by another backend
# whose pid agrees modulo SLOTS, never by itself. SLOTS is at least the connections the service
# opens (workers times DB_POOL_SIZE: 20 with the defaults), so such sharing is a short wait for
# a few. A slot may go negative (a task counted in one slot is deleted through another); only
# the sum means anything.
SLOTS = 64

# The same trigger (AFTER INSERT OR DELETE OR UPDATE OF completed, per row), a new body. As
# before, a task never changes owner (no route sets user_id), so only these three are counted.
SLOT_COUNT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION tasks_keep_user_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner tasks.user_id%TYPE;
    added_tasks integer;
    added_completed integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        owner := NEW.user_id;
        added_tasks := 1;
        added_completed := NEW.completed::int;
    ELSIF TG_OP = 'DELETE' THEN
        -- Deleting a person cascades to their tasks: no count is left to keep, and a new slot
        -- row would name a person who is gone.
        IF NOT EXISTS (SELECT FROM users WHERE id = OLD.user_id) THEN
            RETURN NULL;
        END IF;
        owner := OLD.user_id;
        added_tasks := -1;
        added_completed := -OLD.completed::int;
    ELSIF NEW.completed IS DISTINCT FROM OLD.completed THEN
        owner := NEW.user_id;
        added_tasks := 0;
        added_completed := NEW.completed::int - OLD.completed::int;
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO user_task_counts AS counts (user_id, slot, task_count, completed_count)
    VALUES (owner, pg_backend_pid() % {SLOTS}, added_tasks, added_completed)
    ON CONFLICT (user_id, slot) DO UPDATE
        SET task_count = counts.task_count + EXCLUDED.task_count,
            completed_count = counts.completed_count + EXCLUDED.completed_count;
    RETURN NULL;
END $$;
"""  # noqa: S608 (SLOTS is this file's constant, nothing from outside)

# Migration 0002's body, for the downgrade.
USERS_ROW_COUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION tasks_keep_user_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET task_count = task_count + 1,
                         completed_count = completed_count + NEW.completed::int
         WHERE id = NEW.user_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE users SET task_count = task_count - 1,
                         completed_count = completed_count - OLD.completed::int
         WHERE id = OLD.user_id;
    ELSIF NEW.completed IS DISTINCT FROM OLD.completed THEN
        UPDATE users SET completed_count = completed_count + NEW.completed::int - OLD.completed::int
         WHERE id = NEW.user_id;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    # No task may change between copying the counts and switching the trigger (reads go on).
    op.execute("LOCK TABLE tasks IN SHARE MODE")
    op.create_table(
        "user_task_counts",
        sa.Column(
            "user_id",
            sa.String(length=255),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("task_count", sa.BigInteger(), nullable=False),
        sa.Column("completed_count", sa.BigInteger(), nullable=False),
    )
    op.execute(
        """INSERT INTO user_task_counts (user_id, slot, task_count, completed_count)
           SELECT id, 0, task_count, completed_count FROM users WHERE task_count <> 0"""
    )
    op.execute(SLOT_COUNT_FUNCTION)
    # Dropped, not kept: a count nobody keeps any more would read as true and be wrong.
    op.drop_column("users", "completed_count")
    op.drop_column("users", "task_count")


def downgrade() -> None:
    op.execute("LOCK TABLE tasks IN SHARE MODE")
    op.add_column(
        "users", sa.Column("task_count", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "users", sa.Column("completed_count", sa.BigInteger(), nullable=False, server_default="0")
    )
    # Counted from the tasks themselves, as migration 0002 did: the truth, whatever the slots say.
    op.execute(
        """UPDATE users SET task_count = counted.tasks, completed_count = counted.completed
             FROM (SELECT user_id, count(*) AS tasks,
                          count(*) FILTER (WHERE completed) AS completed
                     FROM tasks GROUP BY user_id) AS counted
            WHERE users.id = counted.user_id"""
    )
    op.execute(USERS_ROW_COUNT_FUNCTION)
    op.drop_table("user_task_counts")
