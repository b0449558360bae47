"""The incident store: SQLAlchemy 2 models, engine set-up and Alembic migrations.

Tables are grouped by the feature that owns them (``incidents``, ``identity``, ``alerts``, ``lists``),
all on one ``Base``. SQLite (WAL) is the embedded default; any SQLAlchemy URL works (PostgreSQL for a
multi-school trust).
"""
