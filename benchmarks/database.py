"""The database a benchmark runs on: a temporary SQLite file, a temporary PostgreSQL
database (created, dropped afterwards) or a URL given by the user; and counting rows in it.

The schema is not created here: the runner runs `vigil db upgrade` against it, as a
school does.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from store.db import SessionFactory

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Database:
    url: str
    backend: str  # "sqlite" | "postgresql"
    temporary: bool


def asyncpg_dsn(url: str) -> str:
    """`url` as asyncpg takes it (no SQLAlchemy driver name)."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    return url


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def benchmark_database(
    choice: str, *, workdir: Path | None = None
) -> AsyncIterator[Database]:
    """Yield a database for `choice` ("sqlite", "postgresql" or a URL of an empty one)."""
    if choice == "sqlite":
        with tempfile.TemporaryDirectory(prefix="vigil-bench-", dir=workdir) as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'vigil.db'}"
            yield Database(url=url, backend="sqlite", temporary=True)
        return
    if choice == "postgresql":
        name = f"vigil_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        await _admin(f'CREATE DATABASE "{name}"')
        try:
            base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
            url = _sqlalchemy_url(f"{base}/{name}")
            yield Database(url=url, backend="postgresql", temporary=True)
        finally:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    url = _sqlalchemy_url(choice)
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError(
            "--database must be sqlite, postgresql, or a sqlite+aiosqlite:// or "
            "postgresql+asyncpg:// URL"
        )
    yield Database(
        url=url, backend="sqlite" if url.startswith("sqlite") else "postgresql", temporary=False
    )


async def count_rows(factory: SessionFactory, model: Any, *where: Any) -> int:
    """How many rows of `model` meet every condition in `where`, in a session of its own."""
    async with factory() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(query) or 0)
