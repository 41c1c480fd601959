"""The SQL behind the chronology and the term report, captured and explained.

`capture_plans` records the statements the store functions themselves send
(`before_cursor_execute`) for the busiest pupil's chronology and for `term_report`'s
queries in each period, then replays each as `EXPLAIN (ANALYZE, BUFFERS)` (PostgreSQL) or
`EXPLAIN QUERY PLAN` (SQLite) on the same database; `seq_scans` lists the big tables a
plan reads whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from store import chronology, reports
from store.crypto import Cipher
from store.db import session_factory
from store.school_config import load_school_config

BIG_TABLES = (
    "incidents",
    "incident_pupils",
    "incident_categories",
    "incident_actions",
    "alerts",
    "read_receipts",
    "referrals",
    "pupils",
)


class Capture:
    """The SQL statements (and parameters) an engine sends while recording."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.log: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.log.append((statement, parameters))

    @contextlib.contextmanager
    def recording_into(self, found: list[tuple[str, Any]]) -> Any:
        self.log, self.recording = [], True
        try:
            yield
        finally:
            self.recording = False
            found.extend(self.log)


def seq_scans(plan: str, backend: str) -> list[str]:
    """The big tables a plan reads whole (PostgreSQL: Seq Scan; SQLite: SCAN w/o index)."""
    if backend == "postgresql":
        found = re.findall(r"Seq Scan on (\w+)", plan)
    else:
        found = [
            m.group(1)
            for m in re.finditer(r"\bSCAN (\w+)(?: AS \w+)?(.*)", plan)
            if "INDEX" not in m.group(2)
        ]
    return sorted({t for t in found if t in BIG_TABLES})


async def explain_all(
    engine: AsyncEngine, statements: Sequence[tuple[str, str, Any]]
) -> list[dict[str, Any]]:
    """Each (label, SQL, parameters) explained on the same database, rolled back."""
    backend = engine.dialect.name
    out = []
    async with engine.connect() as connection:
        for label, sql, parameters in statements:
            transaction = await connection.begin()
            try:
                if backend == "postgresql":
                    rows = await connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sql, parameters
                    )
                    plan = "\n".join(row[0] for row in rows)
                else:
                    rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
                    plan = "\n".join(f"{row[0]}|{row[1]}| {row[3]}" for row in rows)
            finally:
                await transaction.rollback()
            took = re.search(r"Execution Time: ([\d.]+) ms", plan)
            out.append(
                {
                    "label": label,
                    "sql": sql,
                    "plan": plan,
                    "execution_ms": float(took.group(1)) if took else None,
                    "seq_scans": seq_scans(plan, backend),
                }
            )
    return out


async def capture_plans(
    engine: AsyncEngine,
    *,
    workspace_id: int,
    pupil_id: int,
    data_key: str,
    periods: Sequence[reports.DateRange],
) -> dict[str, list[dict[str, Any]]]:
    """The SQL of the chronology (one pupil) and of `term_report` per period, explained."""
    capture = Capture(engine)
    factory = session_factory(engine)
    working = load_school_config(None).working_time
    now = dt.datetime.now(dt.UTC)
    found: dict[str, list[tuple[str, str, Any]]] = {}
    chronology_sql: list[tuple[str, Any]] = []
    async with factory() as session, session.begin():
        with capture.recording_into(chronology_sql):
            await chronology.chronology(
                session,
                workspace_id=workspace_id,
                pupil_id=pupil_id,
                cipher=Cipher(data_key),
                now=now,
            )
    found["chronology"] = [
        (f"chronology #{i + 1}", sql, params) for i, (sql, params) in enumerate(chronology_sql)
    ]
    for period in periods:
        key = f"term_report {period.key}"
        found[key] = []
        async with factory() as session, session.begin():
            zone = working.zone
            calls: tuple[tuple[str, Callable[..., Any]], ...] = (
                (
                    "incidents_by_category",
                    partial(reports.incidents_by_category, period=period, zone=zone),
                ),
                ("year_groups", partial(reports.year_groups, period=period, zone=zone)),
                (
                    "late_alerts",
                    partial(reports.late_alerts, period=period, working=working, now=now),
                ),
                ("open_referrals", partial(reports.open_referrals, working=working, now=now)),
            )
            for name, call in calls:
                sql_log: list[tuple[str, Any]] = []
                with capture.recording_into(sql_log):
                    await call(session, workspace_id=workspace_id)
                found[key] += [
                    (f"{name} #{i + 1}", sql, params) for i, (sql, params) in enumerate(sql_log)
                ]
    return {key: await explain_all(engine, stmts) for key, stmts in found.items()}
