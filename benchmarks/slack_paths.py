"""The Slack paths of DESIGN §10, driven through the real server and the Slack stand-in.

Each scenario warms up, then sends `total` signed requests from concurrent simulated users
(one request in flight per user) and returns latency samples in seconds. The same
functions drive the bare Bolt floor (`benchmarks.floor`) through a `SlackTarget` of its
own. The server runs in another process: what it stored is read through the benchmark's
own connection to the same database, never through the server's objects.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from benchmarks.database import count_rows
from benchmarks.load import BenchmarkError, Measured, TimedSimulator, drive, errors_of, last_timing
from benchmarks.seed import NARRATIVES as SEEDED_NARRATIVES
from bot.tasks import cancel
from handlers.concern_modal import PUPIL_SEARCH
from scheduler.delivery import METADATA_TYPE
from store import outbox
from store.access import is_keyholder
from store.db import SessionFactory
from store.incidents import MAX_ALSO_ALERT
from store.models import Incident, OutboxMessage
from testing.school import FORENAMES, SURNAMES, DemoPupil, DemoStaff
from testing.standin import RecordedCall, SlackStandIn

NARRATIVES = SEEDED_NARRATIVES[:4]  # what the measured submissions say
SAFE_CATEGORIES = ("Well-being", "Behaviour", "Attendance", "Medical", "Parent conversations")
ALERTED = 30  # DESIGN §10: "submission → all 30 alerts delivered"
RATE_LIMIT_PER_SECOND = 10.0  # the stand-in's chat.postMessage limit in the 429 runs
MAX_RUN_S = 3600.0  # no background loop of the benchmark outlives an hour
SETTLE_S = 0.2  # lets a server finish work it spawned after answering (e.g. tailoring a modal)


@dataclass
class SlackTarget:
    """A server the Slack scenarios drive: its simulator, the stand-in it calls, how to
    read its CPU time and (Vigil only) the benchmark's own session factory on its
    database."""

    sim: TimedSimulator
    standin: SlackStandIn
    command: str
    cpu: Callable[[], float]
    factory: SessionFactory | None = None

    @property
    def db(self) -> SessionFactory:
        if self.factory is None:
            raise BenchmarkError("this target has no database")
        return self.factory


# -- helpers -----------------------------------------------------------------------------


def find_views_open(standin: SlackStandIn, trigger_id: str) -> RecordedCall | None:
    """The views.open call the stand-in received for `trigger_id` (newest first)."""
    for call in reversed(standin.calls):
        if call.method == "views.open" and call.params.get("trigger_id") == trigger_id:
            return call
    return None


async def open_view(sim: TimedSimulator, standin: SlackStandIn, user: str, command: str) -> dict:
    """/concern from `user`; the modal as the stand-in holds it (safe under concurrency)."""
    response = await sim.slash_command(user, command=command)
    if response.status != 200:
        raise BenchmarkError(f"{command} answered {response.status}: {response.body[:200]}")
    trigger_id = last_timing().form_field("trigger_id") or ""
    call = find_views_open(standin, trigger_id)
    if call is None or not call.ok:
        raise BenchmarkError(f"no successful views.open for {command} ({call and call.describe()})")
    assert call.response is not None
    return standin.views[call.response["view"]["id"]]


async def pick_pupil(
    sim: TimedSimulator, user: str, view: dict[str, Any], query: str
) -> dict[str, Any]:
    """Type into the pupil typeahead and take the first option."""
    response = await sim.block_suggestion(
        user, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value=query
    )
    options = (response.json or {}).get("options") or []
    if response.status != 200 or not options:
        raise BenchmarkError(f"no pupil matches {query!r} ({response.status})")
    return options[0]


def typeahead_queries(pupils: Sequence[DemoPupil], count: int, rng: random.Random) -> list[str]:
    """What staff type: 2-4 letters of a forename or surname, now and then a full UPN."""
    queries = []
    for index in range(count):
        if index % 10 == 9:
            queries.append(rng.choice(pupils).upn)
            continue
        name = rng.choice(FORENAMES if rng.random() < 0.5 else SURNAMES)
        prefix = name[: rng.randint(2, 4)]
        queries.append(prefix.lower() if rng.random() < 0.7 else prefix)
    return queries


def submission_values(
    pupil_option: dict[str, Any], rng: random.Random, *, also_alert: Sequence[str] = ()
) -> dict[str, Any]:
    """A complete, valid concern form (what a teacher fills in)."""
    values: dict[str, Any] = {
        "pupil": pupil_option,
        "narrative": rng.choice(NARRATIVES),
        "categories": rng.sample(SAFE_CATEGORIES, rng.randint(1, 2)),
        "parents_contacted": "yes",
    }
    if rng.random() < 0.25:
        values["parents_contacted"] = "no"
        values["parents_reason"] = "Speaking to the DSL first."
    if also_alert:
        values["also_alert"] = list(also_alert)
    return values


class StandInJanitor:
    """Keeps the stand-in's memory flat while a scenario runs.

    The stand-in records every call, view and message; over thousands of requests that
    grows the heap of the very process being measured (and with it every full garbage
    collection). Real Slack keeps that state on its side, so the janitor forgets calls
    answered more than `keep_s` ago and, when told, the messages posted so far.
    """

    def __init__(self, standin: SlackStandIn, *, keep_s: float = 5.0, interval: float = 0.25):
        self.standin = standin
        self.keep_s = keep_s
        self.interval = interval
        self.drop_messages = True
        self._task: asyncio.Task[None] | None = None

    def sweep(self) -> None:
        now = time.monotonic()
        self.standin.calls[:] = [
            c
            for c in self.standin.calls
            if c.answered_at is None or now - c.answered_at < self.keep_s
        ]
        if self.drop_messages:
            self.standin.messages.clear()
            self.standin.ephemerals.clear()

    async def _loop(self) -> None:
        for _ in range(int(MAX_RUN_S / self.interval)):  # bounded; normally cancelled by stop()
            await asyncio.sleep(self.interval)
            self.sweep()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="benchmark-janitor")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None


def forget_view(standin: SlackStandIn, view_id: str) -> None:
    """Drop a view the benchmark is done with (Slack would have closed the modal)."""
    standin.views.pop(view_id, None)
    standin.view_users.pop(view_id, None)


# -- 1. /concern → views.open ------------------------------------------------------------


async def wait_views_open(standin: SlackStandIn, trigger_id: str) -> RecordedCall | None:
    """The answered views.open call for `trigger_id`; waits (bounded) if it is not in yet."""
    deadline = time.monotonic() + 5.0
    while True:
        call = find_views_open(standin, trigger_id)
        if (call is not None and call.answered_at is not None) or time.monotonic() > deadline:
            return call
        await asyncio.sleep(0.005)


async def slash_command(
    target: SlackTarget, users: Sequence[str], *, total: int, warmup: int
) -> tuple[Measured, Measured]:
    """C users type /concern; (views.open received, HTTP answered) latencies.

    With `process_before_response` the listener has called views.open before the ack
    goes back, so the matching call (by trigger_id) is looked up once the answer is in.
    """
    sim, standin, command = target.sim, target.standin, target.command

    async def one(user: str, _index: int) -> tuple[float, float]:
        response = await sim.slash_command(user, command=command)
        timing = last_timing()
        if response.status != 200:
            raise BenchmarkError(f"{command} answered {response.status}")
        call = await wait_views_open(standin, timing.form_field("trigger_id") or "")
        if call is None or not call.ok or call.response is None:
            raise BenchmarkError(f"views.open missing or failed: {call and call.describe()}")
        forget_view(standin, call.response["view"]["id"])
        return call.at - timing.sent_monotonic, timing.http_s

    warm = await drive(users, warmup, one)
    result = await drive(users, total, one, offset=warmup, server_cpu=target.cpu)
    errors = errors_of(warm, result)
    return (
        Measured.of(result, [o for o, _ in result.samples], errors),
        Measured.of(result, [h for _, h in result.samples], errors),
    )


# -- 2. pupil typeahead ------------------------------------------------------------------


async def typeahead(
    target: SlackTarget,
    views: dict[str, dict[str, Any]],
    queries: Sequence[str],
    *,
    total: int,
    warmup: int,
) -> Measured:
    """C users type into the pupil picker; HTTP round trips, options per answer checked."""
    users = list(views)
    sim = target.sim

    async def one(user: str, index: int) -> tuple[float, int]:
        response = await sim.block_suggestion(
            user,
            view=views[user],
            action_id=PUPIL_SEARCH,
            block_id="pupil",
            value=queries[index % len(queries)],
        )
        timing = last_timing()
        if response.status != 200 or response.json is None:
            raise BenchmarkError(f"block_suggestion answered {response.status}")
        return timing.http_s, len(response.json.get("options") or [])

    warm = await drive(users, warmup, one)
    result = await drive(users, total, one, offset=warmup, server_cpu=target.cpu)
    counts = [n for _, n in result.samples]
    extra = {
        "max_options": max(counts, default=0),
        "non_empty_answers": sum(1 for n in counts if n),
        "mean_options": round(sum(counts) / len(counts), 1) if counts else 0,
        "all_within_100_options": all(n <= 100 for n in counts),
    }
    return Measured.of(result, [s for s, _ in result.samples], errors_of(warm, result), extra)


# -- 3. modal submission → answered ------------------------------------------------------


async def _submit(sim: TimedSimulator, user: str, view: dict, values: dict) -> float:
    response = await sim.view_submission(user, view=view, values=values)
    timing = last_timing()
    if response.status != 200:
        raise BenchmarkError(f"view_submission answered {response.status}")
    if (response.json or {}).get("response_action") == "errors":
        raise BenchmarkError(f"submission refused: {sorted(response.json['errors'])}")
    return timing.http_s


def submission_forms(
    option_pool: Sequence[dict[str, Any]], count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """`count` filled-in forms, each about a pupil picked through the real typeahead."""
    return [submission_values(rng.choice(option_pool), rng) for _ in range(count)]


async def submission(
    target: SlackTarget,
    templates: dict[str, dict[str, Any]],
    forms: Sequence[dict[str, Any]],
    *,
    total: int,
    warmup: int,
) -> Measured:
    """C users press Submit on a filled-in modal; HTTP round trip of the view_submission.

    Each user's modal is one Vigil really opened for them (`templates`); every submission
    carries it under a fresh view id, as Slack would for a new modal, so the payload is
    byte for byte what Slack sends without a /concern + typeahead before each submit.
    The floor receives exactly the same payloads.
    """
    users = list(templates)
    sim = target.sim

    async def one(user: str, index: int) -> float:
        view = {**templates[user], "id": "V" + uuid.uuid4().hex[:10].upper()}
        return await _submit(sim, user, view, forms[index % len(forms)])

    warm = await drive(users, warmup, one)
    result = await drive(users, total, one, offset=warmup, server_cpu=target.cpu)
    return Measured.of(result, list(result.samples), errors_of(warm, result))


async def incident_count(factory: SessionFactory) -> int:
    """Incidents filed so far."""
    return await count_rows(factory, Incident)


async def sent_count(factory: SessionFactory) -> int:
    """Outbox messages delivered so far."""
    return await count_rows(factory, OutboxMessage, OutboxMessage.status == outbox.SENT)


async def wait_outbox_empty(factory: SessionFactory, *, timeout: float) -> tuple[float, int]:
    """Wait (bounded) until the server's worker has nothing pending; (seconds, pending)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    pending = -1
    while time.monotonic() < deadline:
        async with factory() as session:
            pending = await outbox.pending_count(session)
        if pending == 0:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - started, pending


# -- 4. submission → all 30 alerts delivered ---------------------------------------------


@dataclass(frozen=True)
class AlertPlan:
    author: str
    pupil: DemoPupil
    also_alert: list[str]
    recipients: list[str]  # Slack ids of everyone who must get exactly one alert


def plan_alerts(staff: Sequence[DemoStaff], pupils: Sequence[DemoPupil], author: str) -> AlertPlan:
    """A concern that alerts exactly 30 people: the key-holders plus `also_alert` picks."""
    taught = {group for s in staff for group in s.classes.split(";") if group}
    pupil = next((p for p in pupils if p.registration_group not in taught), None)
    if pupil is None:
        raise BenchmarkError("every class has a teacher on the roster; cannot plan 30 alerts")

    def roles(s: DemoStaff) -> frozenset[str]:
        return frozenset(r for r in s.roles.split(";") if r)

    keyholders = [s.slack_user_id for s in staff if is_keyholder(roles(s))]
    keyholders = [k for k in keyholders if k != author]
    others = [
        s.slack_user_id
        for s in staff
        if s.slack_user_id != author and s.slack_user_id not in keyholders
    ]
    need = ALERTED - len(keyholders)
    if need < 0 or need > MAX_ALSO_ALERT or need > len(others):
        raise BenchmarkError(f"cannot reach {ALERTED} recipients ({len(keyholders)} key-holders)")
    also = others[:need]
    return AlertPlan(author, pupil, also, keyholders + also)


def _outbox_id(call: RecordedCall) -> int | None:
    metadata = call.params.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_TYPE:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    return value if isinstance(value, int) else None


async def alert_run(
    target: SlackTarget, plan: AlertPlan, rng: random.Random, *, rate_limited: bool
) -> dict[str, Any]:
    """File one concern alerting 30 people; time until the stand-in has all 30 + receipt."""
    standin, sim, factory = target.standin, target.sim, target.db
    view = await open_view(sim, standin, plan.author, target.command)
    option = await pick_pupil(sim, plan.author, view, plan.pupil.upn)
    values = submission_values(option, rng, also_alert=plan.also_alert)
    await asyncio.sleep(SETTLE_S)
    standin.clear_calls()
    if rate_limited:
        standin.rate_limit(
            "chat.postMessage", per_second=RATE_LIMIT_PER_SECOND, retry_after=1
        )  # a fresh, full bucket for each run
    try:
        response = await sim.view_submission(plan.author, view=view, values=values)
        timing = last_timing()
        if response.status != 200 or (response.json or {}).get("response_action") == "errors":
            raise BenchmarkError(f"submission refused: {response.status} {response.body[:200]}")
        async with factory() as session:
            incident = await session.scalar(
                select(Incident).where(Incident.slack_view_id == view["id"])
            )
            if incident is None:
                raise BenchmarkError("the submission filed no incident")
            rows = (
                await session.execute(
                    select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.channel).where(
                        OutboxMessage.incident_id == incident.id
                    )
                )
            ).all()
        alerts = {row.id: row.channel for row in rows if row.kind == outbox.ALERT}
        receipts = {row.id: row.channel for row in rows if row.kind == outbox.RECEIPT}
        if sorted(alerts.values()) != sorted(plan.recipients) or len(receipts) != 1:
            raise BenchmarkError(
                f"expected {ALERTED} alerts + 1 receipt, outbox has {len(alerts)} + {len(receipts)}"
            )
        wanted = set(alerts) | set(receipts)

        deadline = time.monotonic() + (30.0 if rate_limited else 10.0)
        first_ok: dict[int, RecordedCall] = {}
        while time.monotonic() < deadline:  # bounded poll; timing comes from RecordedCall.at
            for call in standin.calls:
                if call.method == "chat.postMessage" and call.ok:
                    oid = _outbox_id(call)
                    if oid in wanted and oid not in first_ok:
                        first_ok[oid] = call
            if len(first_ok) == len(wanted):
                break
            await asyncio.sleep(0.005)
        delivered_s = (
            max(c.at for c in first_ok.values()) - timing.sent_monotonic
            if len(first_ok) == len(wanted)
            else None
        )
        alerts_only_s = (
            max(c.at for oid, c in first_ok.items() if oid in alerts) - timing.sent_monotonic
            if set(alerts) <= set(first_ok)
            else None
        )

        # Let the worker record everything, then count what each person received.
        while time.monotonic() < deadline:
            unsent = await count_rows(
                factory,
                OutboxMessage,
                OutboxMessage.id.in_(wanted),
                OutboxMessage.status != outbox.SENT,
            )
            if not unsent:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a late duplicate would land here
        per_recipient = {
            user: sum(
                1
                for m in standin.messages_for_user(user)
                if ((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id") in alerts
            )
            for user in plan.recipients
        }
        receipt_count = sum(
            1
            for m in standin.messages_for_user(plan.author)
            if ((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id") in receipts
        )
        ok_calls = [
            c for c in standin.calls_to("chat.postMessage", ok_only=True) if _outbox_id(c) in wanted
        ]
        exactly_once = (
            all(n == 1 for n in per_recipient.values())
            and receipt_count == 1
            and len(ok_calls) == len(wanted)
        )
        return {
            "incident": incident.number,
            "submission_http_ms": round(timing.http_s * 1000, 3),
            "all_delivered_ms": round(delivered_s * 1000, 3) if delivered_s is not None else None,
            "alerts_delivered_ms": (
                round(alerts_only_s * 1000, 3) if alerts_only_s is not None else None
            ),
            "alerts": len(alerts),
            "delivered": len(first_ok),
            "rate_limited_answers": sum(
                1 for c in standin.calls_to("chat.postMessage") if c.fault == "rate_limit"
            ),
            "recipients_with_one_alert": sum(1 for n in per_recipient.values() if n == 1),
            "duplicates": sum(max(0, n - 1) for n in per_recipient.values())
            + max(0, receipt_count - 1),
            "receipts": receipt_count,
            "exactly_once": exactly_once,
        }
    finally:
        standin.clear_faults()
