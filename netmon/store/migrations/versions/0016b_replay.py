"""replay: scan results merged into an existing incident, by the id they were given when submitted

Revision ID: 0016b
Revises: 0001
Create Date: 2026-12-04

A gateway that lost the acknowledgement of a commit spills the batch and replays it later. A result
that created an incident is known again by the incident's uid (the result's id); one that was merged into
an incident (``count`` + 1) is known by its row here, so a replay never counts it twice.
"""

import sqlalchemy as sa
from alembic import op

from netmon.store.base import UTCDateTime

revision = "0016b"
down_revision = "0001"
branch_labels = ("replay",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_merges",
        sa.Column("rid", sa.String(32), nullable=False),
        sa.Column("incident_uid", sa.String(32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rid", name="pk_incident_merges"),
    )
    op.create_index("ix_incident_merges_time", "incident_merges", ["time"])


def downgrade() -> None:
    op.drop_index("ix_incident_merges_time", "incident_merges")
    op.drop_table("incident_merges")
