"""Vigil deployed for a benchmark as a school deploys it, and what a run's groups share.

`vigil serve` is configured by environment variables (and a `.env` file for the two
settings Bolt must not find in the environment), its database is prepared with `vigil db
upgrade` and `vigil import staff|pupils` from CSV files, the Slack stand-in knows every
member of staff, and key-holders sign in to the web view as staff do (`/concern login`,
then TOTP). `Run` is everything the slack, web and soak groups of one run share.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import web_paths
from benchmarks.floor import bolt_app, web_app, web_db_app
from benchmarks.load import TimedSimulator
from benchmarks.options import Options
from benchmarks.processes import (
    InProcessFloor,
    Server,
    cpu_seconds,
    floor_process,
    free_port,
    memory_mb,
    run_vigil,
)
from bot.settings import write_env_file
from store.access import is_keyholder
from testing.school import (
    FORENAMES,
    STAFF,
    SURNAMES,
    TEAM_ID,
    TEAM_NAME,
    DemoPupil,
    DemoStaff,
    pupils_csv,
    staff_csv,
)
from testing.standin import SlackStandIn

SIGNING_SECRET = "standin-signing-secret"
PUBLIC_URL = "https://vigil.larkspur.example"  # what links say; rewritten to the server's
COMMAND = "/concern"
# Given to `vigil serve` in a `.env` file in its working directory rather than in its
# environment: Bolt's AsyncApp reads SLACK_CLIENT_ID/SLACK_CLIENT_SECRET from os.environ
# and, finding both, switches to OAuth installation-store mode and answers every Slack
# request "installation no longer available" (see README "Known app issues").
ENV_FILE_SETTINGS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def bench_staff(extra: int) -> tuple[DemoStaff, ...]:
    """The demo school's staff plus `extra` invented teachers without a class of their own."""
    invented = tuple(
        DemoStaff(
            slack_user_id=f"U0BENCH{i:04d}",
            email=f"bench.{i:04d}@larkspur.example",
            name=f"{FORENAMES[i % len(FORENAMES)]} {SURNAMES[(7 * i) % len(SURNAMES)]}",
            roles="teacher",
        )
        for i in range(1, extra + 1)
    )
    return (*STAFF, *invented)


def keyholders(staff: tuple[DemoStaff, ...]) -> list[str]:
    """The Slack ids of the key-holders among `staff`, in staff order."""
    return [s.slack_user_id for s in staff if is_keyholder(r for r in s.roles.split(";") if r)]


def vigil_environment(database_url: str, standin: SlackStandIn, data_key: str) -> dict[str, str]:
    """`vigil serve`'s configuration: what a school puts in its environment."""
    return {
        "VIGIL_DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": standin.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "VIGIL_SLACK_API_URL": standin.api_url,
        "VIGIL_HOST": "127.0.0.1",
        "VIGIL_PORT": str(free_port()),
        "VIGIL_PUBLIC_URL": PUBLIC_URL,
        "VIGIL_DATA_KEY": data_key,
        "VIGIL_LOCAL_DEV": "1",
        "SLACK_CLIENT_ID": standin.client_id,
        "SLACK_CLIENT_SECRET": standin.client_secret,
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_SHUTDOWN_TIMEOUT": "5",
    }


async def start_standin(
    stack: contextlib.AsyncExitStack, staff: tuple[DemoStaff, ...]
) -> SlackStandIn:
    """The Slack stand-in, every member of `staff` in its workspace; stopped with `stack`."""
    standin = SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME)
    await standin.start()
    stack.push_async_callback(standin.stop)
    for person in staff:
        standin.add_user(person.slack_user_id, email=person.email, name=person.name)
    return standin


def serve_environment(workdir: Path, settings: dict[str, str]) -> dict[str, str]:
    """`vigil serve`'s environment: `settings` but ENV_FILE_SETTINGS, written to
    `workdir/.env` instead."""
    write_env_file(workdir / ".env", {k: settings[k] for k in ENV_FILE_SETTINGS})
    return {k: v for k, v in settings.items() if k not in ENV_FILE_SETTINGS}


async def prepare_database(
    env: dict[str, str], workdir: Path, staff: tuple[DemoStaff, ...], pupils: list[DemoPupil]
) -> None:
    """`vigil db upgrade`, then `vigil import staff|pupils` from CSV files in `workdir`."""
    await run_vigil(["db", "upgrade"], env=env, cwd=workdir)
    (workdir / "staff.csv").write_text(staff_csv(staff), encoding="utf-8")
    (workdir / "pupils.csv").write_text(pupils_csv(pupils), encoding="utf-8")
    for kind in ("staff", "pupils"):  # exits 1 (→ ProcessError) if any row is rejected
        await run_vigil(["import", kind, f"{kind}.csv", "--team", TEAM_ID], env=env, cwd=workdir)


def simulator(standin: SlackStandIn, url: str) -> TimedSimulator:
    """Slack's signed requests to the server at `url`, reading state from `standin`."""
    return TimedSimulator(
        app_url=f"{url}/slack/events",
        signing_secret=SIGNING_SECRET,
        standin=standin,
        team_id=TEAM_ID,
    )


async def sign_in_keyholders(
    sim: TimedSimulator, staff: tuple[DemoStaff, ...], server_url: str
) -> list[web_paths.SignedIn]:
    """Every key-holder signed in to the web view (one-time link + TOTP), in staff order."""
    return [
        await web_paths.sign_in(
            sim,
            user_id=user_id,
            command=COMMAND,
            public_url=PUBLIC_URL,
            server_url=server_url,
        )
        for user_id in keyholders(staff)
    ]


@dataclass
class Run:
    """Everything the scenario groups share."""

    options: Options
    say: Callable[[str], None]
    rng: random.Random
    staff: tuple[DemoStaff, ...]
    users: list[str]
    pupils: list[DemoPupil]
    standin: SlackStandIn
    env: dict[str, str]
    workdir: Path
    vigil: Server
    vigil_sim: TimedSimulator
    factory: Any
    raw: dict[str, Any]

    def vigil_cpu(self) -> float:
        return cpu_seconds(self.vigil.pid)

    def note_memory(self, label: str) -> None:
        self.raw["memory"][f"after_{label}_mb"] = memory_mb(self.vigil.pid)["rss_mb"]

    def simulator(self, url: str) -> TimedSimulator:
        return simulator(self.standin, url)

    @contextlib.asynccontextmanager
    async def floor(self, kind: str, **settings: Any) -> AsyncIterator[Server]:
        """A floor server (own process unless --in-process), stopped afterwards."""
        server: Server
        if self.options.in_process:
            apps = {"bolt": bolt_app, "web": web_app, "web-db": web_db_app}
            app = apps[kind](**settings)
            server = InProcessFloor(kind, app)
        else:
            args = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
            server = floor_process(kind, args, cwd=self.workdir)
        await server.start()
        try:
            yield server
        finally:
            if server.separate:
                self.raw["floor_memory"][kind] = memory_mb(server.pid)
            await server.stop()
