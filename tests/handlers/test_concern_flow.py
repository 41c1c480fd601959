"""Reporting a concern from Slack, end to end, on both databases.

Each test drives the real server with signed Slack requests and asserts what people
would see: the calls the Slack stand-in received, and the rows in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from store.crypto import bind
from store.models import Alert, Incident, OutboxMessage, Pupil
from testing.harness import Harness
from testing.school import STAFF
from tests.support.records import pupil_at_another_school, pupil_with_upn
from tests.support.school import (
    CLASS_TEACHER,
    DSL,
    KEYHOLDERS,
    NARRATIVE,
    PUPIL_3A,
    PUPIL_4B,
    TA,
    TEACHER,
    TEACHER_3A,
)


async def counts(harness: Harness) -> dict[str, int]:
    async with harness.server.factory() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Incident, Alert, OutboxMessage)
        }


def slack_traffic(harness: Harness) -> str:
    """Everything Vigil sent to Slack's Web API, as one string."""
    return "\n".join(json.dumps(call.params, sort_keys=True) for call in harness.standin.calls)


def alerted_users(harness: Harness) -> set[str]:
    return {
        call.params["channel"]
        for call in harness.standin.calls_to("chat.postMessage", ok_only=True)
        if "New concern" in call.params.get("text", "")
    }


# -- the modal ---------------------------------------------------------------------------


def category_names(view: dict[str, Any]) -> set[str]:
    block = next(b for b in view["blocks"] if b.get("block_id") == "categories")
    return {o["value"] for o in block["element"]["options"]}


async def test_teacher_modal_offers_no_restricted_categories(school: Harness) -> None:
    view = await school.open_concern(TEACHER)
    assert "Behaviour" in category_names(view)
    assert not {"Safeguarding", "Child protection"} & category_names(view)
    assert school.standin.calls_to("views.update") == []


async def test_keyholder_modal_offers_restricted_categories(school: Harness) -> None:
    view = await school.open_concern(DSL)
    assert {"Safeguarding", "Child protection"} <= category_names(view)


async def test_someone_not_on_the_roster_is_told_so(school: Harness) -> None:
    school.standin.add_user("U0VISITOR1", email="visitor@example.org", name="A Visitor")
    view = await school.open_concern("U0VISITOR1")
    assert "not on Vigil's staff list" in json.dumps(view["blocks"])
    assert "submit" not in view


async def test_help_answers_without_a_modal(school: Harness) -> None:
    response = await school.slack.slash_command(TEACHER, "help")
    assert response.status == 200 and "/concern" in response.body
    assert school.standin.calls_to("views.open") == []


@contextlib.asynccontextmanager
async def slow_sessions(harness: Harness, delay: float) -> AsyncIterator[None]:
    """Every database session the Slack handlers open first waits `delay` seconds."""
    deps = harness.server.deps
    real = deps.factory

    @contextlib.asynccontextmanager
    async def slow() -> AsyncIterator[Any]:
        await asyncio.sleep(delay)
        async with real() as session:
            yield session

    object.__setattr__(deps, "factory", slow)
    try:
        yield
    finally:
        object.__setattr__(deps, "factory", real)


async def test_modal_opens_before_any_database_work(school: Harness) -> None:
    async with slow_sessions(school, delay=2.5):
        started = time.monotonic()
        response = await school.slack.slash_command(DSL)
        answered = time.monotonic() - started
        opened = await school.standin.wait_for_calls("views.open", 1, timeout=1)
        assert response.status == 200
        assert answered < 1.0, "the command must be acknowledged before slow work"
        assert opened[0].at - started < 1.0, "views.open must not wait for the database"
        # The restricted categories arrive afterwards, by views.update.
        await school.server.tasks.idle()
    updated = school.standin.calls_to("views.update", ok_only=True)
    assert len(updated) == 1 and "Safeguarding" in json.dumps(updated[0].params["view"])


# -- the typeahead -----------------------------------------------------------------------


async def suggest(harness: Harness, user: str, query: str) -> list[dict[str, Any]]:
    view = await harness.open_concern(user) if user in KEYHOLDERS | {TEACHER} else None
    if view is None:
        view = next(iter(harness.standin.views.values()))
    response = await harness.slack.block_suggestion(
        user, view=view, action_id="pupil_search", block_id="pupil", value=query
    )
    assert response.status == 200, response.body
    return response.json["options"]  # type: ignore[index]


async def test_typeahead_finds_pupils_by_name_preferred_name_and_upn(
    harness: Harness, tmp_path: Any
) -> None:
    pupils = await harness.seed_school(tmp_path, pupils=300)
    first = pupils[0]
    by_surname = await suggest(harness, TEACHER, first.surname[:3].lower())
    assert by_surname and all(first.surname[:3] in o["text"]["text"] for o in by_surname)
    by_both = await suggest(harness, TEACHER, f"{first.forename} {first.surname}")
    assert any(o["text"]["text"].startswith(first.forename) for o in by_both)
    by_preferred = await suggest(harness, TEACHER, "bee")
    assert len(by_preferred) == 1 and "(Bee)" in by_preferred[0]["text"]["text"]
    by_upn = await suggest(harness, TEACHER, pupils[42].upn.lower())
    assert len(by_upn) == 1
    async with harness.server.factory() as session:
        pupil = await session.get(Pupil, int(by_upn[0]["value"]))
    assert pupil is not None and pupil.upn == pupils[42].upn


async def test_typeahead_answers_at_most_100_options(harness: Harness, tmp_path: Any) -> None:
    await harness.seed_school(tmp_path, pupils=300)
    assert len(await suggest(harness, TEACHER, "z0")) == 100


async def test_typeahead_is_scoped_to_the_workspace_and_to_staff(school: Harness) -> None:
    async with school.server.factory() as session:
        await pupil_at_another_school(
            session, team_id="T0OTHER", upn="Y123456789012", cipher=school.server.cipher
        )
        await session.commit()
    assert await suggest(school, TEACHER, "quenby") == []
    school.standin.add_user("U0VISITOR1", email="visitor@example.org", name="A Visitor")
    assert await suggest(school, "U0VISITOR1", "z0") == []


# -- submission ------------------------------------------------------------------------


async def test_concern_is_stored_and_everyone_right_is_alerted(school: Harness) -> None:
    response = await school.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Well-being"]
    )
    assert response.status == 200 and not response.body, response.body
    async with school.server.factory() as session:
        incident = await session.scalar(select(Incident))
        assert incident is not None and incident.number == 1
        assert incident.author.slack_user_id == TEACHER
        assert incident.category_names == ["Well-being"]
        assert NARRATIVE.encode() not in incident.narrative_ct
        assert (
            school.server.cipher.decrypt(
                incident.narrative_ct, bind(Incident.narrative_ct, incident.id)
            )
            == NARRATIVE
        )
    await school.delivered()
    # Key-holders and the other 4B class teacher; never the author.
    assert alerted_users(school) == KEYHOLDERS | {CLASS_TEACHER}
    receipt = school.standin.messages_for_user(TEACHER)
    assert len(receipt) == 1 and "Concern #1 recorded" in receipt[0]["text"]


async def test_restricted_category_alerts_keyholders_and_added_staff_only(
    school: Harness,
) -> None:
    response = await school.report_concern(
        DSL,
        pupil_query=PUPIL_4B,
        narrative=NARRATIVE,
        categories=["Safeguarding", "Attendance"],
        also_alert=[TA],
        agencies=["Police"],
        parents_contacted="no",
        parents_reason="Police advised not to contact parents yet.",
    )
    assert response.status == 200, response.body
    await school.delivered()
    assert alerted_users(school) == (KEYHOLDERS - {DSL}) | {TA}


async def test_linked_pupils_bring_their_class_teachers(school: Harness) -> None:
    response = await school.report_concern(
        TEACHER,
        pupil_query=PUPIL_4B,
        linked_queries=[PUPIL_3A],  # a 3A pupil
        narrative=NARRATIVE,
        categories=["Behaviour"],
    )
    assert response.status == 200, response.body
    await school.delivered()
    assert TEACHER_3A in alerted_users(school)


async def test_alerts_name_only_author_and_categories(school: Harness) -> None:
    pupil_query = PUPIL_4B
    await school.report_concern(
        TEACHER, pupil_query=pupil_query, narrative=NARRATIVE, categories=["Medical"]
    )
    await school.delivered()
    async with school.server.factory() as session:
        pupil = await pupil_with_upn(school, session, PUPIL_4B)
    assert pupil is not None
    traffic = slack_traffic(school)
    for secret in (pupil.forename, pupil.surname, pupil.upn, "hungry", "Friday"):
        assert secret.lower() not in traffic.lower(), f"{secret!r} was sent to Slack"
    message = school.standin.messages_for_user(DSL)[0]
    assert message["text"] == f"New concern #1 from <@{TEACHER}> · Medical"
    buttons = [e["action_id"] for b in message["blocks"] for e in b.get("elements", [])]
    assert buttons == ["alert_mark_read", "alert_open"]


async def test_repeated_submission_of_one_modal_files_once(school: Harness) -> None:
    view = await school.open_concern(TEACHER)
    values = {
        "pupil": await school.pick_pupil(TEACHER, view, PUPIL_4B),
        "narrative": NARRATIVE,
        "categories": ["Behaviour"],
        "parents_contacted": "yes",
    }
    first = await school.slack.view_submission(TEACHER, view=view, values=values)
    second = await school.slack.view_submission(TEACHER, view=view, values=values)
    assert first.status == second.status == 200
    assert (await counts(school))["incidents"] == 1


# -- invalid submissions store nothing -------------------------------------------------


async def submit(harness: Harness, user: str, values: dict[str, Any]) -> dict[str, Any]:
    view = await harness.open_concern(user)
    if "pupil" not in values:
        pass
    elif values["pupil"] == "<pick>":
        values["pupil"] = await harness.pick_pupil(user, view, PUPIL_4B)
    response = await harness.slack.view_submission(user, view=view, values=values)
    assert response.status == 200, response.body
    return response.json or {}


VALID = {"narrative": NARRATIVE, "categories": ["Behaviour"], "parents_contacted": "yes"}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({**VALID}, "pupil"),
        ({**VALID, "pupil": "<pick>", "narrative": "   "}, "narrative"),
        ({**VALID, "pupil": {"text": "Forged", "value": "999999"}}, "pupil"),
        ({**VALID, "pupil": {"text": "Forged", "value": "1 OR 1=1"}}, "pupil"),
        ({**VALID, "pupil": "<pick>", "narrative": "x" * 3001}, "narrative"),
        ({**VALID, "pupil": "<pick>", "parents_contacted": "no"}, "parents_reason"),
        ({**VALID, "pupil": "<pick>", "also_alert": ["U0NOTSTAFF"]}, "also_alert"),
    ],
    ids=["no-pupil", "empty", "unknown-pupil", "forged-id", "too-long", "no-reason", "not-staff"],
)
async def test_invalid_submission_is_answered_on_its_field_and_stores_nothing(
    school: Harness, values: dict[str, Any], field: str
) -> None:
    answer = await submit(school, TEACHER, dict(values))
    assert answer.get("response_action") == "errors"
    assert field in answer["errors"], answer
    assert await counts(school) == {"incidents": 0, "alerts": 0, "outbox": 0}


async def test_restricted_category_from_a_non_keyholder_is_refused(school: Harness) -> None:
    view = await school.open_concern(TEACHER)
    # A tampered client adds an option the teacher was never offered.
    block = next(b for b in view["blocks"] if b.get("block_id") == "categories")
    block["element"]["options"].append(
        {"text": {"type": "plain_text", "text": "Safeguarding"}, "value": "Safeguarding"}
    )
    values = {**VALID, "categories": ["Safeguarding"]}
    values["pupil"] = await school.pick_pupil(TEACHER, view, PUPIL_4B)
    response = await school.slack.view_submission(TEACHER, view=view, values=values)
    assert response.json is not None
    assert "safeguarding team" in response.json["errors"]["categories"]
    assert await counts(school) == {"incidents": 0, "alerts": 0, "outbox": 0}


async def test_numbers_follow_on_per_workspace(school: Harness) -> None:
    for _ in range(3):
        await school.report_concern(
            TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
        )
    async with school.server.factory() as session:
        numbers = (await session.scalars(select(Incident.number).order_by(Incident.id))).all()
    assert numbers == [1, 2, 3]


def test_demo_staff_covers_every_role_the_tests_rely_on() -> None:
    ids = {s.slack_user_id for s in STAFF}
    assert KEYHOLDERS | {TEACHER, CLASS_TEACHER, TEACHER_3A, TA} <= ids
