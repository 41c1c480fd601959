"""The reports' stamp (`store.reports.cache`) reads each of a school's newest concern,
action, alert and pupil correction from an index of its own workspace's rows (migration
0026), on both databases; the migration's downgrade drops those indexes and its upgrade
makes them again.

(That another school's records leave a school's kept report alone, and its own count
it again: tests/handlers/web/test_reports.py.)"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from store.crypto import Cipher
from store.db import create_engine
from store.migrate import alembic_config, upgrade
from store.reports import cache
from testing.harness import Harness

NEWEST = {
    "incidents": "uq_incidents_workspace_number",  # numbers are given in order
    "incident_actions": "ix_incident_actions_workspace_newest",
    "alerts": "ix_alerts_workspace_newest",
    "incident_pupil_corrections": "ix_incident_pupil_corrections_workspace_newest",
}


async def indexes(connection: AsyncConnection) -> dict[str, set[str]]:
    def names(sync: Any) -> dict[str, set[str]]:
        found = inspect(sync)
        return {
            table: {i["name"] for i in found.get_indexes(table)}
            | {u["name"] for u in found.get_unique_constraints(table)}
            for table in NEWEST
        }

    return await connection.run_sync(names)


async def stamp_plan(connection: AsyncConnection, *, workspace_id: int) -> str:
    """The database's plan for the stamp's statement, as text."""
    sql = str(cache._STAMP)  # its parameters by name, for text()
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    params = {"workspace_id": workspace_id, "start": start, "end": start + dt.timedelta(90)}
    if connection.dialect.name == "postgresql":
        # Whatever the few rows here would make cheapest: which index can answer it.
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = await connection.execute(text(f"EXPLAIN {sql}"), params)
    else:
        rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"), params)
    return "\n".join(" ".join(str(c) for c in row) for row in rows)


async def test_the_stamp_reads_each_newest_row_from_its_workspaces_index(
    school: Harness,
) -> None:
    async with school.server.engine.begin() as connection:
        plan = await stamp_plan(connection, workspace_id=school.workspace_id)
    for table, index in NEWEST.items():
        if school.server.engine.dialect.name == "postgresql":
            # max() is a Limit over a backward scan once a workspace has more than a few
            # rows; with these few, a scan of its rows in the index.
            assert f"using {index} on {table}" in plan, (table, plan)
            continue
        if table == "incidents":  # the unique constraint's own index
            index = r"sqlite_autoindex_incidents_\d+"
        found = rf"SEARCH {table} USING COVERING INDEX {index} \(workspace_id=\?\)"
        assert re.search(found, plan), (table, plan)


async def test_migration_0026_downgrades_and_upgrades(school: Harness) -> None:
    async with school.server.engine.connect() as connection:
        found = await indexes(connection)
    assert all(index in found[table] for table, index in NEWEST.items()), found
    engine = create_engine(school.database_url)
    cipher = Cipher(school.data_key)
    try:

        def downgrade(connection: Any) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            config.attributes["cipher"] = cipher
            command.downgrade(config, "0025")

        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
            before = await indexes(connection)
        await upgrade(engine, cipher=cipher)
        async with engine.connect() as connection:
            after = await indexes(connection)
    finally:
        await engine.dispose()
    assert before == {
        table: names - {index} if table != "incidents" else names
        for (table, names), index in zip(found.items(), NEWEST.values(), strict=True)
    }
    assert after == found
