"""Per-user task counts, task versions, idempotency keys, and indexes for the list's options.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counts behind X-Total-Count are kept by the database itself, in the statement that changes
# a task, so the first page of a long list never has to count the whole list.
COUNT_TRIGGER = """
CREATE FUNCTION tasks_keep_user_counts() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER tasks_keep_user_counts AFTER INSERT OR DELETE OR UPDATE OF completed ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_keep_user_counts();
"""


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("task_count", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "users", sa.Column("completed_count", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "tasks", sa.Column("version", sa.BigInteger(), nullable=False, server_default="1")
    )
    op.execute(
        """UPDATE users SET
            task_count = (SELECT count(*) FROM tasks WHERE tasks.user_id = users.id),
            completed_count = (SELECT count(*) FROM tasks
                               WHERE tasks.user_id = users.id AND tasks.completed)"""
    )
    op.execute(COUNT_TRIGGER)

    # Each sort order, and the status filter under the default order, reads a user's rows in
    # index order and stops after one page.
    op.create_index("ix_tasks_user_id_updated", "tasks", ["user_id", "updated_at", "id"])
    op.create_index("ix_tasks_user_id_title", "tasks", ["user_id", "title", "id"])
    op.create_index(
        "ix_tasks_user_id_completed_created", "tasks", ["user_id", "completed", "created_at", "id"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column(
            "user_id",
            sa.String(length=255),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_tasks_user_id_completed_created", table_name="tasks")
    op.drop_index("ix_tasks_user_id_title", table_name="tasks")
    op.drop_index("ix_tasks_user_id_updated", table_name="tasks")
    op.execute("DROP TRIGGER tasks_keep_user_counts ON tasks")
    op.execute("DROP FUNCTION tasks_keep_user_counts()")
    op.drop_column("tasks", "version")
    op.drop_column("users", "completed_count")
    op.drop_column("users", "task_count")
