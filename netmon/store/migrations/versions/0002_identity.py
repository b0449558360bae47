"""identity: users, device sessions, AUP acceptances, portal settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = ("identity",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("year_group", sa.String(20)),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "device_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("year_group", sa.String(20)),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("mac", sa.String(17)),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("aup_version", sa.String(50), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("end_reason", sa.String(40)),
    )
    op.create_index("ix_device_sessions_username", "device_sessions", ["username"])
    op.create_index("ix_device_sessions_ip", "device_sessions", ["ip"])
    op.create_index("ix_device_sessions_open", "device_sessions", ["ended_at", "ip"])
    op.create_table(
        "aup_acceptances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("aup_version", sa.String(50), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("mac", sa.String(17)),
        sa.Column("user_agent", sa.String(300), nullable=False),
    )
    op.create_index("ix_aup_acceptances_time", "aup_acceptances", ["time"])
    op.create_index("ix_aup_acceptances_username", "aup_acceptances", ["username"])
    op.create_table(
        "portal_settings",
        sa.Column("key", sa.String(60), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_settings")
    op.drop_table("aup_acceptances")
    op.drop_table("device_sessions")
    op.drop_table("users")
