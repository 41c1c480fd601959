"""The fictional school the tests use (`testing.school`): its people, pupils and servers.

The Slack ids are spelled out so a test reads (and greps) as the school does; they are
checked against `testing.school.STAFF` when this module is imported, so they cannot
drift from the roster the harness imports.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from testing.harness import Harness
from testing.school import STAFF, TEAM_NAME, DemoStaff, fictional_pupils

SCHOOL_NAME = TEAM_NAME  # "Larkspur Primary School"
OTHER_TEAM_ID = "T0OTHERSCH"  # a second school on the same deployment

# -- staff (all fictional) ---------------------------------------------------------------------
DSL = "U0DSL0HUGH"  # Alys Hughes: dsl;slt, the Designated Safeguarding Lead
DEPUTY = "U0DDSLOKAF"  # Ben Okafor: keyholder;slt
HEAD = "U0HEADMORG"  # Ffion Morgan: head;keyholder
PASTORAL = "U0PASTPRIC"  # Gareth Price: pastoral;keyholder
TEACHER = "U0TCHPATEL"  # Chitra Patel: teacher, 4B
TEACHER_3A = "U0TCHEVANS"  # Dylan Evans: teacher, 3A
CLASS_TEACHER = "U0TCHJONES"  # Hana Jones: teacher, 4B and 5C (the other 4B teacher)
TA = "U0TALEWIS0"  # Eleri Lewis: staff
OFFICE = "U0OFFICE00"  # Iwan Rees: staff, in the office
KEYHOLDERS = frozenset({DSL, DEPUTY, HEAD, PASTORAL})

BY_SLACK_ID = {person.slack_user_id: person for person in STAFF}


def name_of(slack_user_id: str) -> str:
    """The person's name on the roster, as the web view shows it."""
    return BY_SLACK_ID[slack_user_id].name


# -- pupils (`fictional_pupils()`: the index's class is CLASSES[index % 7]) ------------------
PUPIL_3A = "Z00000000003D"  # index 3, in 3A (preferred name "Bee")
PUPIL_4B = "Z00000000004E"  # index 4, in 4B
PUPIL_5C = "Z00000000005F"  # index 5, in 5C

NARRATIVE = "Said she was hungry and had not eaten since Friday; asked to stay late."

# A worker that polls often and backs off briefly, so tests do not wait on it.
FAST_WORKER = {"poll_interval": 0.05, "base_backoff": 0.01}


def _check() -> None:
    people = (DSL, DEPUTY, HEAD, PASTORAL, TEACHER, TEACHER_3A, CLASS_TEACHER, TA, OFFICE)
    missing = [slack_id for slack_id in people if slack_id not in BY_SLACK_ID]
    roles = {slack_id: BY_SLACK_ID[slack_id].roles for slack_id in KEYHOLDERS - set(missing)}
    pupils = {p.upn: p.registration_group for p in fictional_pupils(6)}
    expected = {PUPIL_3A: "3A", PUPIL_4B: "4B", PUPIL_5C: "5C"}
    if missing or not all("keyholder" in r or "dsl" in r for r in roles.values()):
        raise AssertionError(f"tests/support/school.py: staff ids out of date ({missing})")
    if any(pupils.get(upn) != group for upn, group in expected.items()):
        raise AssertionError("tests/support/school.py: pupil UPNs out of date")


_check()


def extra_keyholders(count: int, *, prefix: str, email: str) -> tuple[DemoStaff, ...]:
    """`count` more key-holders, for a school whose concerns alert many people."""
    return tuple(
        DemoStaff(f"{prefix}{i:04d}", f"{email}{i}@larkspur.example", f"Keyholder {i}", "keyholder")
        for i in range(count)
    )


def server(database_url: str) -> Harness:
    """The server and the Slack stand-in on `database_url` (no roster yet), with a
    fast-polling worker; `async with` starts and stops them."""
    return Harness(database_url=database_url, worker_options=dict(FAST_WORKER))


@contextlib.asynccontextmanager
async def seeded_school(
    database_url: str,
    directory: Path,
    *,
    staff: Iterable[DemoStaff] = STAFF,
    overrides: dict[str, Any] | None = None,
    **worker_options: Any,
) -> AsyncIterator[Harness]:
    """The server and stand-in on `database_url`, with the school's rosters imported and a
    fast-polling worker (`worker_options` on top of `FAST_WORKER`)."""
    async with Harness(
        database_url=database_url,
        staff=tuple(staff),
        overrides=overrides or {},
        worker_options={**FAST_WORKER, **worker_options},
    ) as harness:
        await harness.seed_school(directory)
        yield harness


@contextlib.asynccontextmanager
async def configured_school(
    database_url: str, directory: Path, toml: str
) -> AsyncIterator[Harness]:
    """The school on a server started with `toml` as its configuration file."""
    config = directory / "vigil.toml"
    config.write_text(toml, encoding="utf-8")
    async with seeded_school(
        database_url, directory, overrides={"VIGIL_CONFIG": str(config)}
    ) as harness:
        yield harness
