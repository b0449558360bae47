"""A JSON list column (``incidents.groups``) holds one of some names: an exact SQL condition per backend.

PostgreSQL: ``CAST(groups AS JSONB) ?| ARRAY[...]``, which the GIN index of migration 0013d answers. SQLite
and others: a LIKE on the JSON text (quick; it can over-match names with quotes or backslashes) and then
``json_each`` (exact). Every name is a bound parameter, so SQLAlchemy's cached SQL stays right.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, Text, and_, cast, exists, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.functions import FunctionElement


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _GroupsAny(FunctionElement[bool]):
    """Arguments: the column, then each name, then each name's LIKE pattern."""

    type = Boolean()
    name = "groups_any"
    inherit_cache = True


@compiles(_GroupsAny, "postgresql")
def _groups_any_pg(element: _GroupsAny, compiler: Any, **kw: Any) -> str:
    column, *rest = element.clauses.clauses
    names = rest[: len(rest) // 2]
    array = ", ".join(compiler.process(cast(n, Text), **kw) for n in names)
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) ?| ARRAY[{array}])"


@compiles(_GroupsAny)
def _groups_any_default(element: _GroupsAny, compiler: Any, **kw: Any) -> str:
    column, *rest = element.clauses.clauses
    half = len(rest) // 2
    names, patterns = rest[:half], rest[half:]
    like = or_(*(cast(column, String).like(p, escape="\\") for p in patterns))
    each = func.json_each(column).table_valued("value")
    exact = exists(select(literal(1)).select_from(each).where(each.c.value.in_(names)))
    return compiler.process(and_(like, exact), **kw)


def groups_any(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], names: Sequence[str]
) -> ColumnElement[bool]:
    """``column`` (a JSON list of strings) holds one of ``names``."""
    patterns = ["%" + _like_escape(json.dumps(n)) + "%" for n in names]
    args = [literal(n, String) for n in names] + [literal(p, String) for p in patterns]
    return _GroupsAny(column, *args)
