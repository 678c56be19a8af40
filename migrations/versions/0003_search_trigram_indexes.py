"""Trigram indexes for the list's search.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `q=` is a substring search (ILIKE '%text%'), which no B-tree can serve: without these, a search
# for a rare word reads every one of the person's tasks. A trigram index finds the few rows that
# can match; for a common word the planner still prefers reading the list's own index in order
# and stopping after a page. pg_trgm ships with PostgreSQL (and Neon) and has been a trusted
# extension since PostgreSQL 13, so the database's owner may create it.
TRIGRAM_INDEXES = {
    "ix_tasks_title_trigrams": "title",
    "ix_tasks_description_trigrams": "description",
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX {name}")
    # The extension stays: other schemas in the database may have come to rely on it.
