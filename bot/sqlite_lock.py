"""One server per SQLite file: an exclusive lock beside the database.

SQLite has one writer and no `FOR UPDATE SKIP LOCKED`: two `vigil serve` (or a server and
`vigil demo`) on one file would both deliver the outbox and fight over the write lock.
`vigil serve` holds `<database>.lock` (an `flock`, released by the kernel when the
process ends, however it ends) for as long as it runs; a second one is refused at start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.startup import StartupError


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


class DatabaseLock:
    """An exclusive, non-blocking lock on `<database>.lock`, held until `release()`."""

    def __init__(
        self, database: Path, *, holder: str = "vigil serve", suffix: str = ".lock"
    ) -> None:
        self.database = database
        self.path = database.with_name(database.name + suffix)
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StartupError naming who holds it."""
        if not self.path.parent.is_dir():
            return  # no directory, no database: opening it will say so
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StartupError(
                f"{other} is already using {self.database}: SQLite allows one server per "
                "database file. Stop that one first (or use PostgreSQL to run several)"
                if self.holder == "vigil serve"
                else f"{other} is already using {self.database}: stop it first (Ctrl-C "
                "where it runs), or give this one another directory (--dir)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"`{self.holder}` (process {os.getpid()})".encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (the kernel also does at exit)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def lock_database(url: str, *, holder: str = "vigil serve") -> DatabaseLock | None:
    """The held lock of a SQLite database (None for PostgreSQL); StartupError if taken."""
    path = sqlite_path(url)
    if path is None:
        return None
    lock = DatabaseLock(path, holder=holder)
    lock.acquire()
    return lock
