"""Retention (DESIGN §14), on both databases: the rules and their configuration, the
review list (pupil rule, allegation rule, a concern naming several pupils, legal holds),
destruction leaving nothing readable but a tombstone, and the immutability guard still
refusing every deletion outside that one path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from store import referrals, retention
from store.crypto import bind
from store.documents.storage import DirectoryStore
from store.flows import Visit
from store.flows import retention as flows
from store.immutability import ImmutableRecordError
from store.models import (
    IMMUTABLE_TABLES,
    AuditEvent,
    Base,
    FileChunk,
    Incident,
    IncidentAction,
    NarrativeToken,
    RetentionHold,
    StoredFile,
)
from store.retention import RecordKind
from store.school_config import Retention, SchoolConfigError, parse_school_config
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.paths import REPO
from tests.support.records import add_action, pupil_by_upn, set_date_of_birth, staff_member
from tests.support.school import DSL, HEAD, PUPIL_3A, PUPIL_4B, PUPIL_5C, TEACHER, TEACHER_3A
from tests.support.slack import file_concern
from tests.support.web import signed_in

SECRET = "Zebracrossing disclosure: uncle Mortimer keeps the kitchen locked."
OTHER = "Quillfeather said her brother walks her home past the canal."
ACTION_TEXT = "Phoned Mortimer's neighbour about the kitchen padlock."
SCAN = b"%PDF-1.4\n% Mortimer letter\n" + b"7" * 5000


async def attach_file_and_body_map(web: WebUser, *, file_name: str, note: str) -> None:
    """On concern 1, as the signed-in `web`: a file (`SCAN`) and a body map with one mark."""
    await web.get("/incidents/1")
    status, _ = await web.upload("/incidents/1/files", file_name, SCAN)
    assert status == 200
    await web.get("/incidents/1/body-map")
    status, _ = await web.post(
        "/incidents/1/body-map",
        {"mark-1-side": "front", "mark-1-region": "head", "mark-1-type": "bruise",
         "mark-1-size": "1 to 2 cm", "mark-1-note": note},
    )  # fmt: skip
    assert status == 200


# --- the rules and their configuration -----------------------------------------------


def test_the_rules_count_whole_years_and_a_concern_waits_for_its_youngest_pupil() -> None:
    rules = Retention()
    assert rules == Retention(pupil_years=25, allegation_years=10)
    assert retention.pupil_due(dt.date(2001, 6, 3), rules) == dt.date(2026, 6, 3)
    assert retention.pupil_due(dt.date(2004, 2, 29), rules) == dt.date(2029, 2, 28)
    assert retention.allegation_due(dt.date(2020, 1, 9), rules) == dt.date(2030, 1, 9)
    births = [dt.date(1990, 1, 1), dt.date(1995, 7, 1)]
    assert retention.concern_due(births, rules) == dt.date(2020, 7, 1)
    assert retention.concern_due([dt.date(1990, 1, 1), None], rules) is None
    assert retention.rule_text(retention.Rule.PUPIL, rules) == "date of birth + 25 years"
    assert retention.rule_text(retention.Rule.ALLEGATION, rules) == "allegation date + 10 years"


def test_retention_is_read_from_the_config_file() -> None:
    config = parse_school_config({"retention": {"pupil_years": 30, "allegation_years": 45}})
    assert config.retention == Retention(pupil_years=30, allegation_years=45)
    assert parse_school_config({}).retention == Retention()
    example = (REPO / "vigil.example.toml").read_text()
    assert "[retention]" in example and "pupil_years = 25" in example


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"pupil_years": 0}, "retention.pupil_years", "whole number of at least 1"),
        ({"pupil_years": "25"}, "retention.pupil_years", "whole number of at least 1"),
        ({"pupil_years": 2.5}, "retention.pupil_years", "whole number of at least 1"),
        ({"allegation_years": -10}, "retention.allegation_years", "whole number"),
        ({"allegation_years": 250}, "retention.allegation_years", "at most 100 years"),
        ({"pupils_years": 25}, "retention.pupils_years", "unknown key"),
    ],
)
def test_a_bad_retention_value_names_its_key(table: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(SchoolConfigError) as raised:
        parse_school_config({"retention": table}, source="vigil.toml")
    assert raised.value.key == key and problem in raised.value.problem
    assert str(raised.value).startswith(f"vigil.toml: {key}: ")


# --- the review list -------------------------------------------------------------------


async def set_born(school: Harness, upn: str, born: dt.date) -> None:
    await set_date_of_birth(school, upn, born)


def visit_of(school: Harness, staff: Any, *, rules: Retention | None = None) -> Visit:
    setup = school.server.web_deps.setup_for(school.workspace_id)
    if rules is not None:
        setup = dataclasses.replace(
            setup, school=dataclasses.replace(setup.school, retention=rules)
        )
    return Visit(staff, "192.0.2.1", school.now(), setup)


def listed(records: list[retention.Due]) -> list[tuple[RecordKind, int | None]]:
    return [(r.kind, r.number) for r in records]


async def test_the_review_list_applies_each_rule(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)  # 1
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, linked_queries=[PUPIL_5C])  # 2
    response = await school.report_concern(  # 3: an allegation about Dylan Evans
        TEACHER,
        pupil_query=PUPIL_4B,
        narrative="Shouted at the pupil and pushed her chair over.",
        categories=["Behaviour"],
        about_adult="staff",
        adult_query="Dylan Evans",
    )
    assert response.status == 200
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))  # due 1 Mar 2015
    await set_born(school, PUPIL_3A, dt.date(1990, 5, 1))  # due 1 May 2015
    await set_born(school, PUPIL_5C, dt.date(2019, 1, 1))  # due 2044
    dsl, head = await staff_member(school, DSL), await staff_member(school, HEAD)
    today = school.now().date()
    rules = Retention()
    async with school.server.factory() as db:
        due = await retention.due_for_review(db, viewer=dsl, rules=rules, today=today)
        # #2 names a pupil not yet due; the allegation is not the DSL's to see.
        assert listed(due) == [(RecordKind.CONCERN, 1)]
        assert due[0].due_on == dt.date(2015, 3, 1) and due[0].rule is retention.Rule.PUPIL
        # The head, its manager, sees the allegation: due ten years after it happened.
        due = await retention.due_for_review(db, viewer=head, rules=rules, today=today)
        assert listed(due) == [(RecordKind.CONCERN, 1)]
        later = today + dt.timedelta(days=3653 + 2)
        due = await retention.due_for_review(db, viewer=head, rules=rules, today=later)
        assert (RecordKind.ALLEGATION, 3) in listed(due)
        # Evans, the adult named, never sees it (he is no key-holder either way).
        evans = await staff_member(school, TEACHER_3A)
        due = await retention.due_for_review(db, viewer=evans, rules=rules, today=later)
        assert (RecordKind.ALLEGATION, 3) not in listed(due)
        # A longer rule: nothing is due yet.
        longer = Retention(pupil_years=40, allegation_years=10)
        assert await retention.due_for_review(db, viewer=dsl, rules=longer, today=today) == []
    await set_born(school, PUPIL_5C, dt.date(1989, 1, 1))
    async with school.server.factory() as db:
        due = await retention.due_for_review(db, viewer=dsl, rules=rules, today=today)
        assert listed(due) == [(RecordKind.CONCERN, 1), (RecordKind.CONCERN, 2)]
        assert due[1].due_on == dt.date(2015, 5, 1)  # the later of the two pupils'
        page = await flows.review_page(db, visit=visit_of(school, dsl))
    assert [r.number for r in page.due] == [1, 2]
    names = {(await pupil_by_upn(school, upn)).display_name for upn in (PUPIL_3A, PUPIL_5C)}
    assert set(page.due[1].pupils) == names


async def test_a_legal_hold_keeps_a_record_until_it_is_lifted(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    dsl = await staff_member(school, DSL)
    visit = visit_of(school, dsl)
    ref = flows.RecordRef(flows.CONCERN, 1)
    reason = "Police investigation Op Heron: keep until the trial ends."
    async with school.server.factory() as db, db.begin():
        refused = await flows.place_hold(db, visit=visit, ref=ref, reason="  ")
        assert isinstance(refused, flows.RetentionPage) and "reason" in (refused.error or "")
        held = await flows.place_hold(db, visit=visit, ref=ref, reason=reason)
        assert isinstance(held, flows.Held)
        # Not the key-holder's to see, or no such record: refused like any other.
        assert (
            await flows.place_hold(
                db, visit=visit, ref=flows.RecordRef(flows.CONCERN, 99), reason=reason
            )
            is None
        )
    async with school.server.factory() as db, db.begin():
        page = await flows.review_page(db, visit=visit)
        assert page.due == [] and [r.number for r in page.held] == [1]
        assert page.held[0].hold is not None and page.held[0].hold.reason == reason
        assert page.held[0].overdue  # past its date, and kept
        # A held record cannot be destroyed.
        assert await flows.destruction_page(db, visit=visit, ref=ref) is None
        assert (
            await flows.destroy(
                db, visit=visit, files=school.server.web_deps.files, ref=ref, confirmed=True
            )
            is None
        )
        stored = await db.scalar(select(RetentionHold))
        assert stored is not None and reason.encode() not in stored.reason_ct
        assert await flows.lift_hold(db, visit=visit, hold_id=held.hold_id)
        assert not await flows.lift_hold(db, visit=visit, hold_id=held.hold_id)  # lifted
    async with school.server.factory() as db:
        page = await flows.review_page(db, visit=visit)
        assert [r.number for r in page.due] == [1] and page.held == []
        audited = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action.like("retention.%")))
        ).all()
    kinds = [(e.action, e.outcome) for e in audited]
    assert ("retention.hold", "ok") in kinds and ("retention.lift", "ok") in kinds
    assert ("retention.hold", "failed") in kinds and ("retention.destroy", "refused") in kinds
    assert all(reason not in (e.detail or "") for e in audited)


# --- destruction ----------------------------------------------------------------------


async def every_value(school: Harness) -> list[Any]:
    """Every value in every table of the database, read raw."""
    values: list[Any] = []
    async with school.server.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = await connection.execute(select(table))
            for row in rows.all():
                values.extend(row)
    return values


def holds_bytes(values: list[Any], needle: bytes) -> bool:
    for value in values:
        if isinstance(value, bytes | bytearray | memoryview) and needle in bytes(value):
            return True
        if isinstance(value, str) and needle.decode("latin-1") in value:
            return True
    return False


async def test_destruction_leaves_nothing_readable_but_a_tombstone(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=SECRET)  # 1
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, narrative=OTHER)  # 2
    async with signed_in(school, DSL, remember=True) as dsl_web:
        await attach_file_and_body_map(
            dsl_web, file_name="Mortimer letter.pdf", note="Mortimer bruise"
        )
    dsl = await staff_member(school, DSL)
    async with school.server.factory() as db, db.begin():
        incident = await db.scalar(select(Incident).where(Incident.number == 1))
        assert incident is not None
        action = await add_action(school, db, author=dsl, incident=incident, text=ACTION_TEXT)
        agency = school.server.web_deps.school.agencies[0]
        await referrals.record_referral(
            db,
            incident=incident,
            action=action,
            author=dsl,
            agency=agency,
            referred_at=school.now(),
            reference="POL-778812",
            working=school.server.web_deps.school.working_time,
            cipher=school.server.cipher,
            now=school.now(),
        )
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    async with school.server.factory() as db:
        doomed = await db.scalar(select(Incident).where(Incident.number == 1))
        assert doomed is not None
        narrative_ct, doomed_id = doomed.narrative_ct, doomed.id
        action_ct = await db.scalar(
            select(IncidentAction.text_ct).where(IncidentAction.incident_id == doomed_id)
        )
        file = await db.scalar(select(StoredFile).where(StoredFile.incident_id == doomed_id))
        assert file is not None and action_ct is not None
        key_ct = file.key_ct
        chunks = list(
            (await db.scalars(select(FileChunk.data).where(FileChunk.file_id == file.id))).all()
        )
        tokens = set(
            (
                await db.scalars(
                    select(NarrativeToken.token).where(NarrativeToken.incident_id == doomed_id)
                )
            ).all()
        )
        kept_tokens = set(
            (
                await db.scalars(
                    select(NarrativeToken.token).where(NarrativeToken.incident_id != doomed_id)
                )
            ).all()
        )
    assert chunks and tokens
    visit = visit_of(school, dsl)
    ref = flows.RecordRef(flows.CONCERN, 1)
    files = school.server.web_deps.files
    async with school.server.factory() as db, db.begin():
        unconfirmed = await flows.destroy(db, visit=visit, files=files, ref=ref, confirmed=False)
        assert isinstance(unconfirmed, flows.NotConfirmed)
    async with school.server.factory() as db, db.begin():
        done = await flows.destroy(db, visit=visit, files=files, ref=ref, confirmed=True)
        assert done == flows.Destroyed(RecordKind.CONCERN, 1)
    # Nothing of it is left in any table: no row naming it, no ciphertext, key or token.
    async with school.server.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if "incident_id" in table.c:
                found = await connection.scalar(
                    select(table.c.incident_id).where(table.c.incident_id == doomed_id)
                )
                assert found is None, table.name
    values = await every_value(school)
    for needle in (narrative_ct, action_ct, key_ct, *chunks, b"POL-778812"):
        assert not holds_bytes(values, needle)
    async with school.server.factory() as db:
        left = set((await db.scalars(select(NarrativeToken.token))).all())
        assert not (tokens - kept_tokens) & left
        # The other record is untouched, and still reads.
        other = await db.scalar(select(Incident).where(Incident.number == 2))
        assert other is not None
        where = bind(Incident.narrative_ct, other.id)
        assert school.server.cipher.decrypt(other.narrative_ct, where) == OTHER
        tombstones = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "retention.destroy"))
        ).all()
    (tombstone,) = [t for t in tombstones if t.outcome == "ok"]
    assert tombstone.actor_id == dsl.id and tombstone.incident_id is None
    assert tombstone.detail is not None
    assert "concern #1" in tombstone.detail and "date of birth + 25 years" in tombstone.detail
    pupil = await pupil_by_upn(school, PUPIL_4B)
    for part in (pupil.forename, pupil.surname, "Mortimer", "1990"):
        assert part not in tombstone.detail
    # The destroyed concern's page is the one 404, to everyone.
    async with signed_in(school, DSL, remember=True) as dsl_web:
        status, _ = await dsl_web.get("/incidents/1")
        assert status == 404
        status, body = await dsl_web.get("/incidents/2")
        assert status == 200 and "Quillfeather" in body


async def test_a_paper_record_is_destroyed_with_its_scans(school: Harness) -> None:
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    pupil = await pupil_by_upn(school, PUPIL_4B)
    pupil_id = pupil.id
    async with signed_in(school, DSL, remember=True) as dsl_web:
        await dsl_web.get(f"/pupils/{pupil_id}")
        status, _ = await dsl_web.send_files(
            f"/pupils/{pupil_id}/paper",
            [("files", "scan.pdf", SCAN)],
            {"recorded_on": "2001-03-14", "description": "Mortimer note from the file."},
        )
        assert status == 200
    dsl = await staff_member(school, DSL)
    visit = visit_of(school, dsl)
    async with school.server.factory() as db:
        page = await flows.review_page(db, visit=visit)
    (row,) = page.due
    assert row.kind is RecordKind.PAPER and row.pupils == (pupil.display_name,)
    async with school.server.factory() as db, db.begin():
        done = await flows.destroy(
            db, visit=visit, files=school.server.web_deps.files, ref=row.ref, confirmed=True
        )
    assert done == flows.Destroyed(RecordKind.PAPER, None)
    async with school.server.factory() as db:
        assert await db.scalar(select(StoredFile.id)) is None
        assert await db.scalar(select(FileChunk.file_id)) is None


async def test_a_directory_store_removes_a_destroyed_file(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    path = store.path("abcdef0123")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"sealed")
    await store.destroy("abcdef0123")
    assert not path.exists()
    await store.destroy("abcdef0123")  # already gone: nothing to do


# --- the guard still refuses everywhere else -------------------------------------------


async def test_the_orm_guard_refuses_a_delete_statement(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with school.server.factory() as db:
        with pytest.raises(ImmutableRecordError):
            await db.execute(delete(Incident))
        with pytest.raises(ImmutableRecordError):
            await db.execute(delete(AuditEvent))


async def test_the_database_refuses_deletion_without_the_permit(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with school.server.factory() as db, db.begin():
        incident = await db.scalar(select(Incident))
        assert incident is not None
        dsl = await staff_member(school, DSL)
        await add_action(school, db, author=dsl, incident=incident, text=ACTION_TEXT)
    refused = []
    for table in IMMUTABLE_TABLES:
        async with school.server.engine.connect() as connection:
            count, remove = f"SELECT count(*) FROM {table}", f"DELETE FROM {table}"  # noqa: S608
            if not await connection.scalar(text(count)):
                continue  # an empty table fires no row trigger
            with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
                await connection.execute(text(remove))
            refused.append(table)
    assert {"incidents", "incident_pupils", "incident_actions", "audit_log"} <= set(refused)


async def test_the_audit_log_may_not_be_unlinked_without_the_permit(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with school.server.engine.connect() as connection:
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
            await connection.execute(update(AuditEvent).values(incident_id=None))


async def test_a_permit_of_another_transaction_allows_nothing(school: Harness) -> None:
    """PostgreSQL: a permit row left committed names a finished transaction; SQLite has no
    transaction id, so the flow always removes its permit before committing."""
    if not school.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL names the permit's transaction")
    await file_concern(school, TEACHER)
    async with school.server.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO destruction_permits (txid, created_at) VALUES (txid_current(), now())"
            )
        )
    async with school.server.engine.connect() as connection:
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
            await connection.execute(delete(Incident))


def test_only_the_destruction_flow_takes_the_permit() -> None:
    users = sorted(
        str(path.relative_to(REPO))
        for folder in ("store", "handlers", "scheduler", "bot")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"\bdestruction_permit\(", path.read_text())
    )
    assert users == ["store/flows/retention.py", "store/immutability.py"]


async def test_the_permit_is_gone_after_a_destruction(school: Harness) -> None:
    await file_concern(school, TEACHER)
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    visit = visit_of(school, await staff_member(school, DSL))
    async with school.server.factory() as db, db.begin():
        await flows.destroy(
            db,
            visit=visit,
            files=school.server.web_deps.files,
            ref=flows.RecordRef(flows.CONCERN, 1),
            confirmed=True,
        )
    async with school.server.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM destruction_permits")) == 0
        assert await connection.scalar(select(Incident.id)) is None
