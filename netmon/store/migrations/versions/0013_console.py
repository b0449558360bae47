"""console: staff accounts, incident reviews and their history, triage-queue indexes on incidents

Revision ID: 0013
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0013"
down_revision = "0001"
branch_labels = ("console",)
depends_on = None

#: Keyset paging of the triage queue (most severe, newest first) and its common filters.
QUEUE_INDEXES = {
    "ix_incidents_queue": ["severity", "time", "id"],
    "ix_incidents_category_queue": ["category", "severity", "time", "id"],
    "ix_incidents_year_queue": ["year_group", "severity", "time", "id"],
    "ix_incidents_user_time": ["user", "time"],
}


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime()),
        sa.Column("last_signin_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("username", name="uq_staff_accounts_username"),
    )
    op.create_table(
        "incident_reviews",
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", name="fk_incident_reviews_incident_id_incidents"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(40)),
        sa.Column("assignee", sa.String(150)),
        sa.Column("first_reviewed_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(150), nullable=False),
    )
    op.create_index("ix_incident_reviews_status", "incident_reviews", ["status", "incident_id"])
    op.create_table(
        "incident_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", name="fk_incident_changes_incident_id_incidents"),
            nullable=False,
        ),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_incident_changes_incident_id", "incident_changes", ["incident_id"])
    for name, columns in QUEUE_INDEXES.items():
        op.create_index(name, "incidents", columns)


def downgrade() -> None:
    for name in QUEUE_INDEXES:
        op.drop_index(name, table_name="incidents")
    op.drop_table("incident_changes")
    op.drop_table("incident_reviews")
    op.drop_table("staff_accounts")
