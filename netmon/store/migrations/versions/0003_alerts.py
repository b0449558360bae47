"""alerts: the alert outbox

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = ("alerts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("urgency", sa.String(10), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("incident_uid", sa.String(32), nullable=False),
        sa.Column("pupil", sa.String(150), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", UTCDateTime()),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("last_error", sa.Text()),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("message_id", sa.String(255)),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("alerts.id", name="fk_alerts_parent_id_alerts")),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.UniqueConstraint("uid", name="uq_alerts_uid"),
        sa.UniqueConstraint("rule", "incident_uid", name="uq_alerts_rule_incident"),
    )
    for column in ("created_at", "state", "incident_uid", "pupil"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])
    op.create_index("ix_alerts_due", "alerts", ["state", "next_attempt"])
    op.create_index("ix_alerts_cooldown", "alerts", ["rule", "pupil", "created_at"])


def downgrade() -> None:
    op.drop_table("alerts")
