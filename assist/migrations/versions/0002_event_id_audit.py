"""Feedback idempotency keys (a retried POST is stored once) and the audit log of admin actions.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback", sa.Column("event_id", sa.Text))
    op.create_index("feedback_event_id", "feedback", ["event_id"], unique=True)
    op.create_index("feedback_time", "feedback", ["created_at"])
    op.create_index("suggestions_customer", "suggestions", ["customer_ref"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("audit_log_time", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_index("suggestions_customer", "suggestions")
    op.drop_index("feedback_time", "feedback")
    op.drop_index("feedback_event_id", "feedback")
    op.drop_column("feedback", "event_id")
