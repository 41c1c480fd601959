"""Timing the overdue scan: the claim SELECT, a batch and a full pass of the nudges.

The claim is captured from a real `nudge_overdue` call (`before_cursor_execute`) and
replayed through the app's engine, each run in its own transaction rolled back, alternating
with `SELECT count(*) FROM referrals` on the same connection (the reference). A batch is
`nudge_overdue(limit=200)` rolled back; a full pass is `OverdueReferrals.run()` committed,
timed per batch. See `benchmarks.referrals_scan`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from structlog.testing import capture_logs

from benchmarks.load import GC, Measured
from benchmarks.processes import cpu_seconds
from benchmarks.referrals_seed import BATCH, NOW, PUBLIC_URL
from benchmarks.stats import percentile
from scheduler.jobs import OverdueReferrals
from store import referrals
from store.db import SessionFactory
from store.school_config import SchoolConfig

WARMUP = 3  # unmeasured runs of each query first
COUNT_SQL = "SELECT count(*) FROM referrals"


class Statements:
    """Every SQL statement the engine sends while recording, with its time (the cursor's
    execute and fetch, as `before/after_cursor_execute` see them)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.recording = False
        self.log: list[tuple[str, Any, float]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, *_args: Any) -> None:
        conn.info["benchmark_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started = conn.info.pop("benchmark_started", None)
        if self.recording and started is not None:
            self.log.append((statement, parameters, time.perf_counter() - started))

    def start(self) -> None:
        self.log = []
        self.recording = True

    def stop(self) -> list[tuple[str, Any, float]]:
        self.recording = False
        return self.log


@dataclass(frozen=True)
class Claim:
    """The claim SELECT as `nudge_overdue` sent it."""

    statement: str
    parameters: tuple[Any, ...]


async def capture_claim(
    factory: SessionFactory, statements: Statements, config: SchoolConfig
) -> tuple[Claim, int]:
    """Call `nudge_overdue` once (rolled back); its first statement is the claim."""
    async with factory() as session:
        statements.start()
        try:
            nudged = await referrals.nudge_overdue(
                session, config=config, public_url=PUBLIC_URL, now=NOW, limit=BATCH
            )
        finally:
            log = statements.stop()
            await session.rollback()
    statement, parameters, _ = log[0]
    if "FROM referrals" not in statement:
        raise RuntimeError(f"nudge_overdue's first statement is not the claim: {statement}")
    return Claim(statement, tuple(parameters)), nudged


async def _backend_pid(connection: AsyncConnection) -> int | None:
    if connection.dialect.name != "postgresql":
        return None
    pid = int((await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())
    await connection.rollback()  # each measured run begins its own transaction
    return pid


async def _timed(
    connection: AsyncConnection, statement: str, parameters: tuple[Any, ...], pid: int | None
) -> tuple[float, list[Any], float]:
    """One run in its own transaction, rolled back: (seconds, rows, backend CPU s)."""
    transaction = await connection.begin()
    try:
        await connection.exec_driver_sql("SELECT 1")  # the BEGIN goes out here, untimed
        cpu_before = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        rows = list((await connection.exec_driver_sql(statement, parameters)).all())
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    finally:
        await transaction.rollback()
    return elapsed, rows, cpu


@dataclass
class _Series:
    latencies: list[float]
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rows: Counter[int] | None = None
    first_ids: list[int] | None = None


async def scan_and_count(
    engine: AsyncEngine, claim: Claim, *, runs: int, warmup: int = WARMUP
) -> tuple[Measured, Measured, dict[str, Any]]:
    """The claim SELECT and count(*), alternating (first one, then the other), on one
    connection; each in its own rolled-back transaction."""
    scan = _Series([], rows=Counter())
    count = _Series([], rows=Counter())
    counted: set[int] = set()
    mark, bench = GC.mark(), time.process_time()
    async with engine.connect() as connection:
        pid = await _backend_pid(connection)
        first_ms: dict[str, float] = {}
        for index in range(warmup + runs):
            if index == warmup:  # CPU and collections of the measured runs only
                mark, bench = GC.mark(), time.process_time()
            order = ((scan, claim.statement, claim.parameters), (count, COUNT_SQL, ()))
            for series, statement, parameters in order if index % 2 == 0 else order[::-1]:
                elapsed, rows, cpu = await _timed(connection, statement, parameters, pid)
                key = "scan" if series is scan else "count"
                first_ms.setdefault(key, round(elapsed * 1000, 3))
                if index < warmup:
                    continue
                series.latencies.append(elapsed)
                series.cpu_s += cpu
                series.wall_s += elapsed
                if series is scan:
                    assert series.rows is not None
                    series.rows[len(rows)] += 1
                    if series.first_ids is None:
                        series.first_ids = [row[0] for row in rows]
                else:
                    counted.add(int(rows[0][0]))
        await connection.rollback()
    gc_stats, bench_cpu = GC.since(mark), time.process_time() - bench
    share = bench_cpu / 2
    assert scan.rows is not None
    measured_scan = Measured(
        scan.latencies,
        scan.wall_s,
        extra={
            "rows_returned": dict(scan.rows),
            "first_run_ms": first_ms.get("scan"),
            "warmup": warmup,
        },
        gc=gc_stats,
        cpu_s=scan.cpu_s,
        bench_cpu_s=share,
    )
    measured_count = Measured(
        count.latencies,
        count.wall_s,
        extra={"counted": sorted(counted), "first_run_ms": first_ms.get("count")},
        gc=gc_stats,
        cpu_s=count.cpu_s,
        bench_cpu_s=share,
    )
    return measured_scan, measured_count, {"first_ids": scan.first_ids or []}


async def recheck(engine: AsyncEngine, claim: Claim, *, runs: int) -> Measured:
    """The claim SELECT alone (after the pass: nothing left to nudge today)."""
    latencies: list[float] = []
    rows_returned: Counter[int] = Counter()
    cpu = 0.0
    mark, bench = GC.mark(), time.process_time()
    async with engine.connect() as connection:
        pid = await _backend_pid(connection)
        for index in range(WARMUP + runs):
            if index == WARMUP:
                mark, bench = GC.mark(), time.process_time()
            elapsed, rows, used = await _timed(connection, claim.statement, claim.parameters, pid)
            if index >= WARMUP:
                latencies.append(elapsed)
                rows_returned[len(rows)] += 1
                cpu += used
    return Measured(
        latencies,
        sum(latencies),
        extra={"rows_returned": dict(rows_returned), "warmup": WARMUP},
        gc=GC.since(mark),
        cpu_s=cpu,
        bench_cpu_s=time.process_time() - bench,
    )


def _summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values]
    if not ms:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


async def batches(
    factory: SessionFactory,
    statements: Statements,
    claim: Claim,
    config: SchoolConfig,
    *,
    runs: int,
) -> Measured:
    """`nudge_overdue(limit=200)`, each run rolled back: the whole batch, and inside it
    the claim and every other statement."""
    latencies: list[float] = []
    claims: list[float] = []
    db: list[float] = []
    nudged: Counter[int] = Counter()
    sent: Counter[int] = Counter()
    mark, bench = GC.mark(), time.process_time()
    for index in range(WARMUP + runs):
        if index == WARMUP:
            mark, bench = GC.mark(), time.process_time()
        async with factory() as session:
            statements.start()
            try:
                started = time.perf_counter()
                done = await referrals.nudge_overdue(
                    session, config=config, public_url=PUBLIC_URL, now=NOW, limit=BATCH
                )
                elapsed = time.perf_counter() - started
            finally:
                log = statements.stop()
                await session.rollback()
        if index < WARMUP:
            continue
        latencies.append(elapsed)
        nudged[done] += 1
        sent[len(log)] += 1
        claims += [seconds for statement, _, seconds in log if statement == claim.statement]
        db.append(sum(seconds for *_, seconds in log))
    return Measured(
        latencies,
        sum(latencies),
        extra={
            "nudged_per_batch": dict(nudged),
            "statements_per_batch": dict(sent),
            "claim_in_batch": _summary_ms(claims),
            "database_time": _summary_ms(db),
            "warmup": WARMUP,
            "rolled_back": True,
        },
        gc=GC.since(mark),
        bench_cpu_s=time.process_time() - bench,
    )


class _TimedSessions:
    """A session factory for `OverdueReferrals` that times each session (one batch)."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.times: list[float] = []

    def __call__(self) -> _TimedSession:
        return _TimedSession(self.factory(), self.times)


class _TimedSession:
    def __init__(self, session: AsyncSession, times: list[float]) -> None:
        self.session = session
        self.times = times
        self.started = 0.0

    async def __aenter__(self) -> AsyncSession:
        self.started = time.perf_counter()
        return await self.session.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.session.__aexit__(*exc)
        finally:
            self.times.append(time.perf_counter() - self.started)


async def full_pass(
    factory: SessionFactory, statements: Statements, claim: Claim, config: SchoolConfig
) -> tuple[Measured, dict[str, Any]]:
    """`OverdueReferrals.run()` as the scheduler runs it (committed), per batch."""
    timed = _TimedSessions(factory)
    job = OverdueReferrals(
        factory=timed,  # type: ignore[arg-type]
        config=config,
        public_url=PUBLIC_URL,
        notify_outbox=lambda: None,
        clock=lambda: NOW,
        batch_size=BATCH,
    )
    mark, bench = GC.mark(), time.process_time()
    statements.start()
    with capture_logs() as logs:
        started = time.perf_counter()
        nudged = await job.run()
        wall = time.perf_counter() - started
    log = statements.stop()
    claims = [round(s * 1000, 3) for statement, _, s in log if statement == claim.statement]
    failures = [entry for entry in logs if entry.get("event") == "job.overdue_referrals_failed"]
    detail = {
        "nudged": nudged,
        "batches": len(timed.times),
        "seconds": round(wall, 3),
        "batch_ms": [round(t * 1000, 1) for t in timed.times],
        "claim_ms_per_batch": claims,
        "statements": len(log),
        "failures": [str(entry)[:300] for entry in failures],
    }
    measured = Measured(
        list(timed.times),
        wall,
        extra={"nudged": nudged, "batches": len(timed.times), "committed": True},
        gc=GC.since(mark),
        bench_cpu_s=time.process_time() - bench,
    )
    return measured, detail
