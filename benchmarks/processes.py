"""The servers under test as processes of their own, and what /proc says about them.

Vigil runs as a school runs it: ``python -m bot.cli serve`` (the ``vigil serve`` console
script) with its configuration in environment variables and a working directory of its
own (so no stray ``.env`` is read). The database is prepared the same way, with
``vigil db upgrade`` and ``vigil import``. The floors run as processes too
(``python -m benchmarks.floor``), so every server gets a whole interpreter and event
loop to itself while the load generator and the Slack stand-in stay in the benchmark
process.

With ``--in-process`` the same servers run inside the benchmark process instead (the old
arrangement, for comparison); their /proc figures are then the whole process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from benchmarks.floor import start_site

REPO_ROOT = Path(__file__).resolve().parent.parent
#: How long a server may take to answer its first /healthz.
START_TIMEOUT_S = 60.0
#: How long a `vigil` preparation command (migrate, import) may take.
CLI_TIMEOUT_S = 600.0
#: How long a server may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 20.0


class ProcessError(RuntimeError):
    """A server or a `vigil` command did not start, or failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment(settings: dict[str, str]) -> dict[str, str]:
    """The environment for a child process: ours without any Vigil or Slack setting,
    plus `settings`, with this checkout first on the import path (an editable install
    elsewhere must not shadow the code under test)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIGIL_", "SLACK_")) and key != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(settings)
    return env


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the benchmark dies (Linux), so no
    server outlives an interrupted run."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _open_log(path: Path) -> Any:
    """The server's stdout and stderr go to a file (a pipe nobody reads would block it)."""
    return open(path, "wb")


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


async def run_vigil(
    args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT_S
) -> str:
    """Run `python -m bot.cli ARGS` (the `vigil` command) to completion; its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=cwd,
        env=child_environment(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ProcessError(f"vigil {' '.join(args)} took more than {timeout:.0f} s") from None
    text = output.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise ProcessError(f"vigil {' '.join(args)} exited {process.returncode}:\n{text[-3000:]}")
    return text


# -- /proc -------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid`, every thread included (/proc/PID/stat),
    and of its child processes (`vigil serve --workers N`: the workers and the outbox's
    delivery process)."""
    return _own_cpu_seconds(pid) + sum(cpu_seconds(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        return []


def _own_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of `pid` now (VmRSS) and at its peak (VmHWM), in MB."""
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = round(int(value.split()[0]) / 1024, 1)  # kB → MB
    except (OSError, ValueError, IndexError):
        pass
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_mb": found.get("VmHWM", 0.0)}


# -- servers -----------------------------------------------------------------------------


class Server(Protocol):
    """A server under test: where it listens and which process does the work."""

    name: str
    url: str
    pid: int
    separate: bool  # its own process (True) or the benchmark's (False)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def wait_healthy(url: str, *, alive: Any = None, timeout: float = START_TIMEOUT_S) -> None:
    """Poll GET `url` until it answers 200 (bounded); `alive()` False aborts early."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise ProcessError(f"{url}: the server exited while starting")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise ProcessError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class ServerProcess:
    """A server started as a child process, listening on 127.0.0.1:`port`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    health_path: str = "/healthz"
    separate: bool = True
    _process: asyncio.subprocess.Process | None = None
    _log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProcessError(f"{self.name} is not running")
        return self._process.pid

    def _alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        self._log_path = self.cwd / f"{self.name}.log"
        with _open_log(self._log_path) as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.cwd,
                env=child_environment(self.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches only us
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            await wait_healthy(self.url + self.health_path, alive=self._alive)
        except ProcessError as error:
            await self.stop()
            raise ProcessError(f"{self.name}: {error}\n{_tail(self._log_path)}") from None

    async def stop(self) -> None:
        """SIGTERM (a graceful drain), then SIGKILL if it takes too long."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would: no drain, no goodbye."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self._log_path, lines)


def vigil_process(*, env: dict[str, str], cwd: Path) -> ServerProcess:
    """`vigil serve` as a school runs it (port and everything else from `env`)."""
    return ServerProcess(
        name="vigil",
        argv=[sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=cwd,
        port=int(env["VIGIL_PORT"]),
    )


def floor_process(kind: str, args: Sequence[str], *, cwd: Path) -> ServerProcess:
    """A floor server (`python -m benchmarks.floor KIND …`) on a free port."""
    port = free_port()
    return ServerProcess(
        name=f"floor-{kind}",
        argv=[sys.executable, "-m", "benchmarks.floor", kind, "--port", str(port), *args],
        env={},
        cwd=cwd,
        port=port,
    )


class InProcessVigil:
    """`VigilServer` inside the benchmark process, configured from the same variables."""

    name = "vigil"
    separate = False

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.pid = os.getpid()
        self.server: Any = None

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        # Only --in-process loads the app into the benchmark process.
        from bot.app import VigilServer
        from bot.settings import load_settings

        settings = load_settings(env_file=None, **self.env)
        self.server = VigilServer(settings)
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


class InProcessFloor:
    """A floor app (`benchmarks.floor`) inside the benchmark process."""

    separate = False

    def __init__(self, kind: str, app: Any) -> None:
        self.name = f"floor-{kind}"
        self.app = app
        self.pid = os.getpid()
        self.port = free_port()
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = await start_site(self.app, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
