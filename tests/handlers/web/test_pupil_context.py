"""Pupil context (CP plan, SEN, social worker...), leavers and wrong-child corrections in
the web view, end to end: shown on the incident page and the chronology to those who may
see them, never in Slack; the key-holder's edit audited and in the chronology; leavers out
of the typeahead but found in the web view; a correction moving the concern between
chronologies and reports.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store.db import transaction
from store.models import PupilContextChange
from store.roster import PUPIL_OPTIONAL, PUPIL_REQUIRED, import_pupils
from testing.harness import Harness
from testing.school import fictional_pupils
from tests.handlers.web.test_chronology import needs_pdf_support
from tests.support import web
from tests.support.records import audit_events, pupil_by_upn
from tests.support.school import DSL, PUPIL_3A, PUPIL_4B, PUPIL_5C, TA, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown

signed_in = functools.partial(web.signed_in, remember=True)

SOCIAL_WORKER = "Quillon Marchbanks"
CONTEXT = {"CP_Plan": "Y", "LAC": "yes", "SEN": "E", "Social_Worker": SOCIAL_WORKER}
FLAG_TEXTS = ("CP plan", "Looked after (LAC)", "EHC plan", "Social worker")


def roster_csv(
    pupils: list[Any], *, context: dict[str, dict[str, str]], skip: tuple[str, ...] = ()
) -> str:
    """The fictional pupils, with the context columns (blank unless given by UPN)."""
    columns = (*PUPIL_REQUIRED, *PUPIL_OPTIONAL)
    extra = (
        "CP_Plan",
        "CIN",
        "LAC",
        "Previously_LAC",
        "SEN",
        "Young_Carer",
        "EAL",
        "Social_Worker",
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*columns, *extra])
    for pupil in pupils:
        if pupil.upn in skip:
            continue
        given = context.get(pupil.upn, {})
        writer.writerow(
            [getattr(pupil, c) for c in columns] + [given.get(name, "") for name in extra]
        )
    return out.getvalue()


async def reimport(
    school: Harness, tmp_path: Path, *, context: dict[str, dict[str, str]], **options: Any
) -> Any:
    path = tmp_path / "pupils-again.csv"
    path.write_text(roster_csv(fictional_pupils(30), context=context, skip=options.pop("skip", ())))
    return await import_pupils(
        school.server.factory,
        workspace_id=school.workspace_id,
        path=path,
        cipher=school.server.cipher,
        **options,
    )


async def suggest(school: Harness, query: str) -> list[dict[str, Any]]:
    view = await school.open_concern(TEACHER)
    response = await school.slack.block_suggestion(
        TEACHER, view=view, action_id="pupil_search", block_id="pupil", value=query
    )
    assert response.status == 200
    return response.json["options"]  # type: ignore[index]


def slack_text(school: Harness, *answers: Any) -> str:
    """Everything Slack was sent (every stand-in call) and every answer to Slack."""
    sent = [json.dumps(call.params, default=str) for call in school.standin.calls]
    return "\n".join(sent + [json.dumps(a, default=str) for a in answers])


async def test_context_from_the_mis_shown_in_the_web_view_and_never_in_slack(
    school: Harness, tmp_path: Path
) -> None:
    report = await reimport(school, tmp_path, context={PUPIL_4B: CONTEXT})
    assert report.context_changed == 1 and not report.errors
    pupil = await pupil_by_upn(school, PUPIL_4B)
    options = await suggest(school, pupil.surname)
    await file_concern(school, pupil_query=PUPIL_4B)
    # Slack: the typeahead, the modal, the alerts and receipts hold no flag and no name.
    everything = slack_text(school, options)
    assert pupil.forename in json.dumps(options)  # the typeahead does name the pupil
    assert SOCIAL_WORKER not in everything and "Marchbanks" not in everything
    for text in FLAG_TEXTS:
        assert text not in everything, text
    # The web view: the author (who may see the concern) sees the context on its page.
    async with signed_in(school, TEACHER) as teacher:
        status, body = await teacher.get("/incidents/1")
    assert status == 200
    row = shown(re.search(rf'<tr id="pupil-{pupil.id}">(.*?)</tr>', body, re.S)[1])  # type: ignore[index]
    assert "CP plan" in row and "Looked after (LAC)" in row and "EHC plan" in row
    assert f"Social worker: {SOCIAL_WORKER}" in row
    # Someone who may not see it gets the one 404, with nothing of the context.
    async with signed_in(school, TA) as ta:
        status, body = await ta.get("/incidents/1")
    assert status == 404 and SOCIAL_WORKER not in body
    # The chronology: the context now, and when it started.
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get(f"/pupils/{pupil.id}")
    page = shown(body)
    assert status == 200
    assert re.search(
        r'id="doc-context">CP plan, Looked after \(LAC\), EHC plan; social worker: '
        + SOCIAL_WORKER,
        page,
    )
    assert "CP plan started" in page and f"Social worker changed: {SOCIAL_WORKER}" in page
    assert "By roster import." in page


async def test_a_keyholder_edits_the_context_audited_and_dated(school: Harness) -> None:
    pupil = await pupil_by_upn(school, PUPIL_3A)
    form = {"cin": "Y", "young_carer": "Y", "sen": "K", "social_worker": "Ondine Farrowgate"}
    async with signed_in(school, DSL) as dsl:
        _, before = await dsl.get(f"/pupils/{pupil.id}")
        assert 'id="context-form"' in before
        status, body = await dsl.post(f"/pupils/{pupil.id}/context", form)
        assert status == 200 and dsl.last_url.split("#")[0].endswith(f"/pupils/{pupil.id}")
        page = shown(body)
        assert "Child in need (CIN) started" in page and "SEN changed: SEN support" in page
        assert (
            "Young carer: recorded" in page and "Social worker changed: Ondine Farrowgate" in page
        )
        assert "By Alys Hughes." in page
        # Saving the same again changes nothing; clearing the social worker is a change.
        await dsl.post(f"/pupils/{pupil.id}/context", form)
        await dsl.post(f"/pupils/{pupil.id}/context", {**form, "social_worker": ""})
    edits = await audit_events(school, "pupil.context")
    assert [e.detail for e in edits] == [
        f"pupil {pupil.id}; cin, sen, young_carer, social_worker",
        f"pupil {pupil.id}; no change",
        f"pupil {pupil.id}; social_worker",
    ]
    assert not any("Farrowgate" in (e.detail or "") for e in edits)
    async with transaction(school.server.factory) as db:
        changes = list(
            await db.scalars(
                select(PupilContextChange).where(PupilContextChange.pupil_id == pupil.id)
            )
        )
    assert [c.source for c in changes] == ["web"] * 5 and all(c.at for c in changes)


async def test_only_a_keyholder_may_edit_the_context(school: Harness) -> None:
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        status, body = await teacher.post(f"/pupils/{pupil.id}/context", {"cp_plan": "Y"})
    assert status == 404
    async with transaction(school.server.factory) as db:
        assert await db.scalar(select(PupilContextChange.id)) is None
    refused = await audit_events(school, "pupil.context")
    assert [e.outcome for e in refused] == ["refused"]


async def test_leavers_leave_the_typeahead_but_a_keyholder_finds_them(
    school: Harness, tmp_path: Path
) -> None:
    pupil = await pupil_by_upn(school, PUPIL_5C)
    assert any(o["value"] == str(pupil.id) for o in await suggest(school, pupil.surname))
    partial = await reimport(school, tmp_path, context={}, skip=(PUPIL_5C,), keep_missing=True)
    assert partial.left == 0
    report = await reimport(school, tmp_path, context={}, skip=(PUPIL_5C,))
    assert report.left == 1 and "1 left" in report.summary()
    assert not any(o["value"] == str(pupil.id) for o in await suggest(school, pupil.surname))
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/pupils", params={"q": pupil.surname})
        assert status == 200 and f'href="/pupils/{pupil.id}"' in body
        assert re.search(
            rf'href="/pupils/{pupil.id}">[^<]*</a> <span class="badge pupil-left">Left', body
        )
        _, body = await dsl.get(f"/pupils/{pupil.id}")
        assert "Left the school (missing from the roster import)" in shown(body)
    back = await reimport(school, tmp_path, context={})
    assert back.rejoined == 1
    assert any(o["value"] == str(pupil.id) for o in await suggest(school, pupil.surname))


def entry_kinds(body: str) -> list[str]:
    return re.findall(r'<tr class="entry entry-([a-z]+)', body)


async def test_a_concern_filed_against_the_wrong_child_moves_to_the_right_one(
    school: Harness,
) -> None:
    wrong = await pupil_by_upn(school, PUPIL_4B)
    right = await pupil_by_upn(school, PUPIL_5C)
    await file_concern(school, pupil_query=PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        _, reports_before = await dsl.get("/reports")
        _, body = await dsl.get("/incidents/1")
        assert 'id="correct-pupil-form"' in body
        # A UPN not on the roster is refused, under the form.
        status, body = await dsl.post(
            "/incidents/1/pupil-correction", {"wrong_pupil": str(wrong.id), "right_upn": "Z99"}
        )
        assert status == 400 and "No pupil on the roster has that UPN." in shown(body)
        status, body = await dsl.post(
            "/incidents/1/pupil-correction",
            {"wrong_pupil": str(wrong.id), "right_upn": PUPIL_5C.lower()},
        )
        assert status == 200
        page = shown(body)
        assert f'<tr id="pupil-{right.id}">' in body and f'<tr id="pupil-{wrong.id}">' not in body
        assert "filed against the wrong pupil (" + wrong.display_name + ")" in page
        _, wrong_chronology = await dsl.get(f"/pupils/{wrong.id}")
        _, right_chronology = await dsl.get(f"/pupils/{right.id}")
        _, found = await dsl.get("/pupils", params={"q": wrong.surname})
        _, reports_after = await dsl.get("/reports")
    # The wrong child's chronology keeps only the note that it moved away; the right
    # child's has the concern, and the note that it moved there.
    assert entry_kinds(wrong_chronology) == ["moved"]
    assert "Filed against this pupil by mistake" in shown(wrong_chronology)
    assert entry_kinds(right_chronology) == ["incident", "moved"]
    assert right.display_name in shown(right_chronology)
    assert wrong.display_name not in shown(right_chronology).split("Chronology:")[1]
    assert re.search(rf'<tr id="pupil-{wrong.id}">.*?<td>0</td>\s*</tr>', found, re.S)

    # Reports count it for the right child's year group.
    def year(body: str, group: str) -> str | None:
        found = re.search(rf'<th scope="row">{re.escape(group)}</th><td>(\d+)</td>', body)
        return found[1] if found else None

    assert wrong.year_group != right.year_group
    assert (year(reports_before, wrong.year_group), year(reports_before, right.year_group)) == (
        "1",
        None,
    )
    assert (year(reports_after, wrong.year_group), year(reports_after, right.year_group)) == (
        None,
        "1",
    )
    corrections = await audit_events(school, "incident.correct_pupil")
    assert [(c.outcome, c.detail) for c in corrections] == [
        ("failed", "invalid: No pupil on the roster has that UPN."),
        ("ok", f"pupil {wrong.id} -> pupil {right.id}"),
    ]


async def test_only_a_keyholder_may_correct_the_pupil(school: Harness) -> None:
    wrong = await pupil_by_upn(school, PUPIL_4B)
    await file_concern(school, pupil_query=PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        _, body = await teacher.get("/incidents/1")
        assert "correct-pupil-form" not in body
        status, _ = await teacher.post(
            "/incidents/1/pupil-correction", {"wrong_pupil": str(wrong.id), "right_upn": PUPIL_5C}
        )
    assert status == 404


async def test_the_chronology_pdf_shows_the_context_and_its_changes(
    school: Harness, tmp_path: Path
) -> None:
    needs_pdf_support()
    pypdf = pytest.importorskip("pypdf")
    await reimport(school, tmp_path, context={PUPIL_4B: CONTEXT})
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        async with dsl.http.get(f"{school.server.url}/pupils/{pupil.id}/chronology.pdf") as got:
            assert got.status == 200
            body = await got.read()
    text = " ".join(
        " ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(io.BytesIO(body)).pages
    )
    assert f"social worker: {SOCIAL_WORKER}" in text
    assert "CP plan started" in text and "Pupil context" in text
    assert "Context" in text and "EHC plan" in text


async def test_a_second_correction_moves_the_concern_on_and_back(school: Harness) -> None:
    first, second, third = [await pupil_by_upn(school, u) for u in (PUPIL_4B, PUPIL_5C, PUPIL_3A)]
    await file_concern(school, pupil_query=PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        for wrong, right in ((first, second), (second, third)):
            status, _ = await dsl.post(
                "/incidents/1/pupil-correction",
                {"wrong_pupil": str(wrong.id), "right_upn": right.upn},
            )
            assert status == 200
        # The pupil it no longer names cannot be "corrected" again.
        status, body = await dsl.post(
            "/incidents/1/pupil-correction", {"wrong_pupil": str(second.id), "right_upn": first.upn}
        )
        assert status == 400 and "Choose a pupil this concern names now." in shown(body)
        kinds = {
            p.upn: entry_kinds((await dsl.get(f"/pupils/{p.id}"))[1])
            for p in (first, second, third)
        }
        assert kinds == {
            first.upn: ["moved"],
            second.upn: ["moved", "moved"],
            third.upn: ["incident", "moved"],
        }
        # And back to the pupil it was filed against.
        status, _ = await dsl.post(
            "/incidents/1/pupil-correction", {"wrong_pupil": str(third.id), "right_upn": first.upn}
        )
        assert status == 200
        _, body = await dsl.get(f"/pupils/{first.id}")
        assert entry_kinds(body) == ["incident", "moved", "moved"]
        _, body = await dsl.get(f"/pupils/{third.id}")
        assert entry_kinds(body) == ["moved", "moved"]
