"""Writing a flow's new rows in as few round trips as the database allows (issue 17).

`write_all` runs a list of writes in order, then a last one whose one value it returns.
Each write is data, not a statement: a `Rows` (any number of new rows for one table) or a
`Deletion` (the rows of one table with the given column values). On PostgreSQL they are
one statement: the last, with every other write as one of its common table expressions
(foreign keys are checked at the statement's end). A `Rows` is written there as an
`INSERT … SELECT unnest(…)` of one array per varying column, so the statement's SQL is the
same however many rows there are; and since every value is a bound parameter, the
statement for a given shape (which tables, which columns) is built once per process and
its cached compilation used for every filing: building and keying a statement of a dozen
CTEs cost more CPU than the database spent running it. On SQLite each write is a
statement of its own, a `Rows` one `executemany`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, Table, Text, bindparam, delete, func, insert, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable

MAX_SHAPES = 256  # statements kept per process (a flow has a handful of shapes)


def table_of(model: Any) -> Table:
    """A mapped class's table."""
    return cast(Table, model.__table__)


@dataclass(frozen=True)
class Rows:
    """New rows of one table (each with the same keys). `varying`: the columns whose
    value may differ from row to row; every other column has the first row's value.
    `skip_conflicts`: a row that breaks a unique key is not written (ON CONFLICT DO
    NOTHING); `returning`: the column whose value the write returns (as `write_all`'s
    last write: None when its row was skipped)."""

    table: Table
    rows: Sequence[dict[str, Any]]
    varying: tuple[str, ...] = ()
    skip_conflicts: bool = False
    returning: str | None = None


@dataclass(frozen=True)
class Deletion:
    """The rows of `table` whose columns have the values in `where`."""

    table: Table
    where: dict[str, Any]


Write = Rows | Deletion

_BUILT: dict[Hashable, Executable] = {}


def _shape(write: Write) -> Hashable:
    if isinstance(write, Deletion):
        return ("delete", write.table.name, tuple(write.where))
    columns = tuple(write.rows[0])
    return ("rows", write.table.name, columns, write.varying, write.skip_conflicts, write.returning)


def _pg_statement(prefix: str, write: Write) -> Any:
    """The write's PostgreSQL statement, every value a bound parameter `{prefix}_{column}`."""
    table = write.table
    if isinstance(write, Deletion):
        return delete(table).where(
            *(
                table.c[name] == bindparam(f"{prefix}_{name}", type_=table.c[name].type)
                for name in write.where
            )
        )
    columns = list(write.rows[0])
    selected: list[Any] = []
    for name in columns:
        column, key = table.c[name], f"{prefix}_{name}"
        if name not in write.varying:
            selected.append(bindparam(key, type_=column.type))
        elif isinstance(column.type, JSON):
            texts = bindparam(key, type_=ARRAY(Text()))
            selected.append(sql_cast(func.unnest(texts), column.type))
        else:
            selected.append(func.unnest(bindparam(key, type_=ARRAY(column.type))))
    statement: Any = postgresql.insert(table).from_select(columns, select(*selected))
    if write.skip_conflicts:
        statement = statement.on_conflict_do_nothing()
    if write.returning is not None:
        statement = statement.returning(table.c[write.returning])
    return statement


def _pg_values(prefix: str, write: Write) -> dict[str, Any]:
    """The values of `_pg_statement(prefix, write)`'s parameters."""
    if isinstance(write, Deletion):
        return {f"{prefix}_{name}": value for name, value in write.where.items()}
    first, values = write.rows[0], {}
    for name in first:
        key = f"{prefix}_{name}"
        if name not in write.varying:
            values[key] = first[name]
        elif isinstance(write.table.c[name].type, JSON):
            values[key] = [json.dumps(row[name]) for row in write.rows]
        else:
            values[key] = [row[name] for row in write.rows]
    return values


def _pg_built(present: Sequence[Write], last: Rows) -> Executable:
    """The one statement for writes of this shape, built on first use."""
    shape = (*(_shape(write) for write in present), _shape(last))
    statement = _BUILT.get(shape)
    if statement is None:
        ctes = [_pg_statement(f"w{i}", write).cte(f"w{i}") for i, write in enumerate(present)]
        statement = _pg_statement("last", last).add_cte(*ctes)
        if len(_BUILT) >= MAX_SHAPES:
            _BUILT.clear()
        _BUILT[shape] = statement
    return statement


def _sqlite_statement(write: Write) -> Any:
    table = write.table
    if isinstance(write, Deletion):
        return delete(table).where(*(table.c[name] == value for name, value in write.where.items()))
    statement: Any = insert(table)
    if write.skip_conflicts:
        statement = sqlite.insert(table).on_conflict_do_nothing()
    if write.returning is not None:
        statement = statement.values(write.rows[0]).returning(table.c[write.returning])
    return statement


async def write_all(session: AsyncSession, writes: Sequence[Write], last: Rows) -> Any:
    """Run `writes` in order (a `Rows` with none is skipped), then `last` (one row, with a
    `returning` column); the value `last` returns."""
    present = [w for w in writes if not isinstance(w, Rows) or w.rows]
    if session.get_bind().dialect.name == "postgresql":
        values: dict[str, Any] = {}
        for i, write in enumerate(present):
            values.update(_pg_values(f"w{i}", write))
        values.update(_pg_values("last", last))
        return await session.scalar(_pg_built(present, last), values)
    for write in present:
        if isinstance(write, Rows):
            await session.execute(_sqlite_statement(write), list(write.rows))
        else:
            await session.execute(_sqlite_statement(write))
    return await session.scalar(_sqlite_statement(last))
