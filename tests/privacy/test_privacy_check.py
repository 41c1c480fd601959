"""`vigil privacy-check`: the drill passes on both databases, and the check can fail.

The exercise runs every flow through the real server and the Slack stand-in, then searches
what Vigil sent, logged and stored. A planted leak (a message builder given the narrative,
log lines quoting a narrative and a pupil's name) must be reported, by kind and place,
without the report repeating the value. The school's-database mode is checked on a seeded
database, clean and then with plain text planted in other tables.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import insert, select, text, update

import handlers.concern_modal
import store.messages
import store.pupils
from bot.cli import main
from bot.settings import load_settings
from privacy.exercise import run_exercise
from privacy.matching import Matcher, name_needles, text_needles, texts_of
from privacy.report import Report
from privacy.school import check_school
from privacy.sources import read_only
from store import audit
from store.db import create_engine, transaction
from store.models import AuditEvent, Incident, OutboxMessage, Pupil, SearchKey, Staff
from testing.harness import Harness
from tests.support.records import add_action, pupil_with_upn
from tests.support.school import DSL, PUPIL_4B, TEACHER
from tests.support.slack import file_concern
from tests.support.web import People

NARRATIVE = (
    "At 10:40 in the corridor outside 4B she told me she did not want to go home tonight "
    "because her uncle shouts at her. She was crying, which is unlike her."
)
REASON = "Mum is the subject of the concern; advice from MASH first."
ACTION_TEXT = "Spoke to grandmother at pick-up; she will take her to the GP tomorrow."


# -- the exercise ------------------------------------------------------------------------------


async def test_the_exercise_passes_and_searched_everything(db_url: str) -> None:
    root = logging.getLogger()
    handlers_before, level_before = root.handlers[:], root.level
    report = await run_exercise(database_url=db_url)
    text = report.render()
    assert report.passed and report.exit_code == 0, text
    assert "privacy-check passed" in text
    searched = report.searched
    assert searched.slack_calls > 30 and searched.slack_answers > 10
    assert searched.log_records > 50 and searched.log_lines_written > 50
    assert searched.tables >= 20 and searched.rows > 100
    for flow in (
        "overdue nudge",
        "Snooze",
        "Sign in with Slack",
        "every CSV",
        "chronology",
        "ciphertexts bound to their rows",
    ):
        assert flow in text
    # Logging is as it was: the drill's capture is gone.
    assert root.handlers == handlers_before and root.level == level_before


def test_a_planted_leak_is_reported_without_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message builder given the narrative, and log lines quoting texts and names."""
    seen: dict[str, list[str]] = {"texts": [], "names": []}
    parse = handlers.concern_modal.parse_submission
    headline = store.messages._headline
    search = store.pupils.search

    def leaky_parse(view: dict[str, Any]) -> Any:
        draft = parse(view)
        seen["texts"] += [draft.narrative, draft.parents_reason]
        logging.getLogger("handlers.concern").debug("draft: %s", draft.narrative)
        return draft

    def leaky_headline(*args: Any) -> str:
        return f"{headline(*args)} · {seen['texts'][-2]}"

    async def leaky_search(*args: Any, **kwargs: Any) -> Any:
        found = await search(*args, **kwargs)
        seen["names"] += [p.display_name for p in found]
        if found:
            structlog.get_logger("store.pupils").info("typeahead", first=found[0].display_name)
        return found

    monkeypatch.setattr(handlers.concern_modal, "parse_submission", leaky_parse)
    monkeypatch.setattr(store.messages, "_headline", leaky_headline)
    monkeypatch.setattr(store.pupils, "search", leaky_search)

    assert main(["privacy-check", "--exercise"]) == 1
    out = capsys.readouterr().out
    assert "privacy-check FAILED" in out
    for line in (
        "slack: narrative found in chat.postMessage (arguments)",
        "slack: narrative found in chat.update (arguments)",
        "database: narrative found in outbox.payload",
        "log: narrative found in logger handlers.concern (DEBUG)",
        "log: narrative of a refused submission found in logger handlers.concern (DEBUG)",
        "log: pupil name (made-up pupil 1) found in logger store.pupils (INFO)",
    ):
        assert line in out, out
    # The report says what and where, never the value: no made-up phrase or name.
    phrases = [p for text in seen["texts"] for p in re.findall(r"\w+-[0-9a-f]{6}", text)]
    names = [word for name in seen["names"] for word in re.findall(r"\w+", name)]
    assert phrases and names
    shown = out.casefold()
    for value in phrases + names:
        assert value.casefold() not in shown


def test_the_cli_refuses_mixed_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["privacy-check", "--exercise", "--log", "vigil.log"]) == 2
    assert main(["privacy-check", "--database", "sqlite+aiosqlite:///x.db"]) == 2
    assert "--database is for --exercise" in capsys.readouterr().err


# -- the school's own database ---------------------------------------------------------------


async def seeded(school: Harness) -> tuple[Pupil, Incident]:
    """Concern #1 about a 4B pupil, with a reason, and an action on it."""
    await file_concern(
        school,
        TEACHER,
        narrative=NARRATIVE,
        categories=["Well-being"],
        parents_contacted="no",
        parents_reason=REASON,
    )
    async with transaction(school.server.factory) as db:
        incident = await db.scalar(select(Incident).where(Incident.number == 1))
        dsl = await db.scalar(select(Staff).where(Staff.slack_user_id == DSL))
        pupil = await pupil_with_upn(school, db, PUPIL_4B)
        assert incident is not None and dsl is not None and pupil is not None
        await add_action(school, db, author=dsl, incident=incident, text=ACTION_TEXT)
    return pupil, incident


async def check(school: Harness, *logs: Path) -> Report:
    settings = load_settings(
        env_file=None,
        VIGIL_DATABASE_URL=school.database_url,
        VIGIL_DATA_KEY=school.data_key,
    )
    return await check_school(settings, log_files=logs)


async def test_a_clean_school_database_passes(school: Harness) -> None:
    await seeded(school)
    report = await check(school)
    assert report.passed, report.render()
    assert "dates of birth (in their common forms) and UPNs of 30 pupils" in report.looked_for
    assert "3 stored narratives, reasons and action texts decrypted" in report.looked_for
    assert report.searched.tables >= 20 and report.searched.rows > 50


async def test_plain_text_elsewhere_in_the_school_database_is_found(
    school: Harness, tmp_path: Path
) -> None:
    pupil, incident = await seeded(school)
    full_name = f"{pupil.forename} {pupil.surname}"
    async with transaction(school.server.factory) as db:
        planted = audit.record(
            db, action="note", workspace_id=incident.workspace_id, detail=NARRATIVE[:150]
        )
        await db.execute(
            insert(OutboxMessage).values(
                workspace_id=incident.workspace_id,
                kind="dm",
                channel="D0NOWHERE",
                payload={"text": f"About {full_name.upper()}", "blocks": []},
                status="sent",
            )
        )
    log = tmp_path / "vigil.log"
    log.write_text(
        '{"event": "web.ok"}\n' + json.dumps({"event": "oops", "text": ACTION_TEXT}) + "\n"
    )
    report = await check(school, log)
    text = report.render()
    assert report.exit_code == 1
    assert (
        f"database: narrative of incident id {incident.id} found in audit_log.detail; "
        f"e.g. id {planted.id}"
    ) in text
    assert f"database: pupil name (pupil id {pupil.id}) found in outbox.payload" in text
    assert f"log file: action text of action id 1 found in {log}; e.g. line 2" in text
    # Nothing else (two fictional pupils may share a name: both are named); on SQLite the
    # file itself holds the same plain text, and is searched too.
    assert {f.location for f in report.findings if f.where != "database file"} == {
        "audit_log.detail",
        "outbox.payload",
        str(log),
    }
    if "sqlite" in school.database_url:
        assert f"database file: narrative of incident id {incident.id} found in vigil.db" in text
    for value in (NARRATIVE[:40], full_name, pupil.surname, ACTION_TEXT[:30]):
        assert value.casefold() not in text.casefold()


async def test_a_pupil_column_left_plain_is_found(school: Harness) -> None:
    """Were a name, a date of birth (in any common form) or an agency's reference left in
    plain text (as before migration 0020, or by a careless new column), the check fails,
    naming what kind of value and where, never the value."""
    pupil, incident = await seeded(school)
    async with People(school).signed_in(DSL) as dsl:
        status, _ = await dsl.post(
            "/incidents/1/actions",
            {"text": "Rang the police.", "agency": "Police", "reference": "POL/2026/88412"},
        )
    assert status == 200 and incident.number == 1
    clean = await check(school)
    assert clean.passed, clean.render()  # sealed: nothing to find
    dob = pupil.date_of_birth
    full_name = f"{pupil.forename} {pupil.surname}"
    engine = create_engine(school.database_url)
    try:
        async with engine.begin() as connection:
            for column in ("name_plain", "born_plain", "born_iso", "ref_plain"):
                await connection.execute(text(f"ALTER TABLE pupils ADD COLUMN {column} TEXT"))
            await connection.execute(
                text(
                    "UPDATE pupils SET name_plain = :name, born_plain = :born, born_iso = :iso "
                    "WHERE id = :id"
                ),
                {
                    "name": full_name,
                    "born": dob.strftime("%d/%m/%Y"),
                    "iso": dob.isoformat(),
                    "id": pupil.id,
                },
            )
            await connection.execute(
                text("UPDATE pupils SET ref_plain = 'pol/2026/88412' WHERE id = :id"),
                {"id": pupil.id},
            )
    finally:
        await engine.dispose()
    try:
        report = await check(school)
    finally:  # the shared PostgreSQL test database must match the models again
        engine = create_engine(school.database_url)
        try:
            async with engine.begin() as connection:
                for column in ("name_plain", "born_plain", "born_iso", "ref_plain"):
                    await connection.execute(text(f"ALTER TABLE pupils DROP COLUMN {column}"))
        finally:
            await engine.dispose()
    found = {(f.kind, f.location) for f in report.findings}
    label = f"pupil id {pupil.id}"
    assert found >= {
        (f"pupil name ({label})", "pupils.name_plain"),
        (f"date of birth ({label})", "pupils.born_plain"),
        (f"date of birth ({label})", "pupils.born_iso"),
        ("agency reference of referral id 1", "pupils.ref_plain"),
    }
    text_of = report.render()
    assert report.exit_code == 1
    for value in (full_name, dob.isoformat(), dob.strftime("%d/%m/%Y"), "88412"):
        assert value.casefold() not in text_of.casefold()


async def test_a_plain_word_in_the_search_tables_is_found(school: Harness) -> None:
    """The search tables hold keyed hashes of words: a single word of a stored text found
    there in plain text (as a careless search index would store it) is reported."""
    await seeded(school)
    async with transaction(school.server.factory) as db:
        await db.execute(update(SearchKey).values(key_ct=b"corridor|grandmother"))
    report = await check(school)
    text = report.render()
    assert report.exit_code == 1
    assert "database: a word of a stored text found in search_keys.key_ct" in text
    assert {f.location for f in report.findings} == {"search_keys.key_ct"}
    assert "corridor" not in text and "grandmother" not in text


async def test_the_school_check_only_reads(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with read_only(engine) as connection:
            with pytest.raises(Exception, match="(?i)read.only|readonly"):
                await connection.execute(insert(AuditEvent).values(action="x", outcome="ok"))
    finally:
        await engine.dispose()


# -- finding -------------------------------------------------------------------------------------


def test_names_and_texts_are_found_however_they_are_written() -> None:
    matcher = Matcher(
        name_needles(
            forename="Zoë",
            surname="Quattlebaum",
            preferred_name=None,
            label="pupil 1",
            whole_only=True,
        )
        + text_needles(NARRATIVE, kind="narrative")
        + text_needles("Phoned mum.", kind="too short to look for")
    )
    kinds = {
        "In JSON": json.dumps({"text": "About ZOE QUATTLEBAUM today"}),
        "Escaped": "name=Zo%C3%AB+Quattlebaum&x=1",
        "HTML": "Zo&euml; Quattlebaum",
        "Reversed": "Quattlebaum, Zoe",
        "Shortened": NARRATIVE[:60].replace(" ", "\n  "),
        "Ending": "..." + NARRATIVE[-70:],
        "Bytes": NARRATIVE.encode(),
    }
    for what, value in kinds.items():
        assert any(matcher.find_all(texts_of(value))), what
    for harmless in ("Zoe Quattlebaumson", "Quattlebaum", "Phoned mum.", NARRATIVE[:20]):
        assert not matcher.find_all(texts_of(harmless)), harmless
    assert {n.kind for n in matcher.find_all(texts_of({"a": [NARRATIVE]}))} == {"narrative"}
