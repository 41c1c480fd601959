"""The signed-in web pages, end to end, on both databases.

Each test signs real people in (one-time link from Slack, then TOTP), uses the pages as
they would, and checks what they see, what the database holds and what Slack was sent.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re

from sqlalchemy import select

from store.crypto import bind
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentInvite,
    ReadReceipt,
    Staff,
    TotpEnrolment,
)
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.records import audit_events, pupil_with_upn, staff_member
from tests.support.school import (
    CLASS_TEACHER,
    DSL,
    NARRATIVE,
    OFFICE,
    PUPIL_3A,
    PUPIL_4B,
    TA,
    TEACHER,
)
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

REASON = "Mum is the subject of the concern; advice from MASH first."
ACTION_TEXT = "Spoke to grandmother at pick-up; she will take her to the GP tomorrow."

# TEACHER (4B) files a behaviour concern about a 4B pupil in Slack (all of it may vary).
report = file_concern


async def staff_id(school: Harness, slack_id: str) -> int:
    return (await staff_member(school, slack_id)).id


def alert_rows(body: str) -> list[tuple[int, str]]:
    """(number, "read"/"unread") for each row of My alerts, in page order."""
    rows = re.findall(
        r'<tr class="(read|unread)" id="alert-\d+">\s*<td><a href="/incidents/(\d+)">', body
    )
    return [(int(number), state) for state, number in rows]


# -- my alerts ----------------------------------------------------------------------------


async def test_my_alerts_lists_unread_first_then_newest(school: Harness) -> None:
    for categories in (["Behaviour"], ["Medical"], ["Attendance"]):
        await report(school, categories=categories)
    # The DSL reads #2 in Slack.
    message = next(m for m in school.standin.messages_for_user(DSL) if "#2 " in m["text"])
    await school.slack.click_button(
        DSL, message, "alert_mark_read", channel_id=school.standin.dm_channel_for(DSL)
    )
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/alerts")
    assert status == 200
    assert alert_rows(body) == [(3, "unread"), (1, "unread"), (2, "read")]
    page = shown(body)
    assert "2 unread." in page
    assert "Chitra Patel" in page and "Medical" in page and "New concern" in page
    # Only what Slack may show: no pupil, no narrative.
    assert "hungry" not in page


async def test_my_alerts_shows_action_and_shared_alerts(school: Harness) -> None:
    await report(school)
    ta = await staff_id(school, TA)
    office = await staff_id(school, OFFICE)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        await teacher.post("/incidents/1/actions", {"text": ACTION_TEXT, "alert": str(ta)})
        await teacher.post("/incidents/1/invite", {"staff": str(office)})
    async with signed_in(school, TA) as user:
        _, body = await user.get("/alerts")
    assert alert_rows(body) == [(1, "unread")] and "Action" in body
    assert ACTION_TEXT not in shown(body)
    async with signed_in(school, OFFICE) as user:
        _, body = await user.get("/alerts")
    assert alert_rows(body) == [(1, "unread")] and "Shared with you" in body


# -- the incident page -------------------------------------------------------------------


async def test_incident_page_shows_pupils_narrative_and_read_receipts(school: Harness) -> None:
    await report(
        school,
        linked_queries=[PUPIL_3A],
        agencies=["Police"],
        parents_contacted="no",
        parents_reason=REASON,
    )
    # Hana Jones (4B class teacher) reads her alert in Slack; the others have not.
    message = school.standin.messages_for_user(CLASS_TEACHER)[0]
    await school.slack.click_button(
        CLASS_TEACHER,
        message,
        "alert_mark_read",
        channel_id=school.standin.dm_channel_for(CLASS_TEACHER),
    )
    async with school.server.factory() as db:
        main = await pupil_with_upn(school, db, PUPIL_4B)
        linked = await pupil_with_upn(school, db, PUPIL_3A)
    assert main is not None and linked is not None
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/incidents/1")
    assert status == 200
    page = shown(body)
    assert "Concern #1" in page
    assert main.display_name in page and linked.display_name in page
    assert "Main pupil" in page and "Linked" in page and ">4B<" in body and ">3A<" in body
    assert NARRATIVE in page
    assert REASON in page and "Police" in page and "Behaviour" in page
    assert "Chitra Patel" in page  # the author
    receipts = page[
        page.index('id="receipts"') : page.index("</table>", page.index('id="receipts"'))
    ]
    assert re.search(r"Hana Jones</td>\s*<td>Class teacher</td>.*?Read</span>", receipts, re.S)
    assert re.search(
        r"Ben Okafor</td>\s*<td>Safeguarding team</td>.*?Unread</span>", receipts, re.S
    )
    assert "Dylan Evans" in receipts  # the linked 3A pupil's class teacher was alerted too
    # The DSL has an unread alert on it, so the page offers Mark as read.
    assert 'action="/incidents/1/read"' in body
    # Viewing was audited, with where from.
    views = await audit_events(school, "incident.view")
    assert [(v.outcome, v.ip is not None) for v in views] == [("ok", True)]


async def test_pages_use_no_inline_script_or_style(school: Harness) -> None:
    await report(school)
    async with signed_in(school, DSL) as dsl:
        for path in ("/alerts", "/incidents/1", "/audit", "/staff", "/incidents/999"):
            _, body = await dsl.get(path)
            assert "<script>" not in body and "<style" not in body and " style=" not in body
            assert not re.search(r"<[^>]+\son[a-z]+=", body), path


async def test_mark_as_read_from_the_web_updates_the_slack_dm(school: Harness) -> None:
    await report(school)
    dm = school.standin.messages_for_user(DSL)[0]
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        status, body = await dsl.post("/incidents/1/read")
        assert status == 200 and dsl.last_url.endswith("/incidents/1")
        assert 'action="/incidents/1/read"' not in body  # nothing left to mark
        assert re.search(r"Alys Hughes</td>.*?Read</span>.*?in the web view", body, re.S)
        # Marking again changes nothing.
        await dsl.post("/incidents/1/read")
    await school.delivered()
    async with school.server.factory() as db:
        receipts = (
            await db.execute(
                select(ReadReceipt.via, Staff.slack_user_id).join(
                    Staff, Staff.id == ReadReceipt.staff_id
                )
            )
        ).all()
    assert receipts == [("web", DSL)]
    updates = school.standin.calls_to("chat.update", ok_only=True)
    assert len(updates) == 1
    assert updates[0].params["ts"] == dm["ts"]
    assert updates[0].params["channel"] == school.standin.dm_channel_for(DSL)
    updated = school.standin.messages[(school.standin.dm_channel_for(DSL), dm["ts"])]
    assert "alert_mark_read" not in json.dumps(updated["blocks"])
    reads = await audit_events(school, "alert.read")
    assert len(reads) == 1 and reads[0].outcome == "ok" and "via web" in (reads[0].detail or "")


async def test_an_alert_read_on_the_web_before_its_dm_went_out_is_sent_as_read(
    school: Harness,
) -> None:
    await school.server.worker.stop()  # Slack is slow today: no DM has gone out yet
    response = await school.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
    )
    assert response.status == 200 and not response.body
    assert school.standin.messages_for_user(DSL) == []
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/read")
        assert status == 200
    school.server.worker.start()
    await school.delivered()
    (dm,) = school.standin.messages_for_user(DSL)
    blocks = json.dumps(dm["blocks"])
    assert "alert_mark_read" not in blocks and "Read" in blocks
    # Everyone else's DM still offers the button.
    (other,) = school.standin.messages_for_user("U0DDSLOKAF")
    assert "alert_mark_read" in json.dumps(other["blocks"])


async def test_an_alert_read_while_its_dm_is_being_sent_is_updated_once_it_lands(
    school: Harness,
) -> None:
    async with signed_in(school, DSL) as dsl:
        school.standin.inject_hang("chat.postMessage", seconds=2.0, count=10)  # Slack is slow
        response = await school.report_concern(
            TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
        )
        assert response.status == 200 and not response.body
        await school.standin.wait_for_calls("chat.postMessage", 6, ok_only=False)
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/read")  # the DM is on its way right now
        assert status == 200
        assert school.standin.messages_for_user(DSL) == []
    await school.delivered(timeout=15)
    (dm,) = school.standin.messages_for_user(DSL)
    assert "alert_mark_read" not in json.dumps(dm["blocks"])
    (update,) = school.standin.calls_to("chat.update", ok_only=True)
    assert update.params["ts"] == dm["ts"]


# -- actions -----------------------------------------------------------------------------


async def test_add_action_is_encrypted_ordered_and_alerts_with_a_redacted_dm(
    school: Harness,
) -> None:
    await report(school)
    ta = await staff_id(school, TA)
    second = "Grandmother confirmed the GP appointment is booked."
    async with signed_in(school, TEACHER) as teacher:
        _, page = await teacher.get("/incidents/1")
        assert "No actions yet." in page
        status, body = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "alert": str(ta)}
        )
        assert status == 200 and teacher.last_url.endswith("/incidents/1")
        status, body = await teacher.post("/incidents/1/actions", {"text": second})
    assert status == 200
    page = shown(body)
    assert ACTION_TEXT in page and second in page
    assert page.index(ACTION_TEXT) < page.index(second)
    async with school.server.factory() as db:
        rows = (await db.scalars(select(IncidentAction).order_by(IncidentAction.id))).all()
    assert len(rows) == 2
    assert ACTION_TEXT.encode() not in rows[0].text_ct and b"grandmother" not in rows[0].text_ct
    assert (
        school.server.cipher.decrypt(rows[0].text_ct, bind(IncidentAction.text_ct, rows[0].id))
        == ACTION_TEXT
    )
    await school.delivered()
    dms = school.standin.messages_for_user(TA)
    assert len(dms) == 1
    assert "#1" in dms[0]["text"]
    traffic = json.dumps([c.params for c in school.standin.calls])
    assert "grandmother" not in traffic.lower() and "GP" not in traffic
    added = await audit_events(school, "action.add")
    assert [a.outcome for a in added] == ["ok", "ok"]
    assert all(ACTION_TEXT not in (a.detail or "") for a in added)


async def test_invalid_action_keeps_the_text_and_says_why(school: Harness) -> None:
    await report(school)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, body = await teacher.post("/incidents/1/actions", {"text": "   "})
        assert status == 400 and "Say what was done or learned." in body
        status, body = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "alert": "99999"}
        )
    assert status == 400
    assert "not current staff" in body
    assert ACTION_TEXT in shown(body)  # what they typed is kept
    async with school.server.factory() as db:
        assert (await db.scalars(select(IncidentAction))).all() == []


async def test_keyholder_recategorises_and_the_original_stays(school: Harness) -> None:
    await report(school)
    async with signed_in(school, DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        assert 'name="categories"' in page  # key-holders are offered re-categorisation
        status, body = await dsl.post(
            "/incidents/1/actions",
            {
                "text": "Disclosure at lunch: now a safeguarding matter.",
                "categories": "Safeguarding",
            },
        )
        assert status == 200
        # A later action without categories leaves them as re-categorised.
        status, body = await dsl.post("/incidents/1/actions", {"text": "Called MASH."})
    page = shown(body)
    assert "Re-categorised to Safeguarding, originally Behaviour" in page
    current = page[
        page.index('id="categories"') : page.index("</dd>", page.index('id="categories"'))
    ]
    assert "Safeguarding" in current and "originally Behaviour" in current
    async with school.server.factory() as db:
        incident = await db.scalar(select(Incident))
        assert incident is not None and incident.category_names == ["Behaviour"]
        action = await db.scalar(select(IncidentAction).order_by(IncidentAction.id))
        assert action is not None and action.categories == ["Safeguarding"]
    events = await audit_events(school, "incident.recategorise")
    assert len(events) == 1 and "Safeguarding" in (events[0].detail or "")


async def test_non_keyholder_cannot_recategorise(school: Harness) -> None:
    await report(school)
    async with signed_in(school, TEACHER) as teacher:
        _, page = await teacher.get("/incidents/1")
        assert 'name="categories"' not in page  # not offered
        # A tampered form sends categories anyway.
        status, body = await teacher.post(
            "/incidents/1/actions", {"text": ACTION_TEXT, "categories": "Safeguarding"}
        )
    assert status == 400
    assert "Only the safeguarding team can re-categorise." in body
    assert ACTION_TEXT in shown(body)
    async with school.server.factory() as db:
        assert (await db.scalars(select(IncidentAction))).all() == []
    assert await audit_events(school, "incident.recategorise") == []
    assert [e.outcome for e in await audit_events(school, "action.add")] == ["failed"]


# -- sharing -----------------------------------------------------------------------------


async def test_invite_gives_the_colleague_access_and_a_dm(school: Harness) -> None:
    await report(school)
    ta = await staff_id(school, TA)
    async with signed_in(school, TA) as guest:
        status, _ = await guest.get("/incidents/1")
        assert status == 404
        async with signed_in(school, TEACHER) as teacher:
            _, page = await teacher.get("/incidents/1")
            assert f'<option value="{ta}">Eleri Lewis</option>' in page
            status, _ = await teacher.post("/incidents/1/invite", {"staff": str(ta)})
            assert status == 200
            # Inviting twice is refused with a message, not an error page.
            status, body = await teacher.post("/incidents/1/invite", {"staff": str(ta)})
            assert status == 400 and "already been invited" in body
        status, body = await guest.get("/incidents/1")
        assert status == 200 and NARRATIVE in shown(body)
        assert re.search(r"Eleri Lewis</td>\s*<td>Shared with them</td>", body)
    await school.delivered()
    dms = school.standin.messages_for_user(TA)
    assert len(dms) == 1 and "shared concern #1 with you" in dms[0]["text"]
    assert "hungry" not in json.dumps(dms[0])
    async with school.server.factory() as db:
        invites = (await db.scalars(select(IncidentInvite))).all()
        alerts = (await db.scalars(select(Alert).where(Alert.recipient_id == ta))).all()
    assert [i.staff_id for i in invites] == [ta]
    assert [a.reason for a in alerts] == ["invited"]
    events = await audit_events(school, "incident.invite")
    assert [(e.outcome, e.subject_id) for e in events] == [("ok", ta), ("failed", None)]


# -- key-holders' pages ----------------------------------------------------------------


async def test_audit_log_filters_by_person_and_incident(school: Harness) -> None:
    await report(school)
    await report(school, categories=["Medical"])
    teacher_id = await staff_id(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, not_found = await teacher.get("/audit")
        assert status == 404 and "Not found" in not_found
        _, missing = await teacher.get("/incidents/999")
        assert not_found == missing  # the same page as anything else that is not there
        status, _ = await teacher.get("/staff")
        assert status == 404
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/2")
        status, body = await dsl.get("/audit")
        assert status == 200
        assert "incident.view" in body and "signin.link" in body and "totp.enrol" in body

        _, body = await dsl.get(f"/audit?person={teacher_id}")
        people = set(
            re.findall(
                r'<tr class="outcome-\w+" id="audit-\d+">\s*<td>.*?</td>\s*<td>([^<]*)</td>',
                body,
                re.S,
            )
        )
        assert people == {"Chitra Patel"}
        assert "audit.view" in body  # the refused look at the audit log is there
        # She filed both concerns (audited incident.create) and viewed #1.
        assert '<a href="/incidents/1">#1</a>' in body and "incident.create" in body

        _, body = await dsl.get("/audit?incident=2")
        table = body.split("<table", 1)[1]
        assert set(re.findall(r'<a href="/incidents/(\d+)">#\d+</a>', table)) == {"2"}
        # #2's entries: Chitra filing it, Alys viewing it; nothing about #1.
        assert "Alys Hughes" in table and "incident.view" in table and "incident.create" in table

        _, body = await dsl.get("/audit?incident=42")
        assert "There is no concern #42." in body
    assert len(await audit_events(school, "audit.view")) == 5  # 1 refused + 4 shown


async def test_audit_log_pages_to_older_entries(school: Harness) -> None:
    await report(school)
    async with signed_in(school, DSL) as dsl:
        for _ in range(105):
            await dsl.get("/incidents/1")
        _, body = await dsl.get("/audit?incident=1")
        ids = [int(i) for i in re.findall(r'id="audit-(\d+)"', body)]
        assert len(ids) == 100 and ids == sorted(ids, reverse=True)
        older = re.search(r'href="(/audit\?[^"]+)" id="older"', body)
        assert older is not None
        _, body = await dsl.get(html.unescape(older.group(1)))
        more = [int(i) for i in re.findall(r'id="audit-(\d+)"', body)]
    assert more and max(more) < min(ids)
    assert 'id="older"' not in body


async def test_totp_reset_makes_them_enrol_again(school: Harness) -> None:
    teacher_id = await staff_id(school, TEACHER)
    async with signed_in(school, TEACHER) as first:
        secret = first.secret
    # Signing in again asks for a code, not a new enrolment.
    async with signed_in(school, TEACHER, secret=secret):
        pass
    async with signed_in(school, DSL) as dsl:
        _, page = await dsl.get("/staff")
        row = page[page.index(f'id="staff-{teacher_id}"') :]
        row = row[: row.index("</tr>")]
        assert "Chitra Patel" in row and "teacher" in row and "4B" in row and "Set up" in row
        status, body = await dsl.post(f"/staff/{teacher_id}/totp-reset")
        assert status == 200
        assert "Chitra Patel will set up their authenticator again" in body
    async with school.server.factory() as db:
        assert await db.get(TotpEnrolment, teacher_id) is None
    events = await audit_events(school, "totp.reset")
    assert [(e.outcome, e.subject_id) for e in events] == [("ok", teacher_id)]
    # Next sign-in: the enrolment page with a new key, and the old authenticator is useless.
    user = WebUser(school.server.url, school.now)
    try:
        school.clock_offset += dt.timedelta(seconds=30)
        status, page = await user.use_login_link(await school.login_link(TEACHER))
        assert status == 200 and "Set up your authenticator" in page
        assert 'id="totp-secret"' in page
        new_secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
        assert new_secret is not None and new_secret.group(1).replace(" ", "") != secret
    finally:
        await user.close()


async def test_only_keyholders_reset_authenticators(school: Harness) -> None:
    dsl_id = await staff_id(school, DSL)
    async with signed_in(school, DSL):
        pass
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/alerts")
        status, body = await teacher.post(f"/staff/{dsl_id}/totp-reset")
    assert status == 404 and "Not found" in body
    async with school.server.factory() as db:
        assert await db.get(TotpEnrolment, dsl_id) is not None
    assert [e.outcome for e in await audit_events(school, "totp.reset")] == ["refused"]


# -- headers -----------------------------------------------------------------------------


async def test_every_page_has_the_security_headers(school: Harness) -> None:
    await report(school)
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/1")
        csrf = re.search(r'name="csrf" value="([^"]+)"', dsl.last_page)
        assert csrf is not None
        responses = []
        for path in (
            "/alerts",
            "/incidents/1",
            "/incidents/999",
            "/audit",
            "/staff",
            "/static/vigil.css",
            "/static/vigil.js",
        ):
            async with dsl.http.get(dsl._url(path), allow_redirects=False) as response:
                responses.append((path, response.status, response.headers))
        async with dsl.http.post(
            dsl._url("/incidents/1/read"), data={"csrf": csrf.group(1)}, allow_redirects=False
        ) as response:
            responses.append(("POST read", response.status, response.headers))
    for path, status, headers in responses:
        assert status in (200, 303, 404), path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert headers["Cache-Control"] == "no-store", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
