"""The retention page (DESIGN §14), as people use it: a key-holder sees the records past
their date, with the pupil, puts one on hold and lifts it, and destroys one after
confirming; anyone else gets the one 404 on every retention route."""

from __future__ import annotations

import datetime as dt

from testing.harness import Harness
from tests.support.records import audit_events, pupil_by_upn, set_date_of_birth
from tests.support.school import DSL, PUPIL_4B, TEACHER
from tests.support.slack import file_concern
from tests.support.web import main_of, shown, signed_in


async def test_a_key_holder_reviews_holds_and_destroys_a_record(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)
    await set_date_of_birth(school, PUPIL_4B, dt.date(1990, 3, 1))
    pupil = await pupil_by_upn(school, PUPIL_4B)
    everything = {"confirm": "destroy", "kind": "concern", "key": "1", "reason": "x", "hold": "1"}
    async with signed_in(school, TEACHER) as teacher:
        for method, path in (
            ("GET", "/retention"),
            ("GET", "/retention/destroy/concern/1"),
            ("POST", "/retention/destroy/concern/1"),
            ("POST", "/retention/hold"),
            ("POST", "/retention/lift"),
        ):
            if method == "GET":
                status, _ = await teacher.get(path)
            else:
                status, _ = await teacher.post(path, everything)
            assert status == 404, (method, path)
        status, _ = await teacher.get("/incidents/1")
        assert status == 200  # still there
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/retention")
        assert status == 200
        page = shown(main_of(body))
        assert 'id="due-concern-1"' in body and pupil.display_name in page
        assert "1 Mar 2015" in page and "date of birth + 25 years" in page
        # A hold needs a reason, then keeps the record off the list until lifted.
        status, body = await dsl.post(
            "/retention/hold", {"kind": "concern", "key": "1", "reason": " "}
        )
        assert status == 400 and "reason" in shown(body)
        status, body = await dsl.post(
            "/retention/hold", {"kind": "concern", "key": "1", "reason": "Civil claim pending"}
        )
        assert status == 200 and 'id="held-concern-1"' in body and 'id="due-concern-1"' not in body
        assert "Civil claim pending" in shown(body)
        status, _ = await dsl.get("/retention/destroy/concern/1")
        assert status == 404  # held: not destroyable
        hold_id = body.split('name="hold" value="', 1)[1].split('"', 1)[0]
        status, body = await dsl.post("/retention/lift", {"hold": hold_id})
        assert status == 200 and 'id="due-concern-1"' in body
        # Destroying asks for confirmation first.
        status, body = await dsl.get("/retention/destroy/concern/1")
        assert status == 200 and 'id="destroy-form"' in body
        status, body = await dsl.post("/retention/destroy/concern/1", {})
        assert status == 400 and 'id="destroy-error"' in body
        status, _ = await dsl.get("/incidents/1")
        assert status == 200
        status, body = await dsl.post("/retention/destroy/concern/1", {"confirm": "destroy"})
        assert status == 200 and "Record destroyed" in body
        status, _ = await dsl.get("/incidents/1")
        assert status == 404
        status, body = await dsl.get("/retention")
        assert 'id="due-concern-1"' not in body
    assert [e.outcome for e in await audit_events(school, "retention.destroy")][-1] == "ok"
    refused = [e for e in await audit_events(school, "retention.view") if e.outcome == "refused"]
    assert refused  # the teacher's visit, audited
