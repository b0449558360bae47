"""devices: enrolled school-owned devices (WireGuard peers with a fixed tunnel address)

Revision ID: 0017
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0017"
down_revision = "0001"
branch_labels = ("devices",)
depends_on = None

_ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "enrolled_devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
        sa.Column("public_key", sa.String(44), nullable=False),
        sa.Column("address_v4", sa.String(15), nullable=False),
        sa.Column("address_v6", sa.String(45)),
        sa.Column("aup_version", sa.String(50), nullable=False),
        sa.Column("aup_accepted_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("key_created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("revoke_reason", sa.String(200)),
    )
    op.create_index("ix_enrolled_devices_username", "enrolled_devices", ["username"])
    for name, column in (("name", "name"), ("key", "public_key"), ("v4", "address_v4")):
        op.create_index(
            f"uq_enrolled_devices_active_{name}",
            "enrolled_devices",
            [column],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )


def downgrade() -> None:
    op.drop_table("enrolled_devices")
