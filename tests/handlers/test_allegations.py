"""Allegations about an adult (issue 12), end to end on both databases: who is alerted,
what Slack is told, and what the modal refuses.

A TA reports the 4B class teacher about a 4B pupil: only the allegations manager (the head)
is told, never the class teacher; about the head, the chair; and nothing sent to Slack
names the adult or the pupil.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from store.crypto import bind
from store.enums import AlertReason, ReferralStatus
from store.models import Alert, IncidentAdult, Referral
from testing.harness import Harness
from testing.school import STAFF, DemoStaff
from tests.support.records import staff_member
from tests.support.school import (
    CLASS_TEACHER,
    DEPUTY,
    DSL,
    HEAD,
    PASTORAL,
    PUPIL_4B,
    TA,
    TEACHER,
    name_of,
    server,
)

ALLEGATION = "Grabbed the pupil by the arm hard enough to leave a mark during the lesson."
CHAIR = "U0CHAIRGOV"
TYPED_NAME = "Quentin Visiting-Coach"


async def allege(school: Harness, author: str, adult: str, **details: object) -> object:
    """`author` reports the conduct of `adult` (a Slack id of the school, or a typed name)
    towards the 4B pupil; the response Slack got."""
    typed = adult not in {p.slack_user_id for p in school.staff}
    response = await school.report_concern(
        author,
        pupil_query=PUPIL_4B,
        narrative=ALLEGATION,
        categories=["Behaviour"],
        about_adult=str(details.pop("about_adult", "staff")),
        adult_query=adult if typed else name_of(adult),
        adult_not_listed=typed,
        **details,  # type: ignore[arg-type]
    )
    return response


async def alerted(school: Harness) -> dict[str, str]:
    """Who is alerted on incident #1, by Slack id, with why."""
    async with school.server.factory() as db:
        rows = await db.scalars(select(Alert).where(Alert.action_id.is_(None)))
        return {a.recipient.slack_user_id or "": a.reason for a in rows}


def slack_traffic(school: Harness) -> str:
    return "\n".join(json.dumps(c.params, sort_keys=True) for c in school.standin.calls)


async def test_allegation_about_the_class_teacher_goes_to_the_head_only(school: Harness) -> None:
    response = await allege(school, TA, CLASS_TEACHER)
    assert response.status == 200 and not response.body, response.body  # type: ignore[attr-defined]
    await school.delivered()
    assert await alerted(school) == {HEAD: AlertReason.ALLEGATIONS}
    dms = [
        c.params
        for c in school.standin.calls_to("chat.postMessage", ok_only=True)
        if c.params.get("channel") == HEAD
    ]
    assert len(dms) == 1 and "Allegation about an adult" in dms[0]["text"]
    traffic = slack_traffic(school)
    pupil = (await school.pick_pupil(TA, await school.open_concern(TA), PUPIL_4B))["text"]
    for secret in (name_of(CLASS_TEACHER), "Hana", "Jones", ALLEGATION):
        assert secret not in traffic
    assert pupil["text"].split(" · ")[0] not in traffic
    # Nothing to the class teacher, no channel line.
    assert not [c for c in school.standin.calls if c.params.get("channel") == CLASS_TEACHER]
    async with school.server.factory() as db:
        adult = await db.scalar(select(IncidentAdult))
        referral = await db.scalar(select(Referral))
    jones = await staff_member(school, CLASS_TEACHER)
    assert adult is not None and adult.staff_id == jones.id and adult.name_ct is None
    assert referral is not None and referral.status == ReferralStatus.CONSULT
    assert referral.agency == "LADO"


async def test_allegation_about_a_deputy_dsl_does_not_reach_them(school: Harness) -> None:
    response = await allege(school, TEACHER, DEPUTY)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    assert await alerted(school) == {HEAD: AlertReason.ALLEGATIONS}
    assert not [c for c in school.standin.calls if c.params.get("channel") == DEPUTY]


async def test_a_typed_name_is_stored_encrypted_and_never_sent(school: Harness) -> None:
    response = await allege(school, TEACHER, TYPED_NAME, about_adult="visitor")
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    assert await alerted(school) == {HEAD: AlertReason.ALLEGATIONS}
    async with school.server.factory() as db:
        adult = await db.scalar(select(IncidentAdult))
    assert adult is not None and adult.staff_id is None and adult.kind == "visitor"
    assert adult.name_ct and TYPED_NAME.encode() not in adult.name_ct
    assert (
        school.server.cipher.decrypt(adult.name_ct, bind(IncidentAdult.name_ct, adult.incident_id))
        == TYPED_NAME
    )
    assert "Quentin" not in slack_traffic(school)


async def test_about_the_head_the_chair_is_told(db_url: str, tmp_path: Path) -> None:
    chair = DemoStaff(CHAIR, "chair@larkspur.example", "Glenys Chair", "chair")
    async with server(db_url) as school:
        school.staff = (*STAFF, chair)
        school.standin.add_user(CHAIR, email=chair.email, name=chair.name)
        await school.seed_school(tmp_path)
        response = await allege(school, DSL, HEAD)
        assert response.status == 200 and not response.body  # type: ignore[attr-defined]
        await school.delivered()
        assert await alerted(school) == {CHAIR: AlertReason.ALLEGATIONS}


async def test_about_the_head_without_a_chair_the_other_keyholders_are_told(
    school: Harness,
) -> None:
    response = await allege(school, TA, HEAD)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    assert set(await alerted(school)) == {DSL, DEPUTY, PASTORAL}


async def test_the_modal_refuses_mistakes(school: Harness) -> None:
    # An adult named without saying who they are.
    view = await school.open_concern(TA)
    base = {
        "pupil": await school.pick_pupil(TA, view, PUPIL_4B),
        "narrative": ALLEGATION,
        "categories": ["Behaviour"],
        "parents_contacted": "yes",
    }
    adult = await school.pick_adult(TA, view, name_of(CLASS_TEACHER))
    response = await school.slack.view_submission(
        TA, view=view, values={**base, "about_adult": "pupil", "adult": adult}
    )
    assert "about_adult" in (response.json or {}).get("errors", {})
    # About a member of staff, but nobody named.
    response = await school.slack.view_submission(
        TA, view=view, values={**base, "about_adult": "staff"}
    )
    assert "adult" in (response.json or {}).get("errors", {})
    # Also alert on an allegation.
    response = await school.slack.view_submission(
        TA,
        view=view,
        values={**base, "about_adult": "staff", "adult": adult, "also_alert": [DSL]},
    )
    assert "also_alert" in (response.json or {}).get("errors", {})
    # The typeahead never offers the reporter themselves.
    options = (
        await school.slack.block_suggestion(
            TA, view=view, action_id="adult_search", block_id="adult", value=name_of(TA)
        )
    ).json["options"]
    assert all(not o["value"].startswith("staff:") for o in options)
    async with school.server.factory() as db:
        assert await db.scalar(select(IncidentAdult)) is None
