"""suggestions: overlay changes suggested from false alarms, and misses reported by the DSL

Revision ID: 0013b
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0013b"
down_revision = "0001"
branch_labels = ("suggestions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_suggestions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("incident_uid", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("phrase", sa.String(300), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("library_file", sa.String(300), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("exception", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("decided_by", sa.String(150)),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("overlay_file", sa.String(500), nullable=False),
    )
    op.create_index("ix_library_suggestions_incident_uid", "library_suggestions", ["incident_uid"])
    op.create_index("ix_library_suggestions_status", "library_suggestions", ["status", "id"])
    op.create_table(
        "reported_misses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("min_severity", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reported_misses")
    op.drop_table("library_suggestions")
