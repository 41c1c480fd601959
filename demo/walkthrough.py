"""`vigil demo`: a fictional school on SQLite, a real server, the Slack stand-in.

No Slack account is needed. The demo imports the rosters with the real importer, files
one concern through the real signed Slack path, lets the outbox deliver it, and prints
what each recipient's Slack alert looks like.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

from bot.settings import ConfigError
from bot.sqlite_lock import DatabaseLock
from bot.startup import StartupError, listen_problem
from store import migrate, totp
from store.db import create_engine
from store.staff import get_staff_by_slack_id
from testing.harness import Harness
from testing.school import STAFF, TEAM_NAME

TEACHER = "U0TCHPATEL"
DSL = "U0DSL0HUGH"
NARRATIVE = (
    "At 10:40 in the corridor outside 4B, the pupil told me (C.P.) 'I don't want to go "
    "home tonight, my uncle shouts at me.' She was crying, which is unlike her. I reassured "
    "her and brought her to the office. Parents not yet contacted: speaking to the DSL first."
)


def render(message: dict[str, Any], names: dict[str, str]) -> str:
    """A Slack message as a person would see it, in plain text."""
    return _plain("\n".join(_lines(message)), names)


def _plain(text: str, names: dict[str, str]) -> str:
    text = re.sub(r"<@(\w+)>", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
    return (
        text.replace(":bell: ", "🔔 ")
        .replace(":lock: ", "🔒 ")
        .replace(":white_check_mark: ", "✅ ")
    )


def _lines(message: dict[str, Any]) -> list[str]:
    lines = []
    for block in message.get("blocks") or [{"type": "section", "text": {"text": message["text"]}}]:
        if block.get("type") == "section":
            lines.append(block["text"]["text"])
        elif block.get("type") == "context":
            lines.append("  " + " ".join(e.get("text", "") for e in block["elements"]))
        elif block.get("type") == "actions":
            buttons = []
            for element in block["elements"]:
                label = element["text"]["text"]
                buttons.append(
                    f"[{label} ↗ {element['url']}]" if "url" in element else f"[{label}]"
                )
            lines.append("  " + "  ".join(buttons))
    return lines


def _free_port(*, preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port on 127.0.0.1."""
    for candidate in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port")


def _port() -> int:
    """VIGIL_PORT if it is set (a busy port is then an error), else 3000 or any free one."""
    wanted = os.environ.get("VIGIL_PORT", "").strip()
    if not wanted:
        return _free_port(preferred=3000)
    if not wanted.isdigit() or not 0 < int(wanted) < 65536:
        raise ConfigError(f"VIGIL_PORT: {wanted!r} is not a port number")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", int(wanted)))
        except OSError as error:
            raise StartupError(listen_problem(error, host="127.0.0.1", port=int(wanted))) from None
    return int(wanted)


def _tunnel_hint(port: int) -> str:
    """How to reach a demo that listens on 127.0.0.1 of another machine."""
    return (
        "  It listens on 127.0.0.1 only. On a remote server, open a tunnel from your own\n"
        f"  computer first: ssh -N -L {port}:127.0.0.1:{port} YOU@THIS-SERVER\n"
        "  then open the link there."
    )


async def _enrol_authenticator(demo: Harness, slack_user_id: str) -> str:
    """Give the demo DSL a confirmed authenticator whose secret the demo prints."""
    async with demo.server.factory() as db, db.begin():
        staff = await get_staff_by_slack_id(
            db, workspace_id=demo.workspace_id, slack_user_id=slack_user_id
        )
        assert staff is not None
        secret = await totp.start_enrolment(db, staff=staff, cipher=demo.server.cipher)
        enrolment = await totp.enrolment(db, staff_id=staff.id)
        assert enrolment is not None
        enrolment.confirmed_at = demo.now()
    return secret


DATABASE = "vigil-demo.db"


def _fresh_database(directory: Path) -> Path:
    """An empty place for the demo database (an earlier run's is removed)."""
    for stale in directory.glob(f"{DATABASE}*"):
        if not stale.name.endswith(DEMO_LOCK):
            stale.unlink()
    return (directory / DATABASE).resolve()


DEMO_LOCK = ".demo-lock"


def _lock_directory(directory: Path) -> DatabaseLock:
    """The demo's lock on its directory (StartupError if another demo holds it)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = DatabaseLock((directory / DATABASE).resolve(), holder="vigil demo", suffix=DEMO_LOCK)
    lock.acquire()
    return lock


async def run_demo(
    *, directory: Path, keep_running: bool = False, stop: asyncio.Event | None = None
) -> int:
    """Run the walkthrough; with keep_running, serve until Ctrl-C (or `stop` is set).

    A second demo in the same directory is refused while the first runs: it would
    delete the database from under it.
    """
    lock = _lock_directory(directory)
    try:
        return await _run(directory, keep_running=keep_running, stop=stop)
    finally:
        lock.release()


async def _run(directory: Path, *, keep_running: bool, stop: asyncio.Event | None) -> int:
    port = _port()
    database = _fresh_database(directory)
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()

    overrides = {"VIGIL_PORT": port, "VIGIL_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    async with Harness(database_url=url, overrides=overrides) as demo:
        pupils = await demo.seed_school(directory, pupils=60)
        names = {s.slack_user_id: s.name for s in STAFF}
        print(f"Vigil demo: {TEAM_NAME}, a fictional school")
        print(f"  database      {database}")
        print(f"  server        {demo.server.url}  (Slack endpoint /slack/events, /healthz)")
        print(f"  Slack         a local stand-in at {demo.standin.base_url}")
        print(f"  rosters       {len(STAFF)} staff, {len(pupils)} pupils imported from CSV\n")

        pupil = pupils[4]
        print(
            f"{names[TEACHER]} (4B teacher) types /concern about {pupil.forename} "
            f"{pupil.surname}, 4B, and submits it through the signed Slack path..."
        )
        response = await demo.report_concern(
            TEACHER,
            pupil_query=pupil.upn,
            narrative=NARRATIVE,
            categories=["Well-being", "Parent conversations"],
            also_alert=["U0TALEWIS0"],
            parents_contacted="no",
            parents_reason="Speaking to the DSL before contacting home.",
        )
        if response.status != 200 or response.body:
            fields = sorted(((response.json or {}).get("errors") or {}).keys())
            print(f"Submission was not accepted: HTTP {response.status}, fields {fields}")
            return 1
        await demo.delivered()

        print("\nWhat each person sees in Slack:\n")
        for person in STAFF:
            for message in demo.standin.messages_for_user(person.slack_user_id):
                print(f"── {person.name} ({person.roles}) " + "─" * 20)
                print(render(message, names) + "\n")

        message = demo.standin.messages_for_user(DSL)[0]
        channel = demo.standin.dm_channel_for(DSL)
        await demo.slack.click_button(DSL, message, "alert_mark_read", channel_id=channel)
        await demo.delivered()
        print(f"── {names[DSL]} taps Mark as read; her DM is updated in place " + "─" * 5)
        print(render(demo.standin.messages[(channel, message["ts"])], names) + "\n")

        traffic = json.dumps([call.params for call in demo.standin.calls]).lower()
        leaked = [
            w for w in (pupil.forename, pupil.surname, pupil.upn, "uncle") if w.lower() in traffic
        ]
        print(
            f"{len(demo.standin.calls)} Slack API calls made; "
            + (
                "NONE contains the pupil's name, UPN or the narrative."
                if not leaked
                else f"LEAK: {leaked}"
            )
        )
        if not keep_running:
            print(
                "\nThe demo server stopped with the walkthrough (this is not a terminal). "
                "To sign in to the web view, run `vigil demo --keep-running`."
            )
            return 1 if leaked else 0
        secret = await _enrol_authenticator(demo, DSL)
        link = await demo.login_link(DSL)
        print(f"\nThe web view, as {names[DSL]} (the DSL):")
        print(f"  one-time link   {link}  (valid 5 minutes, once)")
        print(f"  TOTP secret     {secret}  (add it to an authenticator app, or:")
        print(
            f"                  python3 -c \"import pyotp; print(pyotp.TOTP('{secret}').now())\")"
        )
        print("  another link    run `vigil demo` again (with a real Slack: `/concern login`)")
        print(f"\nServing on {demo.server.url} until Ctrl-C.")
        print(_tunnel_hint(port), flush=True)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        return 1 if leaked else 0
