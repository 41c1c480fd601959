"""Property-based tests (hypothesis): arbitrary text through the concern modal's parser
and filing, on SQLite and PostgreSQL.

The parser reads exactly what Slack reported, and filing never raises anything but
`InvalidConcern` (field errors only under the modal's inputs); valid text is stored
exactly (after the documented trim), over-long text is refused, never truncated.

The strategies are in tests/support/concern_forms.py and tests/support/strategies.py.
The database tests are synchronous `@given` tests that drive the async store through one
event loop per test (`Db`); every example works in a workspace of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.concern_modal import parse_submission
from store import workspaces
from store.crypto import bind
from store.db import SessionFactory, transaction
from store.incidents import (
    NARRATIVE_MAX,
    ConcernDraft,
    FiledConcern,
    InvalidConcern,
    check_draft,
    submit_concern,
)
from store.models import Incident, OutboxMessage, PupilDetails, Staff, Workspace
from store.pupils import new_pupil
from tests.support.concern_forms import (
    AUTHOR,
    CATALOGUE,
    CIPHER,
    COLLEAGUE,
    INPUTS,
    NOW,
    PUPILS,
    Form,
    forms,
    slack_view,
)
from tests.support.strategies import DB_SETTINGS, Db


@settings(max_examples=150, deadline=None)
@given(form=forms(), junk=st.booleans())
def test_parser_reads_exactly_what_slack_reported(form: Form, junk: bool) -> None:
    entered = form.entered
    draft = parse_submission(slack_view(entered, now=NOW, junk=junk))
    assert isinstance(draft, ConcernDraft)
    # Text exactly as typed: no trimming, truncation or normalisation at this stage.
    assert draft.narrative == entered["narrative"]
    assert draft.parents_reason == entered.get("parents_reason", "")
    assert draft.pupil_id == (entered.get("pupil") or None)
    assert draft.categories == [c for c in entered["categories"] if c]
    assert draft.linked_pupil_ids == [p for p in entered.get("linked_pupils", []) if p]
    assert draft.also_alert_slack_ids == entered.get("also_alert", [])
    assert draft.agencies == [a for a in entered.get("agencies", []) if a]
    assert draft.parents_contacted == (entered.get("parents_contacted") or None)
    if "happened_at" in entered:
        expected = NOW + dt.timedelta(seconds=entered["happened_at"])
        assert draft.happened_at == expected.replace(microsecond=0)
    else:
        assert draft.happened_at is None
    # The database-free checks answer only under inputs the modal has.
    errors = check_draft(draft, catalogue=CATALOGUE, keyholder=False, now=NOW)
    assert set(errors) <= set(INPUTS)
    for checked in ("narrative", "happened_at", "categories", "agencies", "parents_contacted"):
        assert (checked in errors) == (checked in form.bad), (checked, errors)


@pytest.mark.parametrize(
    "text",
    ["\u200fright-to-left\u200f", "\u202eevil\u202c", "zero\u200bwidth", "e\u0301", "\x00NUL"],
    ids=["rlm", "rlo", "zwsp", "combining", "nul"],
)
def test_parser_and_check_keep_marks_and_refuse_3001_characters(text: str) -> None:
    entered = {"narrative": text + "x" * (NARRATIVE_MAX - len(text)), "categories": []}
    draft = parse_submission(slack_view(entered, now=NOW))
    assert draft.narrative == entered["narrative"] and len(draft.narrative) == NARRATIVE_MAX
    assert "narrative" not in check_draft(draft, catalogue=CATALOGUE, keyholder=False, now=NOW)
    entered["narrative"] += "y"
    draft = parse_submission(slack_view(entered, now=NOW))
    assert draft.narrative == entered["narrative"]  # not truncated...
    errors = check_draft(draft, catalogue=CATALOGUE, keyholder=False, now=NOW)
    assert f"({NARRATIVE_MAX + 1} now)" in errors["narrative"]  # ...refused, with the count


@dataclass(frozen=True)
class School:
    workspace_id: int
    pupil_ids: list[int]


async def small_school(factory: SessionFactory, team_id: str) -> School:
    """A workspace with the author, a colleague and three pupils (4B, 4B, 3A)."""
    async with transaction(factory) as session:
        workspace = await workspaces.ensure(session, team_id=team_id, name="Property School")
        for slack_id in (AUTHOR, COLLEAGUE):
            session.add(
                Staff(
                    workspace_id=workspace.id,
                    email=f"{slack_id.lower()}@school.example",
                    name=slack_id,
                    roles="teacher",
                    slack_user_id=slack_id,
                    active=True,
                )
            )
        await session.flush()
        pupils = [
            await new_pupil(
                session,
                cipher=CIPHER,
                workspace_id=workspace.id,
                details=PupilDetails(
                    upn=f"P{index:011d}0",
                    forename=f"Forename{index}",
                    surname="Surname",
                    preferred_name=None,
                    date_of_birth=dt.date(2016, 1, 1),
                ),
                year_group="4",
                registration_group=group,
            )
            for index, group in enumerate(("4B", "4B", "3A"))
        ]
        return School(workspace.id, [p.id for p in pupils])


async def file_form(
    factory: SessionFactory, school: School, view: dict[str, Any], now: dt.datetime
) -> FiledConcern | InvalidConcern:
    """What `/concern`'s submit listener does: parse, then file in one transaction."""
    draft = parse_submission(view)
    try:
        async with transaction(factory) as session:
            workspace = await session.get(Workspace, school.workspace_id)
            author = await session.scalar(
                select(Staff).where(
                    Staff.workspace_id == school.workspace_id, Staff.slack_user_id == AUTHOR
                )
            )
            assert workspace is not None and author is not None
            return await submit_concern(
                session,
                workspace_id=workspace.id,
                author=author,
                draft=draft,
                catalogue=CATALOGUE,
                cipher=CIPHER,
                public_url="https://vigil.school.example",
                slack_view_id=view["id"],
                now=now,
            )
    except InvalidConcern as invalid:
        return invalid


async def stored_incidents(factory: SessionFactory, workspace_id: int) -> list[Incident]:
    async with factory() as session:
        found = await session.scalars(select(Incident).where(Incident.workspace_id == workspace_id))
        return list(found.all())


async def outbox_count(factory: SessionFactory, workspace_id: int) -> int:
    async with factory() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.workspace_id == workspace_id)
        )
        return int(count or 0)


@DB_SETTINGS
@given(form=forms())
def test_filing_a_modal_stores_exactly_or_refuses_on_the_field(db: Db, form: Form) -> None:
    team = db.team()
    school = db.run(small_school(db.factory, team))
    ids = {token: str(pupil) for token, pupil in zip(PUPILS, school.pupil_ids, strict=True)}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    view = slack_view(form.entered, now=now, pupil_ids=ids, view_id=f"V{team}")
    # Only InvalidConcern may come out: a database error here (e.g. a NUL that PostgreSQL
    # cannot compare, or an id beyond 64 bits) would fail the test by raising.
    outcome = db.run(file_form(db.factory, school, view, now))
    incidents = db.run(stored_incidents(db.factory, school.workspace_id))
    event("refused" if isinstance(outcome, InvalidConcern) else "filed")
    if isinstance(outcome, InvalidConcern):
        assert set(outcome.errors) == set(form.bad), outcome.errors
        assert set(outcome.errors) <= set(INPUTS)  # every error lands under an input
        assert incidents == [] and db.run(outbox_count(db.factory, school.workspace_id)) == 0
        return
    assert not form.bad, f"filed although {sorted(form.bad)} should have been refused"
    (incident,) = incidents
    assert incident.number == outcome.number == 1
    # The narrative round-trips exactly: marks, NULs, combining characters, 3,000 chars.
    assert (
        CIPHER.decrypt(incident.narrative_ct, bind(Incident.narrative_ct, incident.id))
        == form.narrative
    )
    if form.reason:
        assert incident.parents_reason_ct is not None
        assert (
            CIPHER.decrypt(
                incident.parents_reason_ct, bind(Incident.parents_reason_ct, incident.id)
            )
            == form.reason
        )
    else:
        assert incident.parents_reason_ct is None
    assert incident.parents_contacted == form.entered["parents_contacted"]
    assert incident.category_names == list(dict.fromkeys(form.entered["categories"]))
    assert [a.name for a in incident.agencies] == list(
        dict.fromkeys(form.entered.get("agencies", []))
    )
    expected_pupils = [ids[p] for p in [PUPILS[0], *form.entered.get("linked_pupils", [])]]
    assert [str(p.pupil_id) for p in incident.pupils] == list(dict.fromkeys(expected_pupils))
    offset = form.entered.get("happened_at")
    assert incident.happened_at == (now + dt.timedelta(seconds=offset) if offset else now)


VALID_FORM = {
    "pupil": PUPILS[0],
    "narrative": "Said she had not eaten since Friday.",
    "categories": ["Behaviour"],
    "parents_contacted": "no",
    "parents_reason": "Mum is named in the disclosure.",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("narrative", "half an emoji \ud83d here"),  # JSON can carry a lone surrogate
        ("parents_reason", "\udfff"),
        ("also_alert", [AUTHOR + "\x00"]),  # PostgreSQL cannot even compare a NUL
        ("also_alert", ["\ud800"]),
        ("pupil", str(2**63)),  # beyond 64 bits: neither database can compare it
        ("pupil", "9" * 40),
        ("linked_pupils", [PUPILS[1], str(2**64)]),
    ],
    ids=[
        "surrogate-narrative",
        "surrogate-reason",
        "nul-user",
        "surrogate-user",
        "2**63",
        "40-digits",
        "linked-2**64",
    ],
)
def test_unstorable_input_is_a_field_error_not_a_crash(db: Db, field: str, value: Any) -> None:
    school = db.run(small_school(db.factory, db.team()))
    ids = {token: str(pupil) for token, pupil in zip(PUPILS, school.pupil_ids, strict=True)}
    now = dt.datetime.now(dt.UTC)
    # The valid form files (so the field below is what is refused)...
    fine = db.run(
        file_form(db.factory, school, slack_view(VALID_FORM, now=now, pupil_ids=ids), now)
    )
    assert isinstance(fine, FiledConcern)
    # ...and with the one field spoiled it is refused on that field, and nothing is kept.
    spoiled = slack_view({**VALID_FORM, field: value}, now=now, pupil_ids=ids, view_id="V2")
    outcome = db.run(file_form(db.factory, school, spoiled, now))
    assert isinstance(outcome, InvalidConcern)
    assert set(outcome.errors) == {field}
    assert len(db.run(stored_incidents(db.factory, school.workspace_id))) == 1
