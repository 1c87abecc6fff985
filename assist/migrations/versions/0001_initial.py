"""The store as it was before migrations: feedback, help-centre events, the suggestion log, review decisions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("suggestion_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("intent", sa.Text),
        sa.Column("index_version", sa.Text),
        sa.Column("latency_ms", sa.Float),
        sa.Column("session_id", sa.Text),
        sa.Column("conversation", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("arm", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("feedback_event", "feedback", ["event", "id"])
    op.create_table(
        "help_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("session_id", sa.Text),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("query", sa.Text),
        sa.Column("article_id", sa.Text),
        sa.Column("abstained", sa.Integer),
        sa.Column("comment", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("help_events_time", "help_events", ["created_at"])
    op.create_table(
        "suggestions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("session_id", sa.Text),
        sa.Column("customer_ref", sa.Text),
        sa.Column("query", sa.Text),
        sa.Column("intent", sa.Text),
        sa.Column("confidence", sa.Float),
        sa.Column("abstained", sa.Integer),
        sa.Column("escalate", sa.Integer),
        sa.Column("answers", sa.Text),
        sa.Column("templates", sa.Text),
        sa.Column("top_similarity", sa.Float),
        sa.Column("latency_ms", sa.Float),
        sa.Column("index_version", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("arm", sa.Text),
        sa.Column("query_vector", sa.LargeBinary),
        sqlite_autoincrement=True,
    )
    op.create_index("suggestions_time", "suggestions", ["created_at"])
    op.create_index("suggestions_session", "suggestions", ["session_id"])
    op.create_table(
        "review_decisions",
        sa.Column("gap_key", sa.Text, primary_key=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("article_id", sa.Text),
        sa.Column("queries", sa.Text, nullable=False),
        sa.Column("centroid", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("review_decisions", "suggestions", "help_events", "feedback"):
        op.drop_table(table)
