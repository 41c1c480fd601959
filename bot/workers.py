"""`vigil serve --workers N`: N server processes on one port, and a parent that keeps them.

A socket shared by forked workers, not SO_REUSEPORT: the parent binds VIGIL_HOST:VIGIL_PORT
once, so a port in use is one clear line before anything starts and no second `vigil
serve` can quietly share the port (SO_REUSEPORT lets any process of the same user bind it
too); the kernel hands each connection to a worker waiting in `accept` (an idle one,
where SO_REUSEPORT's hash may pick a busy one); and a worker that dies loses no queued
connection (the queue belongs to the parent's socket, which every worker keeps).

The parent runs no event loop and serves nothing. It starts worker 1 and waits until it has
started (a configuration problem is then one line, once), then the other workers and,
when the outbox is delivered out of the request loop (`Settings.delivery_process`), the
delivery process (`bot.outbox_process`). A process that dies is started again after 1 s,
doubling to 30 s while it keeps dying within a minute of starting. SIGTERM or SIGINT is
passed on to every process, each drains as a single server does, and the parent waits
(VIGIL_SHUTDOWN_TIMEOUT + 10 s, then SIGKILL). A worker gets SIGTERM if the parent dies
(PR_SET_PDEATHSIG), so none outlives it. Exactly one process runs the scheduled checks
(`scheduler.leader`). PostgreSQL only: SQLite has one writer (`bot.sqlite_lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass

import structlog

from bot.app import serve_forever
from bot.outbox_process import deliver_forever
from bot.settings import ConfigError, Settings
from bot.startup import StartupError, listen_problem
from store.db import is_sqlite

log = structlog.get_logger(__name__)

DELIVERY = "delivery"
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # a process that ran this long had not been failing


@dataclass
class Child:
    role: str
    pid: int
    started: float
    ready: int  # the read end of the pipe on which it says it has started
    failures: int = 0


def refuse_sqlite(settings: Settings) -> None:
    """SQLite allows one server process: more than one worker is refused, in one line."""
    if is_sqlite(settings.database_url) and (settings.workers > 1 or settings.delivery_process):
        what = (
            f"--workers {settings.workers}"
            if settings.workers > 1
            else "VIGIL_OUTBOX_DELIVERY=process"
        )
        raise ConfigError(
            f"{what} needs PostgreSQL: SQLite allows one server process per database file "
            "(VIGIL_DATABASE_URL is SQLite). Run one worker, or move to PostgreSQL"
        )


def bind(settings: Settings) -> socket.socket:
    """The listening socket every worker shares (StartupError, in one line, if taken)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise StartupError(listen_problem(error, host=settings.host, port=settings.port)) from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def serve_workers(settings: Settings) -> int:
    """Run the workers (and the delivery process) until SIGTERM or SIGINT; exit status."""
    refuse_sqlite(settings)
    sock = bind(settings)
    try:
        return Supervisor(settings, sock).run()
    finally:
        sock.close()


class Supervisor:
    """Starts the processes, starts again any that dies, passes signals on."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.children: dict[int, Child] = {}
        self.restarts: list[tuple[float, Child]] = []  # (when, the child that died)
        self.stopping = False
        self.parent = os.getpid()

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        first = self.spawn("worker-1")
        failed = self.wait_ready(first)
        if failed is not None:
            return failed
        for number in range(2, self.settings.workers + 1):
            self.spawn(f"worker-{number}")
        if self.settings.delivery_process:
            self.spawn(DELIVERY)
        log.info(
            "vigil.workers_started",
            workers=self.settings.workers,
            delivery="process" if self.settings.delivery_process else "in each worker",
            port=self.sock.getsockname()[1],
            pool_size=self.settings.pool_size,
        )
        while not self.stopping:
            self.reap()
            now = time.monotonic()
            for due in [entry for entry in self.restarts if entry[0] <= now]:
                self.restarts.remove(due)
                self.spawn(due[1].role, failures=due[1].failures)
            time.sleep(0.1)
        return self.shutdown()

    def spawn(self, role: str, *, failures: int = 0) -> Child:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            run_child(self.settings, role=role, sock=self.sock, ready=write, parent=self.parent)
        os.close(write)
        child = Child(role, pid, time.monotonic(), read, failures)
        self.children[pid] = child
        log.info("vigil.worker_started", worker=role, pid=pid)
        return child

    def wait_ready(self, child: Child) -> int | None:
        """None once `child` has started; its exit status if it exits first."""
        while not self.stopping:
            readable, _, _ = select.select([child.ready], [], [], 0.2)
            if readable and os.read(child.ready, 1):
                return None
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                self._forget(child)
                return os.waitstatus_to_exitcode(status) or 1
        return self.shutdown()

    def reap(self) -> None:
        """Note every process that has died, and when to start it again."""
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            child = self.children.get(pid)
            if child is None:
                continue
            self._forget(child)
            ran = time.monotonic() - child.started
            child.failures = 0 if ran > STABLE_AFTER else child.failures + 1
            delay = min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** max(0, child.failures - 1))
            log.error(
                "vigil.worker_died",
                worker=child.role,
                pid=pid,
                status=os.waitstatus_to_exitcode(status),
                restart_in=delay,
            )
            self.restarts.append((time.monotonic() + delay, child))

    def _forget(self, child: Child) -> None:
        self.children.pop(child.pid, None)
        with contextlib.suppress(OSError):
            os.close(child.ready)

    def shutdown(self) -> int:
        """SIGTERM to every process; wait for them to drain (bounded), then SIGKILL."""
        log.info("vigil.workers_stopping", processes=len(self.children))
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout + 10
        while self.children and time.monotonic() < deadline:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid:
                child = self.children.get(pid)
                if child is not None:
                    self._forget(child)
            else:
                time.sleep(0.05)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._forget(self.children[pid])
        log.info("vigil.workers_stopped")
        return 0


def run_child(
    settings: Settings, *, role: str, sock: socket.socket, ready: int, parent: int
) -> None:
    """In a forked child: run one worker (or the delivery process), then exit."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with(parent)
    structlog.contextvars.bind_contextvars(worker=role)

    def started() -> None:
        with contextlib.suppress(OSError):
            os.write(ready, b"r")
            os.close(ready)

    code = 0
    try:
        asyncio.run(_child(settings, role=role, sock=sock, ready=started))
    except ConfigError as error:
        print(f"vigil: {error}", file=sys.stderr)
        code = 2
    except StartupError as error:
        print(f"vigil: {error}", file=sys.stderr)
        code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


async def _child(settings: Settings, *, role: str, sock: socket.socket, ready: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if role == DELIVERY:
        await deliver_forever(settings, stop, ready=ready)
    else:
        await serve_forever(settings, stop, sock=sock, ready=ready)  # type: ignore[arg-type]


def _die_with(parent: int) -> None:
    """SIGTERM when the parent dies (Linux); exit now if it already has."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)
