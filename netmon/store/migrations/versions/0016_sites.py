"""sites: every session, outcome, audit row and staff scope carries its site (a trust of schools)

Revision ID: 0016
Revises: 0002, 0013
Create Date: 2026-12-04

One PostgreSQL store may serve every school of a trust: each gateway writes its ``NETMON_SITE`` on what
it records, and a member of staff with a site sees that site only ("" is the whole trust).
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = ("0002", "0013")
branch_labels = ("sites",)
depends_on = None

_TABLES = ("device_sessions", "audit_events", "incident_reviews", "incident_changes", "staff_accounts")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("site", sa.String(100), nullable=False, server_default=""))
    op.create_index("ix_incidents_site_queue", "incidents", ["site", "severity", "time", "id"])
    op.create_index("ix_audit_events_site_time", "audit_events", ["site", "time"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_site_time", "audit_events")
    op.drop_index("ix_incidents_site_queue", "incidents")
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("site")
