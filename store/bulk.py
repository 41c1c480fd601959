"""Writing a flow's new rows in as few round trips as the database allows (issue 17).

`write_all` runs a list of writes in order, then a last statement whose one value it
returns. On PostgreSQL they are one statement: the last, with every other write as one of
its common table expressions (foreign keys are checked at the statement's end). A `Rows`
(any number of rows for one table) is written there as an `INSERT … SELECT unnest(…)` of
one array per varying column, so the statement has the same SQL however many rows there
are and SQLAlchemy compiles it once, not once per count. On SQLite each write is a
statement of its own, a `Rows` one `executemany`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, Table, Text, func, insert, literal, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable


def table_of(model: Any) -> Table:
    """A mapped class's table."""
    return cast(Table, model.__table__)


@dataclass(frozen=True)
class Rows:
    """New rows of one table (each with the same keys). `varying`: the columns whose
    value may differ from row to row; every other column has the first row's value."""

    table: Table
    rows: Sequence[dict[str, Any]]
    varying: tuple[str, ...]


Write = Executable | Rows


def _unnested(rows: Rows) -> Executable:
    columns = list(rows.rows[0])
    first = rows.rows[0]
    selected: list[Any] = []
    for name in columns:
        column = rows.table.c[name]
        if name not in rows.varying:
            selected.append(literal(first[name], column.type))
        elif isinstance(column.type, JSON):
            texts = [json.dumps(row[name]) for row in rows.rows]
            selected.append(sql_cast(func.unnest(literal(texts, ARRAY(Text()))), column.type))
        else:
            values = [row[name] for row in rows.rows]
            selected.append(func.unnest(literal(values, ARRAY(column.type))))
    return insert(rows.table).from_select(columns, select(*selected))


async def write_all(session: AsyncSession, writes: Sequence[Write], last: Any) -> Any:
    """Run `writes` in order (a `Rows` with none is skipped), then `last`; the one value
    `last` returns."""
    present = [w for w in writes if not isinstance(w, Rows) or w.rows]
    if session.get_bind().dialect.name == "postgresql":
        statements = [_unnested(w) if isinstance(w, Rows) else w for w in present]
        ctes = [cast(Any, s).cte(f"w{i}") for i, s in enumerate(statements)]
        return await session.scalar(last.add_cte(*ctes))
    for write in present:
        if isinstance(write, Rows):
            await session.execute(insert(write.table), list(write.rows))
        else:
            await session.execute(write)
    return await session.scalar(last)
