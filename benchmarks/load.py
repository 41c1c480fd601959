"""Load generation: a timing Slack simulator, a bounded concurrent driver, what it measured.

The load generator runs in the benchmark process (with the Slack stand-in); the servers
it drives run in processes of their own (`benchmarks.processes`).

`TimedSimulator` is the project's `SlackSimulator` (same payloads, same signing, same
aiohttp client); it only notes when each request left and when its answer was read, so a
latency excludes building the payload (e.g. deep-copying a view) but includes signing.
`drive` runs a scenario's requests; `Measured` is what a scenario reports of them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs

from testing.simulator import SlackResponse, SlackSimulator

T = TypeVar("T")

#: Upper bound for any single simulated request (a hung server must not hang the run).
REQUEST_TIMEOUT_S = 15.0


@dataclass
class Timing:
    """One request as the simulator sent it."""

    sent_perf: float  # time.perf_counter() just before the request was signed and posted
    sent_monotonic: float  # time.monotonic() at the same moment (RecordedCall.at's clock)
    body: bytes
    done_perf: float | None = None  # time.perf_counter() once the answer was read

    @property
    def http_s(self) -> float:
        assert self.done_perf is not None
        return self.done_perf - self.sent_perf

    def form_field(self, name: str) -> str | None:
        """A field of a form-encoded body (e.g. a slash command's trigger_id)."""
        values = parse_qs(self.body.decode()).get(name)
        return values[0] if values else None


_last: ContextVar[Timing | None] = ContextVar("benchmark_last_request", default=None)


def last_timing() -> Timing:
    """The timing of the last request sent from the current task."""
    timing = _last.get()
    if timing is None:
        raise RuntimeError("no request has been sent from this task")
    return timing


class TimedSimulator(SlackSimulator):
    """`SlackSimulator` that records a `Timing` per request (see `last_timing`)."""

    async def send_raw(self, body: bytes, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        timing = Timing(time.perf_counter(), time.monotonic(), body)
        _last.set(timing)
        response = await super().send_raw(body, **kwargs)
        timing.done_perf = time.perf_counter()
        return response


class GcWatch:
    """Records the garbage collector's pauses (gc.callbacks) in the benchmark process
    (load generator and stand-in), whose pauses add to the latencies it measures."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._started: float | None = None
        self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            paused = time.perf_counter() - self._started
            self.pauses.append((int(info.get("generation", 0)), paused))
            self._started = None

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def mark(self) -> int:
        return len(self.pauses)

    def since(self, mark: int) -> dict[str, float]:
        """Collections since `mark`: count by generation, longest and total pause (ms)."""
        pauses = self.pauses[mark:]
        return {
            "collections": len(pauses),
            "gen2": sum(1 for generation, _ in pauses if generation == 2),
            "max_ms": round(max((p for _, p in pauses), default=0.0) * 1000, 1),
            "total_ms": round(sum(p for _, p in pauses) * 1000, 1),
        }


#: The run's GC watch; `drive` reports the pauses that fell inside each measured phase.
GC = GcWatch()


@dataclass
class DriveResult(Generic[T]):
    samples: list[T] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    gc: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0  # the server's CPU time (see `drive`'s `server_cpu`)
    bench_cpu_s: float = 0.0  # this process's: load generator and Slack stand-in


async def drive(
    users: Sequence[str],
    total: int,
    one: Callable[[str, int], Awaitable[T]],
    *,
    offset: int = 0,
    timeout: float = REQUEST_TIMEOUT_S,
    server_cpu: Callable[[], float] | None = None,
) -> DriveResult[T]:
    """Run requests `offset .. offset+total-1` from `len(users)` concurrent users.

    Request `i` is sent by `users[i % len(users)]`, and each user sends its requests one
    after another (a closed loop: one request in flight per user). `one(user, i)` performs
    request `i` and returns its sample; an exception counts as an error (the first 20 are
    kept with their messages). Every loop is bounded by `total`.
    """
    result: DriveResult[T] = DriveResult()
    error_count = 0

    async def user_loop(position: int, user: str) -> None:
        nonlocal error_count
        first = offset + (position - offset) % len(users)
        for index in range(first, offset + total, len(users)):
            try:
                async with asyncio.timeout(timeout):
                    result.samples.append(await one(user, index))
            except Exception as error:  # a benchmark counts failures and carries on
                error_count += 1
                if len(result.errors) < 20:
                    result.errors.append(f"{type(error).__name__}: {error}"[:300])

    mark = GC.mark()
    bench_cpu = time.process_time()
    server_before = server_cpu() if server_cpu is not None else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(user_loop(p, user) for p, user in enumerate(users)))
    result.wall_s = time.perf_counter() - started
    result.bench_cpu_s = time.process_time() - bench_cpu
    if server_cpu is not None:
        result.cpu_s = server_cpu() - server_before
    result.gc = GC.since(mark)
    if error_count > len(result.errors):
        result.errors.append(f"... and {error_count - len(result.errors)} more")
    return result


class BenchmarkError(AssertionError):
    """Vigil (or the floor) answered something a correct run never produces."""


@dataclass
class Measured:
    """One scenario's measured phase: latencies (s), wall time and what went wrong."""

    latencies: list[float]
    wall_s: float
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    gc: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0  # the server process's CPU time (all threads) in the measured phase
    bench_cpu_s: float = 0.0  # the benchmark process's (load generator + stand-in)

    @classmethod
    def of(
        cls,
        result: DriveResult[Any],
        latencies: list[float],
        errors: list[str],
        extra: dict[str, Any] | None = None,
    ) -> Measured:
        return cls(
            latencies,
            result.wall_s,
            errors,
            extra or {},
            result.gc,
            result.cpu_s,
            result.bench_cpu_s,
        )


def errors_of(*results: DriveResult[Any]) -> list[str]:
    """Every error of the given phases (warm-up and measured), in order."""
    return [error for result in results for error in result.errors]
