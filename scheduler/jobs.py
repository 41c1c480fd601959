"""The scheduler's named jobs (APScheduler, inside `vigil serve`), listed by `vigil jobs`.

The outbox delivery worker runs continuously beside them (`scheduler.delivery`). The
checks (`start_checks`) run in one process at a time, the leader (`scheduler.leader`);
each also claims its work in the database, so nothing is sent twice even if two overlap.
What each process counts itself (anonymous requests) it writes itself (`start_scheduler`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from store import (
    allegations,
    referrals,
    subject_access,
    tasks,
    transfers,
    unread,
    urgent,
    websessions,
)
from store.db import SessionFactory, transaction
from store.noise import AnonymousNoise
from store.school_config import SchoolConfig
from store.schools import SchoolDirectory

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class JobInfo:
    id: str
    name: str
    every: str


def describe_jobs(config: SchoolConfig) -> list[JobInfo]:
    """Every job `vigil serve` runs, for `vigil jobs`."""
    return [
        JobInfo(
            "outbox-delivery",
            "Deliver queued Slack messages (alerts, receipts, nudges)",
            "continuously, woken by new messages; polls every 2 s",
        ),
        JobInfo(
            OverdueReferrals.id,
            OverdueReferrals.name,
            f"every {config.check_every_minutes:g} minutes, and at start-up",
        ),
        JobInfo(
            AnonymousNoiseFlush.id,
            AnonymousNoiseFlush.name,
            f"every {AnonymousNoiseFlush.every_minutes:g} minutes, and at shutdown",
        ),
        JobInfo(
            UrgentEscalations.id,
            UrgentEscalations.name,
            f"every {urgent_check_minutes(config):g} minutes, and at start-up",
        ),
        JobInfo(
            UnreadChase.id,
            UnreadChase.name,
            f"every {config.check_every_minutes:g} minutes, and at start-up",
        ),
        JobInfo(
            TransferReceipts.id,
            TransferReceipts.name,
            f"every {config.check_every_minutes:g} minutes, and at start-up",
        ),
        JobInfo(
            OverdueTasks.id,
            OverdueTasks.name,
            f"every {config.check_every_minutes:g} minutes, and at start-up",
        ),
        JobInfo(
            SubjectAccessDeadlines.id,
            SubjectAccessDeadlines.name,
            f"every {config.check_every_minutes:g} minutes, and at start-up",
        ),
        JobInfo(
            SchoolSettingsReload.id,
            SchoolSettingsReload.name,
            f"every {SchoolSettingsReload.every_minutes:g} minute",
        ),
    ]


def urgent_check_minutes(config: SchoolConfig) -> float:
    """How often the urgent check runs: every minute, or more often for a shorter interval."""
    return min(1.0, config.escalate_every_minutes / 2)


def each_school(
    config: SchoolConfig, schools: SchoolDirectory | None
) -> list[tuple[int | None, SchoolConfig]]:
    """Whom a check runs for: every school at once when they share one configuration,
    else each school with its own (`store.schools`: working time, agencies, rota)."""
    if schools is None or not schools.varies:
        return [(None, config)]
    return [(workspace_id, schools.config(workspace_id)) for workspace_id in schools.workspaces()]


@dataclass(frozen=True, kw_only=True)
class OverdueReferrals:
    """Nudge the safeguarding team about referrals past due with no response."""

    id: ClassVar[str] = "overdue-referrals"
    name: ClassVar[str] = "Nudge DSLs about overdue agency referrals"

    factory: SessionFactory
    config: SchoolConfig
    public_url: str
    notify_outbox: Callable[[], None]
    clock: Callable[[], dt.datetime]
    batch_size: int = referrals.NUDGE_BATCH
    schools: SchoolDirectory | None = None  # each school's configuration, if they differ

    async def run(self) -> int:
        """One pass: nudge in batches until nothing overdue is left for today."""
        total = 0
        for workspace_id, config in each_school(self.config, self.schools):
            total += await self._run(workspace_id, config)
        if total:
            log.info("job.overdue_referrals", nudged=total)
            self.notify_outbox()
        return total

    async def _run(self, workspace_id: int | None, config: SchoolConfig) -> int:
        total = 0
        for _ in range(1000):  # bounded: 1,000 batches a pass at most
            try:
                async with transaction(self.factory) as session:
                    nudged = await referrals.nudge_overdue(
                        session,
                        config=config,
                        public_url=self.public_url,
                        now=self.clock(),
                        limit=self.batch_size,
                        workspace_id=workspace_id,
                    )
                    # Allegations' LADO consultations and referrals: to their manager.
                    nudged += await allegations.nudge_consultations(
                        session,
                        config=config,
                        public_url=self.public_url,
                        now=self.clock(),
                        limit=self.batch_size,
                        workspace_id=workspace_id,
                    )
            except Exception:
                log.exception("job.overdue_referrals_failed")
                break
            total += nudged
            if nudged < self.batch_size:
                break
        return total


@dataclass(frozen=True, kw_only=True)
class AnonymousNoiseFlush:
    """Write the anonymous requests counted since the last run (refused sign-ins, unknown
    sessions, rate-limited addresses) as one audit row per kind; forget expired Sign in
    with Slack attempts."""

    id: ClassVar[str] = "anonymous-noise"
    name: ClassVar[str] = "Audit anonymous requests as counts; forget expired sign-in attempts"
    every_minutes: ClassVar[float] = 5

    factory: SessionFactory
    noise: AnonymousNoise
    clock: Callable[[], dt.datetime]

    async def run(self) -> int:
        """One pass: how many audit rows were written."""
        now = self.clock()
        try:
            async with transaction(self.factory) as session:
                written = self.noise.flush(session, now=now)
                await websessions.purge_oidc(session, now=now)
        except Exception:
            log.exception("job.anonymous_noise_failed")
            return 0
        if written:
            log.info("job.anonymous_noise", rows=written)
        return written


@dataclass(frozen=True, kw_only=True)
class SchoolSettingsReload:
    """Read the schools' settings pages again (`store.schools.SchoolDirectory.reload`), so
    a change saved in another process is used here within a minute."""

    id: ClassVar[str] = "school-settings"
    name: ClassVar[str] = "Read each school's settings again (saved in another process)"
    every_minutes: ClassVar[float] = 1

    factory: SessionFactory
    schools: SchoolDirectory

    async def run(self) -> bool:
        try:
            async with self.factory() as session:
                await self.schools.reload(session)
        except Exception:
            log.exception("job.school_settings_failed")
            return False
        return True


Batch = Callable[..., Awaitable[int]]


@dataclass(frozen=True, kw_only=True)
class _Batched:
    """A job that runs one store function in batches, each in its own transaction."""

    id: ClassVar[str]
    name: ClassVar[str]
    step: ClassVar[Batch]

    factory: SessionFactory
    config: SchoolConfig
    public_url: str
    notify_outbox: Callable[[], None]
    clock: Callable[[], dt.datetime]
    batch_size: int = 100
    schools: SchoolDirectory | None = None  # each school's configuration, if they differ

    async def run(self) -> int:
        """One pass for each school (or all at once): batches until one is not full."""
        total = 0
        for workspace_id, config in each_school(self.config, self.schools):
            total += await self._run(workspace_id, config)
        if total:
            log.info("job.done", job=self.id, count=total)
            self.notify_outbox()
        return total

    async def _run(self, workspace_id: int | None, config: SchoolConfig) -> int:
        """Batches until a batch is not full (1,000 batches a pass at most)."""
        total = 0
        step = type(self).step
        for _ in range(1000):
            try:
                async with transaction(self.factory) as session:
                    done = await step(
                        session,
                        config=config,
                        public_url=self.public_url,
                        now=self.clock(),
                        limit=self.batch_size,
                        workspace_id=workspace_id,
                    )
            except Exception:
                log.exception("job.failed", job=self.id)
                break
            total += done
            if done < self.batch_size:
                break
        return total


@dataclass(frozen=True, kw_only=True)
class UrgentEscalations(_Batched):
    """Escalate urgent concerns nobody on the safeguarding team has opened (`store.urgent`)."""

    id: ClassVar[str] = "urgent-escalations"
    name: ClassVar[str] = "Escalate urgent concerns nobody has opened (rota, then head)"
    step: ClassVar[Batch] = staticmethod(urgent.escalate_unopened)


@dataclass(frozen=True, kw_only=True)
class UnreadChase(_Batched):
    """Remind, once, whoever has not opened an alert on a restricted category (`store.unread`)."""

    id: ClassVar[str] = "unread-chase"
    name: ClassVar[str] = "Remind once about unopened alerts on restricted categories"
    step: ClassVar[Batch] = staticmethod(unread.chase_unopened)


@dataclass(frozen=True, kw_only=True)
class TransferReceipts(_Batched):
    """Tell the DSLs, once, of a record transfer not receipted after five school days
    (`store.transfers.nudge_unreceipted`)."""

    id: ClassVar[str] = "transfer-receipts"
    name: ClassVar[str] = "Nudge DSLs about record transfers not receipted in 5 school days"
    step: ClassVar[Batch] = staticmethod(transfers.nudge_unreceipted)


class OverdueTasks(_Batched):
    """Nudge the assignees of overdue tasks once a working day, escalating (`store.tasks`)."""

    id: ClassVar[str] = "overdue-tasks"
    name: ClassVar[str] = "Nudge people about overdue tasks (escalating to the DSLs)"
    step: ClassVar[Batch] = staticmethod(tasks.nudge_overdue)


class SubjectAccessDeadlines(_Batched):
    """Remind the DSLs of subject access requests near or past their one-month deadline,
    once a working day (`store.subject_access.nudge_deadlines`)."""

    id: ClassVar[str] = "subject-access-deadlines"
    name: ClassVar[str] = "Nudge DSLs about subject access requests due within 7 days or overdue"
    step: ClassVar[Batch] = staticmethod(subject_access.nudge_deadlines)


HEAP_TRIM_SECONDS = 60


@functools.cache
def _libc() -> Any:
    """glibc, or None where there is none (macOS, musl): trimming is then skipped."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


def trim_heap() -> bool:
    """Give memory the process freed back to the system (glibc's `malloc_trim`).

    Without it a long-running server's resident memory creeps up while its live Python
    objects stay level: glibc keeps freed pages of the many short-lived page and query
    buffers. The soak (`benchmarks/soak.py`) showed +1 MB a minute without this, flat with
    it. Returns False where there is nothing to call.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def start_scheduler(
    *,
    noise: AnonymousNoiseFlush | None = None,
    schools: SchoolSettingsReload | None = None,
) -> AsyncIOScheduler:
    """Start APScheduler with what every process runs for itself: writing the anonymous
    requests it counted, reloading each school's settings, and giving freed memory back."""
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    if noise is not None:
        scheduler.add_job(
            noise.run,
            IntervalTrigger(minutes=noise.every_minutes),
            id=noise.id,
            name=noise.name,
            max_instances=1,
            coalesce=True,
        )
    if schools is not None:
        scheduler.add_job(
            schools.run,
            IntervalTrigger(minutes=schools.every_minutes),
            id=schools.id,
            name=schools.name,
            max_instances=1,
            coalesce=True,
        )
    scheduler.add_job(
        trim_heap,
        IntervalTrigger(seconds=HEAP_TRIM_SECONDS),
        id="heap-trim",
        name="return freed memory to the system",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler


def start_checks(
    job: OverdueReferrals,
    *,
    config: SchoolConfig,
    more: Sequence[_Batched] = (),
) -> AsyncIOScheduler:
    """Start APScheduler with the checks, in the leader only; each also runs at once
    (catch-up, and a new leader's first pass)."""
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    scheduler.add_job(
        job.run,
        IntervalTrigger(minutes=config.check_every_minutes),
        id=job.id,
        name=job.name,
        next_run_time=dt.datetime.now(dt.UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    for other in more:
        minutes = (
            urgent_check_minutes(config)
            if isinstance(other, UrgentEscalations)
            else config.check_every_minutes
        )
        scheduler.add_job(
            other.run,
            IntervalTrigger(minutes=minutes),
            id=other.id,
            name=other.name,
            next_run_time=dt.datetime.now(dt.UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    return scheduler
