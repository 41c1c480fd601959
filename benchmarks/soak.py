"""The soak: a school's busiest realistic load for minutes on end (`--scenarios soak`).

`--soak-staff` members of staff (50) work at once against `vigil serve`, each with a
think time of `--soak-think` seconds (1-4) between actions, for `--soak-minutes` (10):

| share | what a person does |
|---|---|
| 25% | reports a concern: `/concern`, types into the pupil search, submits |
| 10% | searches for a pupil and gives up (the modal is closed) |
| 20% | taps Mark as read on an alert DM they have not read yet |
| 45% | a key-holder reads concerns in the web view (an incident page, or My alerts) |

Before it starts, `--incidents` concerns (100,000) are stored, as for the web group, so
the pages read are among as many as a large school keeps. Each request inside the actions
is also timed on its own and shown beside its DESIGN §10 target.

Every request must succeed; the server's resident memory is sampled every `SAMPLE_S`
seconds (more often in a short run). After the first `WARMUP_FRACTION` of the run
(imports, caches, pools and arenas settling) memory must not grow: the verdict compares
the medians of the first and last fifths of the remaining samples, and fits a line.
At the end the outbox must drain, each concern's DMs having arrived exactly once.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from benchmarks import slack_paths, web_paths
from benchmarks.deployment import COMMAND, Run, sign_in_keyholders
from benchmarks.load import BenchmarkError
from benchmarks.processes import cpu_seconds, memory_mb
from benchmarks.stats import summarize
from handlers.concern_modal import PUPIL_SEARCH
from scheduler.delivery import METADATA_TYPE
from store import outbox
from store.models import Incident, OutboxMessage
from testing.simulator import SlackSimulator

SAMPLE_S = 5.0
WARMUP_FRACTION = 0.2
GROWTH_LIMIT_MB = 10.0  # over the measured part of the run
ACTIONS = (("report", 25), ("search", 10), ("mark_read", 20), ("read_web", 45))


# Each request inside the actions, beside its DESIGN §10 target where it has one.
REQUESTS = {
    "concern_modal": ("/concern → modal open", "p99 < 50 ms (views.open)"),
    "typeahead": ("pupil typeahead", "p99 < 30 ms"),
    "submission": ("modal submission → answered", "p99 < 100 ms"),
    "mark_read": ("Mark as read → answered", ""),
    "incident_page": ("incident page", "p99 < 50 ms"),
    "my_alerts": ("My alerts page", ""),
}


@dataclass
class SoakState:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MB)
    counts: Counter[str] = field(default_factory=Counter)


def _pick(rng: random.Random) -> str:
    return rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]


def memory_growth(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """Growth over the measured part: medians of its first and last fifths, and slope."""
    if len(samples) < 10:
        return {"measured_samples": len(samples), "growth_mb": None, "slope_mb_per_min": None}
    end = samples[-1][0]
    measured = [(t, mb) for t, mb in samples if t >= end * WARMUP_FRACTION]
    fifth = max(1, len(measured) // 5)
    first = statistics.median(mb for _, mb in measured[:fifth])
    last = statistics.median(mb for _, mb in measured[-fifth:])
    times = [t / 60 for t, _ in measured]
    values = [mb for _, mb in measured]
    slope = statistics.linear_regression(times, values).slope if len(set(times)) > 1 else 0.0
    return {
        "measured_samples": len(measured),
        "first_fifth_mb": round(first, 1),
        "last_fifth_mb": round(last, 1),
        "growth_mb": round(last - first, 1),
        "slope_mb_per_min": round(slope, 3),
    }


async def _sample_memory(
    pid: int, state: SoakState, started: float, stop: asyncio.Event, every: float
) -> None:
    while not stop.is_set():
        state.memory.append((time.monotonic() - started, memory_mb(pid)["rss_mb"]))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def run_soak(run: Run) -> dict[str, Any]:
    """Drive the mixed load; the soak's summary for the report (`raw["soak"]`)."""
    options, say = run.options, run.say
    minutes, staff_count = options.soak_minutes, options.soak_staff
    think_low, think_high = options.soak_think
    rng = random.Random(options.seed + 1)
    reporters = [s.slack_user_id for s in run.staff if s.roles == "teacher"][:staff_count]
    if len(reporters) < staff_count:
        raise BenchmarkError(f"only {len(reporters)} teachers for the soak")
    readers = await sign_in_keyholders(run.vigil_sim, run.staff, run.vigil.url)
    clients = web_paths.PageClients(staff_count)
    state = SoakState()
    stop = asyncio.Event()
    started = time.monotonic()
    deadline = started + minutes * 60
    cpu_start = cpu_seconds(run.vigil.pid)
    async with run.factory() as session:
        incidents_before = int(await session.scalar(select(func.count(Incident.id))) or 0)
        last_at_start = int(await session.scalar(select(func.max(Incident.number))) or 0)
    every = min(SAMPLE_S, minutes * 60 / 30)  # at least 30 samples, however short the run
    sampler = asyncio.create_task(_sample_memory(run.vigil.pid, state, started, stop, every))
    say(f"soak: {staff_count} staff for {minutes:g} min, think {think_low:g}-{think_high:g} s")

    async def timed(action: str, work: Any) -> None:
        began = time.perf_counter()
        try:
            await work
        except Exception as error:  # every failure is counted and reported
            state.errors.append(f"{action}: {type(error).__name__}: {str(error)[:120]}")
            return
        state.latencies[action].append(time.perf_counter() - began)
        state.counts[action] += 1

    async def step(name: str, work: Any) -> Any:
        """One request inside an action, timed on its own."""
        began = time.perf_counter()
        result = await work
        state.requests[name].append(time.perf_counter() - began)
        return result

    async def report(sim: SlackSimulator, user: str) -> None:
        view = await step("concern_modal", slack_paths.open_view(sim, run.standin, user, COMMAND))
        query = rng.choice(run.pupils).surname[: rng.randint(2, 4)]
        response = await step(
            "typeahead",
            sim.block_suggestion(
                user, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value=query
            ),
        )
        options_found = (response.json or {}).get("options") or []
        if response.status != 200 or not options_found:
            raise BenchmarkError(f"typeahead {response.status}")
        values = slack_paths.submission_values(rng.choice(options_found), rng)
        answer = await step("submission", sim.view_submission(user, view=view, values=values))
        if answer.status != 200 or answer.body:
            raise BenchmarkError(f"submission {answer.status} {answer.body[:80]}")
        run.standin.views.pop(view["id"], None)  # Slack forgets a closed modal

    async def search(sim: SlackSimulator, user: str) -> None:
        view = await step("concern_modal", slack_paths.open_view(sim, run.standin, user, COMMAND))
        for length in (2, 3, 4):
            query = rng.choice(run.pupils).forename[:length]
            response = await step(
                "typeahead",
                sim.block_suggestion(
                    user, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value=query
                ),
            )
            if response.status != 200:
                raise BenchmarkError(f"typeahead {response.status}")
        run.standin.views.pop(view["id"], None)

    async def mark_read(sim: SlackSimulator, user: str) -> None:
        channel = run.standin.dm_channel_for(user)
        unread = [
            m for m in run.standin.messages_in(channel) if "alert_mark_read" in str(m.get("blocks"))
        ]
        if not unread:
            state.counts["mark_read_nothing_unread"] += 1
            return
        response = await step(
            "mark_read",
            sim.click_button(user, rng.choice(unread), "alert_mark_read", channel_id=channel),
        )
        if response.status != 200:
            raise BenchmarkError(f"mark as read {response.status}")

    async def read_web(reader: Any) -> None:
        # Numbers run on without gaps: the newest is known without asking the database
        # (a query here would load PostgreSQL with work that is not Vigil's).
        last = last_at_start + state.counts["report"]
        mine = last == 0 or rng.random() < 0.2
        path = "/alerts" if mine else f"/incidents/{rng.randint(1, last)}"
        status, _body, _ = await step(
            "my_alerts" if mine else "incident_page",
            clients.get(f"{run.vigil.url}{path}", cookie=reader.cookie),
        )
        if status != 200:
            raise BenchmarkError(f"GET {path} answered {status}")

    async def person(index: int) -> None:
        user = reporters[index]
        keyholder_reader = readers[index % len(readers)]
        sim = run.simulator(run.vigil.url)
        try:
            await asyncio.sleep(rng.uniform(0, think_high))  # people do not start in step
            while time.monotonic() < deadline:
                action = _pick(rng)
                if action == "report":
                    await timed(action, report(sim, user))
                elif action == "search":
                    await timed(action, search(sim, user))
                elif action == "mark_read":
                    # Whoever was alerted reads: key-holders get most alerts.
                    await timed(action, mark_read(sim, keyholder_reader.slack_user_id))
                else:
                    await timed(action, read_web(keyholder_reader))
                await asyncio.sleep(rng.uniform(think_low, think_high))
        finally:
            await sim.close()

    try:
        await asyncio.gather(*(person(i) for i in range(staff_count)))
    finally:
        stop.set()
        await sampler
        await clients.close()
    wall = time.monotonic() - started
    cpu = cpu_seconds(run.vigil.pid) - cpu_start
    say("soak: waiting for the outbox to drain")
    drained_in, still_pending = await slack_paths.wait_outbox_empty(run.factory, timeout=120)
    exactly_once = await _exactly_once(run)
    async with run.factory() as session:
        filed = int(await session.scalar(select(func.count(Incident.id))) or 0) - incidents_before

    actions = {
        name: summarize(values, wall_s=wall) for name, values in sorted(state.latencies.items())
    }
    requests_summary = {
        name: summarize(state.requests[name], wall_s=wall)
        for name in REQUESTS
        if name in state.requests
    }
    growth = memory_growth(state.memory)
    requests = sum(state.counts[a] for a, _ in ACTIONS)
    return {
        "minutes": minutes,
        "staff": staff_count,
        "think_s": [think_low, think_high],
        "wall_s": round(wall, 1),
        "actions": actions,
        "requests": requests_summary,
        "counts": dict(state.counts),
        "concerns_filed": filed,
        "concerns_stored_at_start": incidents_before,
        "reports_answered": state.counts["report"],
        "errors": state.errors[:50],
        "error_count": len(state.errors),
        "server_cpu_s": round(cpu, 1),
        "server_cpu_share": round(cpu / wall, 3) if wall else None,
        "actions_per_s": round(requests / wall, 2) if wall else None,
        "memory_samples": [(round(t, 1), round(mb, 1)) for t, mb in state.memory],
        "memory": growth,
        "outbox_drained_s": round(drained_in, 2),
        "outbox_still_pending": still_pending,
        "dms_exactly_once": exactly_once,
        "checks": {
            "soak_no_errors": not state.errors,
            "soak_every_report_filed": filed == state.counts["report"],
            "soak_no_memory_growth": growth["growth_mb"] is not None
            and growth["growth_mb"] < GROWTH_LIMIT_MB,
            "soak_outbox_drained": still_pending == 0,
            "soak_dms_exactly_once": exactly_once,
        },
    }


async def _exactly_once(run: Run) -> bool:
    """Every sent outbox row is exactly one message in the stand-in."""
    per_row: Counter[int] = Counter()
    for message in run.standin.messages.values():
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") == METADATA_TYPE:
            per_row[int(metadata["event_payload"]["outbox_id"])] += 1
    async with run.factory() as session:
        sent = set(
            await session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.status == outbox.SENT,
                    OutboxMessage.kind.in_([outbox.ALERT, outbox.RECEIPT]),
                )
            )
        )
    return set(per_row) == sent and all(count == 1 for count in per_row.values())
