"""Who is told about an action, and who may change a case (issue 12), end to end.

People sign in to the web view (one-time link, TOTP) and use the incident page; Slack
DMs are asserted on the stand-in, refusals on the audit log and the one 404.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from store.catalogue import DISCLOSURE
from store.models import Alert, IncidentAction, IncidentInvite, ReadReceipt, Referral
from testing.harness import Harness
from tests.handlers.test_allegations import allege
from tests.support.records import audit_events, staff_member
from tests.support.school import (
    CLASS_TEACHER,
    DEPUTY,
    DSL,
    HEAD,
    KEYHOLDERS,
    PASTORAL,
    TA,
    TEACHER,
)
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

MASH = "Children's social care (MASH)"
ACTION_TEXT = "Spoke to grandmother at pick-up; she will take her to the GP tomorrow."


def action_dms(school: Harness) -> list[str]:
    """Who got an action's DM, one entry per DM."""
    return [
        c.params["channel"]
        for c in school.standin.calls_to("chat.postMessage", ok_only=True)
        if c.params.get("text", "").startswith("New action on concern")
    ]


async def staff_id(school: Harness, slack_id: str) -> int:
    return (await staff_member(school, slack_id)).id


# -- actions tell the right people --------------------------------------------------------


async def test_an_action_alerts_the_author_and_the_keyholders_once(school: Harness) -> None:
    await file_concern(school)  # TEACHER's behaviour concern: the other 4B teacher is alerted
    ta, dsl = await staff_id(school, TA), await staff_id(school, DSL)
    async with signed_in(school, CLASS_TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, _ = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "alert": [str(ta), str(dsl)]}
        )
        assert status == 200
    await school.delivered()
    got = action_dms(school)
    # The author, every key-holder, and the person picked; each once; never the action's
    # own author.
    assert sorted(got) == sorted({TEACHER, TA} | KEYHOLDERS)
    assert CLASS_TEACHER not in got
    traffic = json.dumps([c.params for c in school.standin.calls])
    assert "grandmother" not in traffic.lower()
    async with school.server.factory() as db:
        reasons = (await db.scalars(select(Alert.reason).where(Alert.action_id.isnot(None)))).all()
    assert set(reasons) == {"action"} and len(reasons) == 6


async def test_a_keyholders_action_alerts_the_other_keyholders_and_the_author(
    school: Harness,
) -> None:
    await file_concern(school)
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/actions", {"text": ACTION_TEXT})
        assert status == 200
    await school.delivered()
    assert sorted(action_dms(school)) == sorted({TEACHER, DEPUTY, HEAD, PASTORAL})


# -- only the safeguarding team changes a case ------------------------------------------------


async def refer_as_dsl(school: Harness) -> int:
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/actions", {"text": "Phoned MASH.", "agency": MASH})
        assert status == 200
    async with school.server.factory() as db:
        referral = await db.scalar(select(Referral))
    assert referral is not None
    return referral.id


async def test_a_teacher_who_sees_the_concern_cannot_record_a_referral(school: Harness) -> None:
    await file_concern(school)
    async with signed_in(school, TEACHER) as teacher:
        status, page = await teacher.get("/incidents/1")
        assert status == 200
        assert 'name="agency"' not in page and "Record one with an action below" not in page
        # A forged form asks for a referral anyway.
        status, body = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "agency": MASH}
        )
    assert status == 404 and ACTION_TEXT not in body
    async with school.server.factory() as db:
        assert (await db.scalars(select(Referral))).all() == []
        assert (await db.scalars(select(IncidentAction))).all() == []
    refused = await audit_events(school, "referral.change")
    assert [(e.outcome, e.actor_slack_id) for e in refused] == [("refused", TEACHER)]


async def test_a_teacher_cannot_answer_or_close_a_referral(school: Harness) -> None:
    await file_concern(school)
    referral_id = await refer_as_dsl(school)
    async with signed_in(school, TEACHER) as teacher:
        status, page = await teacher.get("/incidents/1")
        assert status == 200 and f'name="outcome-{referral_id}"' not in page
        for outcome in ("response", "closed"):
            status, _ = await teacher.post(
                "/incidents/1/actions", {"text": ACTION_TEXT, f"outcome-{referral_id}": outcome}
            )
            assert status == 404
    async with school.server.factory() as db:
        referral = await db.get(Referral, referral_id)
    assert referral is not None and referral.status == "awaiting"
    refused = await audit_events(school, "referral.change")
    assert [e.outcome for e in refused] == ["refused", "refused"]
    # A key-holder still can.
    async with signed_in(school, DEPUTY) as deputy:
        await deputy.get("/incidents/1")
        status, _ = await deputy.post(
            "/incidents/1/actions",
            {"text": "MASH closed it.", f"outcome-{referral_id}": "closed"},
        )
        assert status == 200
    async with school.server.factory() as db:
        referral = await db.get(Referral, referral_id)
    assert referral is not None and referral.status == "closed"


async def test_a_teacher_cannot_share_a_restricted_concern(school: Harness) -> None:
    await file_concern(school, categories=[DISCLOSURE])
    ta = await staff_id(school, TA)
    async with signed_in(school, TEACHER) as teacher:
        status, page = await teacher.get("/incidents/1")
        assert status == 200
        assert 'id="share-restricted"' in page and 'id="invite-form"' not in page
        status, _ = await teacher.post("/incidents/1/invite", {"staff": str(ta)})
    assert status == 404
    async with school.server.factory() as db:
        assert (await db.scalars(select(IncidentInvite))).all() == []
    refused = await audit_events(school, "incident.invite")
    assert [(e.outcome, e.actor_slack_id) for e in refused] == [("refused", TEACHER)]
    async with signed_in(school, DSL) as dsl:  # the safeguarding team can
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/invite", {"staff": str(ta)})
        assert status == 200
    async with signed_in(school, TA) as guest:
        status, _ = await guest.get("/incidents/1")
        assert status == 200


async def test_a_concern_recategorised_as_restricted_cannot_be_shared_by_a_teacher(
    school: Harness,
) -> None:
    await file_concern(school)
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        await dsl.post("/incidents/1/actions", {"text": "Now CP.", "categories": "Safeguarding"})
    ta = await staff_id(school, TA)
    async with signed_in(school, CLASS_TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, _ = await teacher.post("/incidents/1/invite", {"staff": str(ta)})
    assert status == 404


# -- withdrawing access --------------------------------------------------------------------


async def test_a_keyholder_withdraws_access_and_the_dm_says_so(school: Harness) -> None:
    await file_concern(school)  # TEACHER's concern alerts the other 4B teacher
    dm = school.standin.messages_for_user(CLASS_TEACHER)[0]
    person = await staff_id(school, CLASS_TEACHER)
    async with signed_in(school, CLASS_TEACHER) as teacher:
        status, _ = await teacher.get("/incidents/1")
        assert status == 200
        async with signed_in(school, DSL) as dsl:
            _, page = await dsl.get("/incidents/1")
            # A button beside the class teacher; none beside the author or a key-holder.
            buttons = set(re.findall(r'name="staff" value="(\d+)">\s*<button[^>]*>Withdraw', page))
            assert buttons == {str(person)}
            status, page = await dsl.post("/incidents/1/withdraw", {"staff": str(person)})
            assert status == 200 and dsl.last_url.endswith("/incidents/1")
            assert "Withdrawn" in page
        status, _ = await teacher.get("/incidents/1")
        assert status == 404
        _, alerts = await teacher.get("/alerts")
        assert 'href="/incidents/1"' not in alerts
    await school.delivered()
    channel = school.standin.dm_channel_for(CLASS_TEACHER)
    updates = [c for c in school.standin.calls_to("chat.update", ok_only=True)]
    assert [(u.params["channel"], u.params["ts"]) for u in updates] == [(channel, dm["ts"])]
    updated = school.standin.messages[(channel, dm["ts"])]
    assert "access to concern #1 was withdrawn" in updated["text"]
    assert "alert_mark_read" not in json.dumps(updated) and "alert_open" not in json.dumps(updated)
    async with school.server.factory() as db:
        alert = await db.scalar(select(Alert).where(Alert.recipient_id == person))
    assert alert is not None and alert.withdrawn_at is not None
    events = await audit_events(school, "incident.withdraw")
    assert [(e.outcome, e.actor_slack_id, e.subject_id) for e in events] == [("ok", DSL, person)]


async def test_only_a_keyholder_withdraws_and_never_the_author(school: Harness) -> None:
    await file_concern(school)
    person, author = await staff_id(school, CLASS_TEACHER), await staff_id(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        _, page = await teacher.get("/incidents/1")
        assert "/withdraw" not in page
        status, _ = await teacher.post("/incidents/1/withdraw", {"staff": str(person)})
        assert status == 404
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        status, page = await dsl.post("/incidents/1/withdraw", {"staff": str(author)})
        assert status == 400 and "its author always keeps access" in shown(page)
        deputy = await staff_id(school, DEPUTY)
        status, page = await dsl.post("/incidents/1/withdraw", {"staff": str(deputy)})
        assert status == 400 and "safeguarding team" in page
    async with signed_in(school, CLASS_TEACHER) as still:
        status, _ = await still.get("/incidents/1")
        assert status == 200
    events = await audit_events(school, "incident.withdraw")
    assert [(e.outcome, e.actor_slack_id) for e in events] == [
        ("refused", TEACHER),
        ("failed", DSL),
        ("failed", DSL),
    ]


async def test_withdrawn_access_is_not_given_back_by_an_action_or_a_teacher(
    school: Harness,
) -> None:
    await file_concern(school)
    person = await staff_id(school, CLASS_TEACHER)
    async with signed_in(school, DSL, remember=True) as dsl:
        await dsl.get("/incidents/1")
        await dsl.post("/incidents/1/withdraw", {"staff": str(person)})
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, page = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "alert": str(person)}
        )
        assert status == 400 and "withdrew" in shown(page)
        status, page = await teacher.post("/incidents/1/invite", {"staff": str(person)})
        assert status == 400 and "withdrew" in shown(page)
    async with signed_in(school, CLASS_TEACHER) as withdrawn:
        status, _ = await withdrawn.get("/incidents/1")
        assert status == 404
        async with signed_in(
            school, DSL, remember=True
        ) as dsl:  # the safeguarding team gives it back
            await dsl.get("/incidents/1")
            status, _ = await dsl.post("/incidents/1/invite", {"staff": str(person)})
            assert status == 200
        status, _ = await withdrawn.get("/incidents/1")
        assert status == 200
    await school.delivered()
    shared = [
        m
        for m in school.standin.messages_for_user(CLASS_TEACHER)
        if "shared concern #1" in m["text"]
    ]
    assert len(shared) == 1


async def test_a_withdrawn_alert_leaves_the_app_home_and_cannot_be_marked_read(
    school: Harness,
) -> None:
    await file_concern(school)
    person = await staff_id(school, CLASS_TEACHER)
    dm = school.standin.messages_for_user(CLASS_TEACHER)[0]
    async with school.server.factory() as db:
        alert_id = await db.scalar(select(Alert.id).where(Alert.recipient_id == person))
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        await dsl.post("/incidents/1/withdraw", {"staff": str(person)})
    response = await school.slack.event(
        {"type": "app_home_opened", "user": CLASS_TEACHER, "channel": "D0HOME", "tab": "home"}
    )
    assert response.status == 200
    await school.standin.wait_for_calls("views.publish", 1)
    home = json.dumps(school.standin.home_views[CLASS_TEACHER]["blocks"])
    assert "#1" not in home and "Nothing unread" in home
    # An old copy of the DM (a phone that has not refreshed) still has Mark as read.
    await school.delivered()
    response = await school.slack.block_actions(
        CLASS_TEACHER,
        action_id="alert_mark_read",
        value=str(alert_id),
        block_id=f"alert-{alert_id}",
        message=dm,
        channel_id=school.standin.dm_channel_for(CLASS_TEACHER),
    )
    assert response.status == 200
    await school.server.tasks.idle()
    async with school.server.factory() as db:
        assert (await db.scalars(select(ReadReceipt))).all() == []


# -- with allegations about an adult -------------------------------------------------------


async def test_an_action_on_an_allegation_alerts_its_author_and_manager_only(
    school: Harness,
) -> None:
    response = await allege(school, TA, DEPUTY)  # about the deputy DSL, to the head
    assert response.status == 200  # type: ignore[attr-defined]
    await school.delivered()
    async with signed_in(school, HEAD) as head:
        await head.get("/incidents/1")
        status, _ = await head.post("/incidents/1/actions", {"text": "Spoke to the LADO."})
        assert status == 200
    async with signed_in(school, TA) as author:
        await author.get("/incidents/1")
        status, _ = await author.post("/incidents/1/actions", {"text": "Added a detail."})
        assert status == 200
    await school.delivered()
    # Never the key-holders by rule, never the deputy it is about.
    assert sorted(action_dms(school)) == sorted([TA, HEAD])
    assert not [c for c in school.standin.calls if c.params.get("channel") == DEPUTY]
