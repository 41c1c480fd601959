"""A PostgreSQL server of the test's own, which the test may stop and start at will.

The shared server on 127.0.0.1:5432 serves every other test, so the outage tests get a
cluster of their own: `initdb` into a temporary directory and `pg_ctl` on a free port
(as the `postgres` user when the tests run as root, since PostgreSQL refuses to run as
root). Where the server binaries are missing, `PrivateCluster.find()` says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from benchmarks.processes import free_port

SEARCH = ("/usr/lib/postgresql",)


def _bin_dir() -> Path | None:
    """The newest installed server's binaries (Debian's layout), or pg_ctl on PATH."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    for root in SEARCH:
        versions = sorted(Path(root).glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name)
        if versions:
            return versions[-1].parent
    return None


@dataclass
class PrivateCluster:
    bin_dir: Path
    directory: Path
    port: int
    run_as: str | None  # "postgres" when we are root

    @classmethod
    def find(cls) -> tuple[PrivateCluster | None, str]:
        """A cluster ready to `init()`, or None and the reason it cannot be had."""
        bin_dir = _bin_dir()
        if bin_dir is None or not (bin_dir / "initdb").exists():
            return None, "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
        run_as = None
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return None, "running as root without runuser to drop to the postgres user"
            run_as = "postgres"
        directory = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        return cls(bin_dir, directory, free_port(), run_as), ""

    def _run(self, *argv: str, timeout: float = 60) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{done.stdout}{done.stderr}")

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def init(self) -> None:
        if self.run_as:
            shutil.chown(self.directory, user=self.run_as, group=None)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        # fsync=off only skips flushing the OS's cache to disk: a crash of PostgreSQL
        # (not of the machine) still loses no committed transaction. synchronous_commit
        # stays on, as in production, so "committed" means written to the WAL.
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.directory / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session cleanly; `immediate` is a crash (recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "vigil") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str = "vigil") -> str:
        connection = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", timeout=10
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
