"""suggestion scope: where a suggested library change applies gets its own column

Revision ID: 0013c
Revises: 0013b
Create Date: 2026-12-04

A suggestion scoped to a site or page kept its scope in the ``host`` column as ``on:SCOPE``. The scope
moves to ``scope`` ("" everywhere) and ``host`` gets back the host the false alarm fired on (the scope's
host: a scope is always made from the incident's host). The downgrade puts ``on:SCOPE`` back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013c"
down_revision = "0013b"
branch_labels = None
depends_on = None

_LEGACY = "on:"  # the prefix 0013b's rows used for a scope in the host column
_rows = sa.table(
    "library_suggestions",
    sa.column("id", sa.Integer()),
    sa.column("host", sa.String(255)),
    sa.column("scope", sa.String(255)),
)


def upgrade() -> None:
    with op.batch_alter_table("library_suggestions") as batch:
        batch.add_column(sa.Column("scope", sa.String(255), nullable=False, server_default=""))
    bind = op.get_bind()
    legacy = bind.execute(sa.select(_rows.c.id, _rows.c.host).where(_rows.c.host.startswith(_LEGACY)))
    for sid, host in legacy.all():
        scope = host[len(_LEGACY) :]
        bind.execute(
            _rows.update().where(_rows.c.id == sid).values(scope=scope, host=scope.partition("/")[0])
        )


def downgrade() -> None:
    bind = op.get_bind()
    scoped = bind.execute(sa.select(_rows.c.id, _rows.c.scope).where(_rows.c.scope != ""))
    for sid, scope in scoped.all():
        bind.execute(_rows.update().where(_rows.c.id == sid).values(host=(_LEGACY + scope)[:255]))
    with op.batch_alter_table("library_suggestions") as batch:
        batch.drop_column("scope")
