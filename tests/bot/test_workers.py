"""Several processes (DESIGN §9, issue 17): `vigil serve --workers N` and replicas on one
PostgreSQL. Real processes against the Slack stand-in; every wait is bounded and every
process is stopped (or killed) at the end.

- One port, N workers and a delivery process; a worker killed is started again, and
  SIGTERM stops them all.
- Exactly one process runs the scheduled checks; killed with SIGKILL, another takes them
  over within seconds, and no escalation or DM is sent twice.
- On SQLite, more than one worker is refused in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from benchmarks.processes import ServerProcess, free_port, run_vigil, vigil_process
from handlers.concern_modal import PUPIL_SEARCH
from store import outbox
from store.crypto import generate_key
from store.db import create_engine, session_factory
from store.models import UrgentEscalation
from testing.school import STAFF, TEAM_ID, TEAM_NAME, fictional_pupils, pupils_csv, staff_csv
from testing.simulator import SlackSimulator
from testing.standin import SlackStandIn
from tests.bot.test_serve import vigil_command, vigil_env
from tests.support.outbox_checks import outbox_id
from tests.support.school import PUPIL_4B, TEACHER

SIGNING_SECRET = "workers-test-signing-secret"
NARRATIVE = "Said nobody was home last night and there was no food in the house."


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME) as running:
        for person in STAFF:
            running.add_user(person.slack_user_id, email=person.email, name=person.name)
        yield running


def environment(pg_url: str, standin: SlackStandIn, config: Path) -> dict[str, str]:
    return {
        "VIGIL_DATABASE_URL": pg_url,
        "SLACK_BOT_TOKEN": standin.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "VIGIL_SLACK_API_URL": standin.api_url,
        "VIGIL_PORT": str(free_port()),
        "VIGIL_DATA_KEY": generate_key(),
        "VIGIL_LOG_LEVEL": "INFO",
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_SLACK_TIMEOUT": "1",
        "VIGIL_OUTBOX_LEASE_SECONDS": "2",
        "VIGIL_CONFIG": str(config),
    }


def school_config(directory: Path) -> Path:
    """Urgent concerns escalate every 3 s (checked every 1.5 s)."""
    path = directory / "vigil.toml"
    path.write_text("[urgent]\nescalate_every_minutes = 0.05\n", encoding="utf-8")
    return path


async def prepare(env: dict[str, str], directory: Path) -> None:
    """The rosters imported as a school does (the workspace is registered by a start)."""
    (directory / "staff.csv").write_text(staff_csv(STAFF), encoding="utf-8")
    (directory / "pupils.csv").write_text(pupils_csv(fictional_pupils(30)), encoding="utf-8")
    for kind in ("staff", "pupils"):
        await run_vigil(["import", kind, f"{kind}.csv", "--team", TEAM_ID], env=env, cwd=directory)


async def submit(slack: SlackSimulator, standin: SlackStandIn, *, urgent: bool = False) -> None:
    """/concern, the pupil, submit: as a teacher does it."""
    before = len(standin.calls_to("views.open", ok_only=True))
    response = await slack.slash_command(TEACHER)
    assert response.status == 200, response.body
    opened = (await standin.wait_for_calls("views.open", before + 1, timeout=10))[before]
    view = standin.views[opened.response["view"]["id"]]  # type: ignore[index]
    suggestion = await slack.block_suggestion(
        TEACHER, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value=PUPIL_4B
    )
    (pupil, *_) = (suggestion.json or {})["options"]
    values = {
        "pupil": pupil,
        "narrative": NARRATIVE,
        "categories": ["Well-being"],
        "parents_contacted": "yes",
    }
    if urgent:
        values["urgent"] = ["urgent"]
    submitted = await slack.view_submission(TEACHER, view=view, values=values)
    assert submitted.status == 200 and not submitted.body, submitted.body


def successes(standin: SlackStandIn) -> dict[int, int]:
    """Outbox id → how many times Slack accepted it."""
    counted: dict[int, int] = {}
    for call in standin.calls_to("chat.postMessage"):
        if call.ok:
            counted[outbox_id(call)] = counted.get(outbox_id(call), 0) + 1
    return counted


async def wait_until(check: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


def log_of(server: ServerProcess) -> str:
    return server.log_tail(100_000)


# -- the leader dies: the checks move, nothing twice ---------------------------------------


async def test_the_leader_killed_hands_the_checks_to_another_process_and_nothing_is_sent_twice(
    pg_url: str, tmp_path: Path, standin: SlackStandIn
) -> None:
    env = environment(pg_url, standin, school_config(tmp_path))
    servers: list[ServerProcess] = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        own = {**env, "VIGIL_PORT": str(free_port())}  # the same database and key
        servers.append(vigil_process(env=own, cwd=directory))
    engine = create_engine(pg_url)
    factory = session_factory(engine)

    async def steps() -> list[UrgentEscalation]:
        async with factory() as session:
            found = await session.scalars(select(UrgentEscalation).order_by(UrgentEscalation.step))
            return list(found.all())

    try:
        await servers[0].start()
        await prepare(servers[0].env, tmp_path)
        await servers[1].start()

        async def one_leader() -> bool:
            return sum("scheduler.leader" in log_of(s) for s in servers) == 1

        await wait_until(one_leader, timeout=10, what="no process took the lead")
        await asyncio.sleep(3)  # the other keeps asking, and is refused
        leaders = [s for s in servers if "scheduler.leader" in log_of(s)]
        assert len(leaders) == 1, [log_of(s)[-2000:] for s in servers]
        (leader,) = leaders
        (other,) = [s for s in servers if s is not leader]

        async with SlackSimulator(
            app_url=f"{other.url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=standin,
            team_id=TEAM_ID,
        ) as slack:
            await submit(slack, standin, urgent=True)

        async def escalated_twice() -> bool:
            return len(await steps()) >= 2

        await wait_until(escalated_twice, timeout=20, what="the leader did not escalate")
        assert "urgent.escalated" in log_of(leader)
        assert "urgent.escalated" not in log_of(other)  # one process runs the checks
        await leader.kill()  # SIGKILL: no goodbye, its lock goes with its connection
        killed_at = time.monotonic()
        before = len(await steps())

        async def took_over() -> bool:
            return "scheduler.leader" in log_of(other)

        await wait_until(took_over, timeout=10, what="nobody took over the checks")
        taken_in = time.monotonic() - killed_at

        async def escalated_again() -> bool:
            return len(await steps()) >= before + 2

        await wait_until(escalated_again, timeout=20, what="the checks stopped with the leader")
        assert "urgent.escalated" in log_of(other)

        async def drained() -> bool:
            async with factory() as session:
                return await outbox.pending_count(session) == 0

        await wait_until(drained, timeout=20, what="the outbox did not drain")
        await other.stop()
    finally:
        for server in servers:
            await server.kill()
        rows = await steps()
        await engine.dispose()
    assert taken_in < 10
    # Each step once (the table would refuse a second), in order, with none skipped twice.
    numbers = [row.step for row in rows]
    assert numbers == sorted(set(numbers)), numbers
    # Every DM (the alerts, the receipt, each escalation) reached Slack exactly once.
    counted = successes(standin)
    assert counted and set(counted.values()) == {1}, counted


# -- vigil serve --workers N -------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_workers(
    directory: Path, env: dict[str, str], workers: int
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    log_path = directory / "workers.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *vigil_command("serve", "--workers", str(workers)),
            cwd=directory,
            env=vigil_env(**env),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield process, log_path
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def healthy(url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"{url}/healthz") as reply,
        ):
            return reply.status == 200
    return False


def started_pids(log: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for line in log.splitlines():
        if "vigil.worker_started" in line:
            role = re.search(r'"worker": "([^"]+)"', line)
            pid = re.search(r'"pid": (\d+)', line)
            if role and pid:
                found.setdefault(role.group(1), []).append(int(pid.group(1)))
    return found


async def test_two_workers_share_one_port_a_dead_one_comes_back_and_sigterm_stops_all(
    pg_url: str, tmp_path: Path, standin: SlackStandIn
) -> None:
    env = environment(pg_url, standin, school_config(tmp_path))
    url = f"http://127.0.0.1:{env['VIGIL_PORT']}"
    async with serve_workers(tmp_path, env, 2) as (process, log_path):

        async def up() -> bool:
            return await healthy(url) and "vigil.workers_started" in log_path.read_text()

        await wait_until(up, timeout=60, what="the workers did not start")
        await prepare(env, tmp_path)
        pids = started_pids(log_path.read_text())
        assert set(pids) == {"worker-1", "worker-2", "delivery"}, pids

        # A concern submitted to the shared port: its DMs go out through the delivery
        # process (woken by NOTIFY), each once.
        async with SlackSimulator(
            app_url=f"{url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=standin,
            team_id=TEAM_ID,
        ) as slack:
            await submit(slack, standin)
        await standin.wait_for_calls("chat.postMessage", 2, timeout=10)

        os.kill(pids["worker-2"][0], signal.SIGKILL)

        async def restarted() -> bool:
            return len(started_pids(log_path.read_text()).get("worker-2", [])) == 2

        await wait_until(restarted, timeout=15, what="the dead worker was not started again")
        assert "vigil.worker_died" in log_path.read_text()
        await wait_until(lambda: healthy(url), timeout=10, what="the port stopped answering")

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(40):
            assert await process.wait() == 0
    log = log_path.read_text()
    assert "vigil.workers_stopped" in log
    for role_pids in started_pids(log).values():
        for pid in role_pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # none outlives the parent
    counted = successes(standin)
    assert counted and set(counted.values()) == {1}, counted


def test_sqlite_refuses_more_than_one_worker_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        vigil_command("serve", "--workers", "2"),
        cwd=tmp_path,
        env=vigil_env(
            VIGIL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}",
            SLACK_BOT_TOKEN="xoxb-standin",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            VIGIL_DATA_KEY=generate_key(),
            VIGIL_PORT=str(free_port()),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--workers 2 needs PostgreSQL" in lines[0] and "SQLite" in lines[0]


def test_each_process_pool_shrinks_with_workers_so_all_stay_below_postgresqls_default() -> None:
    from bot.settings import load_settings

    pg = "postgresql+asyncpg://vigil@db/vigil"
    for workers in range(1, 17):
        settings = load_settings(None, database_url=pg, workers=workers)
        delivery = 5 if settings.delivery_process else 0  # a pool of 2 (+2), LISTEN
        assert workers * (2 * settings.pool_size + 2) + delivery < 100, workers
    assert load_settings(None, database_url=pg, workers=1).pool_size == 10
    assert load_settings(None, database_url=pg, workers=4, db_pool_size=5).pool_size == 5
    # The outbox leaves the request loop with several workers, or when asked.
    assert not load_settings(None, database_url=pg, workers=1).delivery_process
    assert load_settings(None, database_url=pg, workers=2).delivery_process
    assert load_settings(None, database_url=pg, outbox_delivery="process").delivery_process
