"""A trust's busiest hour, open loop (`--scenarios trustday`, issue 17).

The model (printed with the figures):

- a multi-academy trust of `--trust-schools` schools (50) × `--trust-staff` staff (100);
- at the busiest hour of the day each member of staff takes `--trust-actions` actions (2),
  so the trust's peak is schools × staff × actions per hour (10,000 an hour, 2.8 a second);
- the actions are the soak's mix (`benchmarks.soak.ACTIONS`): 25% report a concern
  (`/concern`, pupil search, submit), 10% search and give up, 20% Mark as read on an
  alert DM, 45% a key-holder reads concerns in the web view (an incident page, or My
  alerts);
- arrivals are open loop: a Poisson process at the peak rate (and at twice it), each action
  started when its time comes whether or not the server has answered the earlier ones, so
  a slow server meets a growing queue, as it would on the day.

Each rate runs for `--trust-minutes` against `vigil serve --workers 1`, then
`--workers 2` (PostgreSQL only; on SQLite the 2-worker phases are skipped and say so),
restarted on the same database. The same arrivals are then sent to the bare-framework
floors (`benchmarks.floor`: Bolt for the Slack requests, aiohttp for the pages; Mark as
read has no floor). Reported per path: p50/p99 beside the floor's, and server CPU per
request (every process of `vigil serve`: workers and the outbox's delivery process, DMs
included) beside the floors'.

Correctness, per phase: every request answered (no error), every report filed, the
outbox drained; at the end every DM sent exactly once.

The workspaces: the whole trust's traffic goes to ONE workspace (single-workspace mode,
`SLACK_BOT_TOKEN`), since the stand-in's per-team OAuth installs are not yet wired into the
benchmark deployment; the per-request work is the same, what is not measured is the
per-workspace token and configuration lookups (`scheduler.slack_clients`,
`store.schools`). The report says so (`workspaces_served`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from benchmarks import slack_paths, web_paths
from benchmarks.deployment import COMMAND, SIGNING_SECRET, Run, sign_in_keyholders
from benchmarks.load import BenchmarkError
from benchmarks.processes import cpu_seconds, vigil_process
from benchmarks.soak import ACTIONS, REQUESTS, _exactly_once, _pick
from benchmarks.stats import ratio, summarize
from handlers.concern_modal import CALLBACK_ID, PUPIL_SEARCH
from store.models import Incident

RATES = (1.0, 2.0)  # multiples of the peak
PATHS = tuple(REQUESTS)  # concern_modal, typeahead, submission, mark_read, incident_page, …


@dataclass
class Phase:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    lag_s: float = 0.0  # the load generator's worst lateness against the schedule


def model(options: Any) -> dict[str, Any]:
    """The arrival model: schools × staff × actions at the busiest hour."""
    staff = options.trust_schools * options.trust_staff
    per_hour = staff * options.trust_actions
    requests_per_action = 0.25 * 3 + 0.10 * 4 + 0.20 * 1 + 0.45 * 1
    return {
        "schools": options.trust_schools,
        "staff_per_school": options.trust_staff,
        "actions_per_staff_at_peak_hour": options.trust_actions,
        "actions_per_hour": per_hour,
        "actions_per_s": round(per_hour / 3600, 3),
        "requests_per_s": round(per_hour / 3600 * requests_per_action, 2),
        "mix": {name: share for name, share in ACTIONS},
        "arrivals": "Poisson (open loop)",
        "minutes_per_phase": options.trust_minutes,
    }


def describe(m: dict[str, Any]) -> str:
    return (
        f"{m['schools']} schools × {m['staff_per_school']} staff × "
        f"{m['actions_per_staff_at_peak_hour']:g} actions at the busiest hour = "
        f"{m['actions_per_hour']:,.0f} actions/h = {m['actions_per_s']:g} actions/s "
        f"(~{m['requests_per_s']:g} requests/s); mix 25% report, 10% search and give up, "
        f"20% Mark as read, 45% read in the web view; Poisson arrivals"
    )


class Target:
    """Where an action's requests go: `vigil serve`, or the floors."""

    def __init__(self, run: Run, *, slack_url: str, web_url: str, floor: bool) -> None:
        self.run = run
        self.sim = run.simulator(slack_url)
        self.web_url = web_url
        self.floor = floor
        self.pages = web_paths.PageClients(20)

    async def close(self) -> None:
        await self.sim.close()
        await self.pages.close()


@dataclass
class Arrivals:
    """What every phase shares: the peak's rate, how long a phase runs, who reads, the
    modal each reporter opens, the random stream and the last concern's number."""

    peak_rate: float  # actions/s at 1× peak
    seconds: float
    readers: list[Any]
    templates: dict[str, dict[str, Any]]
    rng: random.Random
    last_number: list[int]


@dataclass
class Timed:
    """A phase driven: what happened, its wall time, the CPU seconds read before it."""

    phase: Phase
    wall: float
    cpu0: float


async def _timed(
    run: Run,
    arrivals: Arrivals,
    multiple: float,
    *,
    slack_url: str,
    web_url: str,
    floor: bool,
    cpu: Callable[[], float],
) -> Timed:
    """One phase at `multiple`× peak against `slack_url`/`web_url` (`cpu()`: the CPU
    seconds of the processes serving it)."""
    target = Target(run, slack_url=slack_url, web_url=web_url, floor=floor)
    cpu0, t0 = cpu(), time.monotonic()
    try:
        phase = await _drive(
            run,
            target,
            rate=arrivals.peak_rate * multiple,
            seconds=arrivals.seconds,
            readers=arrivals.readers,
            templates=arrivals.templates,
            rng=arrivals.rng,
            last_number=arrivals.last_number,
        )
    finally:
        await target.close()
    return Timed(phase, time.monotonic() - t0, cpu0)


async def _drive(
    run: Run,
    target: Target,
    *,
    rate: float,
    seconds: float,
    readers: list[Any],
    templates: dict[str, dict[str, Any]],
    rng: random.Random,
    last_number: list[int],
) -> Phase:
    """Poisson arrivals at `rate` actions/s for `seconds`; every action awaited at the end."""
    phase = Phase()
    reporters = run.users
    sim, standin = target.sim, run.standin

    async def step(name: str, work: Any) -> Any:
        began = time.perf_counter()
        result = await work
        phase.latencies[name].append(time.perf_counter() - began)
        return result

    async def modal(user: str) -> dict[str, Any]:
        if target.floor:  # the floor opens a tiny view; the form is Vigil's own modal
            response = await step("concern_modal", sim.slash_command(user, command=COMMAND))
            if response.status != 200:
                raise BenchmarkError(f"floor /concern {response.status}")
            return {**templates[user]}
        return await step("concern_modal", slack_paths.open_view(sim, standin, user, COMMAND))

    async def suggest(user: str, view: dict[str, Any], query: str) -> list[Any]:
        response = await step(
            "typeahead",
            sim.block_suggestion(
                user, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value=query
            ),
        )
        if response.status != 200:
            raise BenchmarkError(f"typeahead {response.status}")
        return list((response.json or {}).get("options") or [])

    async def report(user: str) -> None:
        view = await modal(user)
        pupil = rng.choice(run.pupils)
        found = await suggest(user, view, pupil.surname[: rng.randint(2, 4)])
        if not found and not target.floor:
            raise BenchmarkError("typeahead found nobody")
        option = found[0] if target.floor or not found else rng.choice(found)
        if target.floor:
            option = {"text": {"type": "plain_text", "text": "x"}, "value": "1"}
            view = {**view, "id": "V" + format(rng.getrandbits(40), "X")}
        values = slack_paths.submission_values(option, rng)
        answer = await step("submission", sim.view_submission(user, view=view, values=values))
        if answer.status != 200 or (not target.floor and answer.body):
            raise BenchmarkError(f"submission {answer.status} {answer.body[:80]!r}")
        if not target.floor:
            last_number[0] += 1
            standin.views.pop(view["id"], None)

    async def search(user: str) -> None:
        view = await modal(user)
        for length in (2, 3, 4):
            await suggest(user, view, rng.choice(run.pupils).forename[:length])
        if not target.floor:
            standin.views.pop(view["id"], None)

    async def mark_read(reader: Any) -> None:
        if target.floor:  # no floor for a button: not sent
            phase.counts["mark_read_no_floor"] += 1
            return
        channel = standin.dm_channel_for(reader.slack_user_id)
        unread = [
            m for m in standin.messages_in(channel) if "alert_mark_read" in str(m.get("blocks"))
        ]
        if not unread:
            phase.counts["mark_read_nothing_unread"] += 1
            return
        response = await step(
            "mark_read",
            sim.click_button(
                reader.slack_user_id, rng.choice(unread), "alert_mark_read", channel_id=channel
            ),
        )
        if response.status != 200:
            raise BenchmarkError(f"mark as read {response.status}")

    async def read_web(reader: Any) -> None:
        mine = rng.random() < 0.2
        number = rng.randint(1, max(1, last_number[0]))
        path = "/alerts" if mine and not target.floor else f"/incidents/{number}"
        status, _body, _ = await step(
            "my_alerts" if mine else "incident_page",
            target.pages.get(f"{target.web_url}{path}", cookie=reader.cookie),
        )
        if status != 200:
            raise BenchmarkError(f"GET {path} answered {status}")

    async def action(name: str) -> None:
        user = rng.choice(reporters)
        reader = rng.choice(readers)
        try:
            if name == "report":
                await report(user)
            elif name == "search":
                await search(user)
            elif name == "mark_read":
                await mark_read(reader)
            else:
                await read_web(reader)
        except Exception as error:  # every failure is counted and reported
            phase.errors.append(f"{name}: {type(error).__name__}: {str(error)[:120]}")
            return
        phase.counts[name] += 1

    started = time.monotonic()
    due = started
    tasks: list[asyncio.Task[None]] = []
    while True:
        due += rng.expovariate(rate)
        if due >= started + seconds:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        phase.lag_s = max(phase.lag_s, time.monotonic() - due)
        tasks.append(asyncio.create_task(action(_pick(rng))))
    await asyncio.gather(*tasks)
    return phase


def _summary(phase: Phase, *, wall: float, cpu: float) -> dict[str, Any]:
    requests = sum(len(v) for v in phase.latencies.values())
    return {
        "paths": {
            name: summarize(phase.latencies[name], wall_s=wall)
            for name in PATHS
            if phase.latencies.get(name)
        },
        "requests": requests,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_request": round(cpu * 1000 / requests, 2) if requests else None,
        "counts": dict(phase.counts),
        "errors": phase.errors[:20],
        "error_count": len(phase.errors),
        "generator_lag_ms": round(phase.lag_s * 1000, 1),
    }


async def _restart(run: Run, workers: int) -> None:
    """`vigil serve --workers N` on the same database and port."""
    await run.vigil.stop()
    env = {**run.env, "VIGIL_WORKERS": str(workers)}
    run.vigil = vigil_process(env=env, cwd=run.workdir)
    await run.vigil.start()


async def run_trustday(run: Run) -> dict[str, Any]:
    """The trust-day phases; their summary for the report (`raw["trustday"]`)."""
    options, say = run.options, run.say
    m = model(options)
    say(f"trust day: {describe(m)}")
    rng = random.Random(options.seed + 17)
    seconds = options.trust_minutes * 60
    readers = await sign_in_keyholders(run.vigil_sim, run.staff, run.vigil.url)
    templates = {
        user: await slack_paths.open_view(run.vigil_sim, run.standin, user, COMMAND)
        for user in run.users
    }
    async with run.factory() as session:
        last = int(await session.scalar(select(func.max(Incident.number))) or 0)
    arrivals = Arrivals(m["actions_per_s"], seconds, readers, templates, rng, [last])
    postgres = run.env["VIGIL_DATABASE_URL"].startswith("postgresql")
    phases: dict[str, Any] = {}
    skipped: list[str] = []
    checks: dict[str, bool] = {}
    for workers in (1, 2):
        if workers > 1 and not postgres:
            skipped.append("--workers 2 (SQLite serves one worker only)")
            continue
        if run.options.workers != workers or phases:
            await _restart(run, workers)
        for multiple in RATES:
            key = f"vigil_w{workers}_x{multiple:g}"
            say(f"trust day: vigil serve --workers {workers}, {multiple:g}× peak, {seconds:g} s")
            async with run.factory() as session:
                before = int(await session.scalar(select(func.count(Incident.id))) or 0)
            timed = await _timed(
                run,
                arrivals,
                multiple,
                slack_url=run.vigil.url,
                web_url=run.vigil.url,
                floor=False,
                cpu=lambda: cpu_seconds(run.vigil.pid),
            )
            phase, wall = timed.phase, timed.wall
            drained_s, pending = await slack_paths.wait_outbox_empty(run.factory, timeout=120)
            # DMs of this phase's concerns included
            cpu = cpu_seconds(run.vigil.pid) - timed.cpu0
            async with run.factory() as session:
                filed = int(await session.scalar(select(func.count(Incident.id))) or 0) - before
            summary = _summary(phase, wall=wall, cpu=cpu)
            summary.update(
                workers=workers,
                multiple=multiple,
                outbox_drained_s=round(drained_s, 2),
                outbox_still_pending=pending,
                concerns_filed=filed,
            )
            phases[key] = summary
            checks[f"trustday_{key}_no_errors"] = not phase.errors
            checks[f"trustday_{key}_every_report_filed"] = filed == phase.counts["report"]
            checks[f"trustday_{key}_outbox_drained"] = pending == 0
    checks["trustday_dms_exactly_once"] = await _exactly_once(run)

    floors = await _floor_phases(run, arrivals)
    for summary in phases.values():
        floor = floors.get(f"floor_x{summary['multiple']:g}", {})
        for name, entry in summary["paths"].items():
            floor_entry = floor.get("paths", {}).get(_floor_path(name), {})
            entry["floor_p50_ms"] = floor_entry.get("p50_ms")
            entry["floor_p99_ms"] = floor_entry.get("p99_ms")
            entry["ratio_p99"] = ratio(entry["p99_ms"], floor_entry.get("p99_ms"))
        summary["floor_cpu_ms_per_request"] = floor.get("cpu_ms_per_request")
    return {
        "model": m,
        "model_text": describe(m),
        "workspaces_served": 1,
        "workspaces_note": (
            "the whole trust's traffic goes to one workspace (single-workspace mode): the "
            "benchmark deployment does not yet install 50 workspaces through OAuth"
        ),
        "phases": phases,
        "floors": floors,
        "skipped": skipped,
        "checks": checks,
    }


def _floor_path(name: str) -> str:
    return "incident_page" if name == "my_alerts" else name


async def _floor_phases(run: Run, arrivals: Arrivals) -> dict[str, Any]:
    """The same arrivals against the bare Bolt and aiohttp floors."""
    floors: dict[str, Any] = {}
    async with (
        run.floor(
            "bolt",
            signing_secret=SIGNING_SECRET,
            token=run.standin.bot_token,
            api_url=run.standin.api_url,
            command=COMMAND,
            callback_id=CALLBACK_ID,
            options_action_id=PUPIL_SEARCH,
        ) as bolt,
        run.floor("web", size=12_000) as page,
    ):
        for multiple in RATES:
            run.say(f"trust day: floors, {multiple:g}× peak, {arrivals.seconds:g} s")
            timed = await _timed(
                run,
                arrivals,
                multiple,
                slack_url=bolt.url,
                web_url=page.url,
                floor=True,
                cpu=lambda: cpu_seconds(bolt.pid) + cpu_seconds(page.pid),
            )
            cpu = cpu_seconds(bolt.pid) + cpu_seconds(page.pid) - timed.cpu0
            if not bolt.separate:  # in-process floors: the benchmark's own CPU, meaningless
                cpu = float("nan")
            floors[f"floor_x{multiple:g}"] = _summary(timed.phase, wall=timed.wall, cpu=cpu)
    return floors


def trustday_lines(trust: dict[str, Any]) -> list[str]:
    """The trust day's lines for the printed table."""
    lines = [
        f"Trust day (open loop): {trust['model_text']}",
        f"  {trust['model']['minutes_per_phase']:g} min per phase; workspaces served: "
        f"{trust['workspaces_served']} ({trust['workspaces_note']})",
    ]
    for skipped in trust["skipped"]:
        lines.append(f"  skipped: {skipped}")
    header = f"  {'path':<34}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'floor p50':>11}{'floor p99':>11}"
    for phase in trust["phases"].values():
        lines.append(
            f"  vigil serve --workers {phase['workers']}, {phase['multiple']:g}× peak: "
            f"{phase['requests']} requests in {phase['wall_s']} s, CPU/req "
            f"{phase['cpu_ms_per_request']} ms (floors {phase.get('floor_cpu_ms_per_request')} "
            f"ms), {phase['concerns_filed']} concerns filed, outbox drained "
            f"{phase['outbox_drained_s']} s after, {phase['error_count']} errors, generator "
            f"lag {phase['generator_lag_ms']} ms"
        )
        lines.append(header)
        for name, entry in phase["paths"].items():
            lines.append(
                f"    {REQUESTS[name][0]:<32}{entry['count']:>6}{entry['p50_ms']:>9.1f}"
                f"{entry['p99_ms']:>9.1f}{_ms(entry.get('floor_p50_ms')):>11}"
                f"{_ms(entry.get('floor_p99_ms')):>11}"
            )
        for error in phase["errors"][:3]:
            lines.append(f"    error: {error}")
    failed = [k for k, v in trust["checks"].items() if not v]
    lines.append(
        "  correctness: "
        + ("PASS (every request answered, outbox drained, no DM twice)" if not failed else "")
        + (f"FAIL {', '.join(failed)}" if failed else "")
    )
    return lines


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
