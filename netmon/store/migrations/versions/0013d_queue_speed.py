"""queue speed: a GIN index on incidents.groups (as JSONB) on PostgreSQL, for the group filter and a
pastoral lead's scope (``CAST(groups AS JSONB) ?| ARRAY[...]`` in netmon.incidents.queries). SQLite has
no such index: its group filter is a LIKE on the JSON text, then ``json_each``.

Revision ID: 0013d
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013d"
down_revision = "0013"
branch_labels = ("queue_speed",)
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.create_index(
            "ix_incidents_groups_gin", "incidents", [sa.text("CAST(groups AS JSONB)")], postgresql_using="gin"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_incidents_groups_gin", table_name="incidents")
