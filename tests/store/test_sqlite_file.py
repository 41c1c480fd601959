"""A SQLite database holds pupils' names: it and its journal files are private (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from store.db import create_engine


def modes_of(directory: Path, pattern: str) -> dict[str, str]:
    """Each matching file's permission bits, as 0o600."""
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in directory.glob(pattern)}


async def test_a_new_sqlite_database_and_its_wal_files_are_readable_only_by_the_owner(
    tmp_path: Path,
) -> None:
    os.umask(0o022)  # the usual umask, which gave 0644
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as connection:  # the WAL files exist while it is open
            await connection.execute(text("SELECT x FROM t"))
            modes = modes_of(tmp_path, "vigil.db*")
    finally:
        await engine.dispose()
    assert {"vigil.db", "vigil.db-wal", "vigil.db-shm"} <= set(modes), modes
    assert set(modes.values()) == {"0o600"}, modes


async def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "vigil.db"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o640))
    os.chmod(path, 0o640)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert modes_of(tmp_path, "vigil.db") == {"vigil.db": "0o640"}
