"""core: incidents and audit events

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("mac", sa.String(17)),
        sa.Column("user", sa.String(150)),
        sa.Column("role", sa.String(20)),
        sa.Column("year_group", sa.String(20)),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("device", sa.String(100)),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("phrase", sa.String(300), nullable=False),
        sa.Column("phrases", sa.JSON(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("capture_text", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.LargeBinary()),
        sa.Column("snapshot_type", sa.String(100)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("uid", name="uq_incidents_uid"),
    )
    for column in ("time", "client_ip", "user", "host", "category", "severity", "dedup_key"):
        op.create_index(f"ix_incidents_{column}", "incidents", [column])
    op.create_index("ix_incidents_dedup", "incidents", ["dedup_key", "last_seen"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("actor", sa.String(150)),
        sa.Column("subject", sa.String(255)),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("incidents")
