"""Run Alembic migrations programmatically on an async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from store.crypto import Cipher

MIGRATIONS_DIR = Path(migrations.__file__).parent


class KeyNeeded(RuntimeError):
    """A migration has stored values to encrypt (or decrypt) and no data key was given."""


def alembic_config() -> Config:
    """Alembic's configuration, pointed at `migrations/`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, cipher: Cipher | None = None
) -> None:
    """Bring the database schema up to `revision`. `cipher` (from `VIGIL_DATA_KEY`) lets a
    migration that encrypts stored values convert them (0020); without it, such a
    migration refuses a database holding them."""
    config = alembic_config()

    def _run(connection: Any) -> None:
        config.attributes["connection"] = connection
        config.attributes["cipher"] = cipher
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)
    if config.attributes.get("scrub"):
        await scrub(engine, tables=config.attributes["scrub"])


async def scrub(engine: AsyncEngine, *, tables: list[str]) -> None:
    """Leave no copy of values a migration replaced (plain text it encrypted) on disk:
    SQLite rebuilds the file and empties its write-ahead log; PostgreSQL rewrites the
    tables (old row versions, and dropped columns, are otherwise kept until reused)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "sqlite":
            await autocommit.exec_driver_sql("VACUUM")
            await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            await autocommit.exec_driver_sql(f"VACUUM FULL {', '.join(tables)}")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""

    def _current(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def head_revision() -> str:
    """The newest migration's revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
