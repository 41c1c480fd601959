"""Searching the words of narratives and actions (issue 13), end to end on both databases.

Concerns are filed in Slack and actions added in the web view; a key-holder searches
`/search?text=…`. The tests read the results, the token rows (never a word) and the audit
log (that a text filter was used, never the words).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select

from bot.cli import main
from store.models import AuditEvent, NarrativeToken, SearchKey
from testing.harness import Harness
from tests.handlers.test_allegations import ALLEGATION
from tests.handlers.web.test_allegation_access import filed
from tests.handlers.web.test_casework import case_numbers
from tests.support.records import audit_events
from tests.support.school import DEPUTY, DSL, HEAD, PUPIL_3A, TEACHER
from tests.support.slack import file_concern
from tests.support.web import People

FIRST = "Arrived with a bruise on her cheek; said the dog jumped up at her."
SECOND = "Told Mrs Hughes that Dad shouts at night and she cannot sleep."
LATER = "Spoke with the Zoë Fothergill family worker about the Café incident."


async def test_words_of_narratives_and_later_actions_are_found(school: Harness) -> None:
    people = People(school)
    await file_concern(school, narrative=FIRST)  # 1
    await file_concern(school, pupil_query=PUPIL_3A, narrative=SECOND)  # 2
    async with people.signed_in(DSL) as dsl:
        _, found = await dsl.get("/search?text=bruise")
        assert case_numbers(found) == [1]
        _, found = await dsl.get("/search?text=SLEEP")  # capitals do not matter
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?text=bruise+sleep")  # every word
        assert case_numbers(found) == []
        _, found = await dsl.get("/search?text=cheek+dog")
        assert case_numbers(found) == [1]
        _, found = await dsl.get("/search?text=hungry")  # in neither
        assert case_numbers(found) == []
        _, found = await dsl.get("/search?text=fothergill")
        assert case_numbers(found) == []

        status, _ = await dsl.post("/incidents/2/actions", {"text": LATER})
        assert status == 200
        _, found = await dsl.get("/search?text=Fothergill")  # the action's words
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?text=zoe+cafe")  # accents folded
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?text=Z%C3%94%C3%8B")  # "ZÔË"
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?text=sleep+fothergill")  # narrative and action
        assert case_numbers(found) == [2]
        await file_concern(school, narrative=FIRST.upper())  # 3
        _, found = await dsl.get("/search?text=bruise+cheek")
        assert case_numbers(found) == [3, 1]  # newest first
        _, found = await dsl.get("/search?text=fothergill&status=closed")  # with a filter
        assert case_numbers(found) == []
        _, page = await dsl.get("/search?text=Fothergill")
        assert 'value="Fothergill"' in page  # the box keeps what was typed

    details = [e.detail or "" for e in await audit_events(school, "search")]
    assert "filters: text; page 1" in details
    assert "filters: status, text; page 1" in details
    async with school.server.factory() as db:
        audited = " ".join(
            (e.detail or "") for e in await db.scalars(select(AuditEvent))
        ).casefold()
    for word in ("bruise", "sleep", "fothergill", "zoe", "zoë", "cafe", "cheek", "hungry"):
        assert word not in audited


async def test_the_token_table_holds_no_word(school: Harness) -> None:
    await file_concern(school, narrative=FIRST)
    async with school.server.factory() as db:
        rows = (await db.execute(select(NarrativeToken.token, NarrativeToken.incident_id))).all()
        key = await db.scalar(select(SearchKey.key_ct))
    # arrived bruise cheek said dog jumped up
    assert len(rows) == 7 and {incident for _, incident in rows} == {1}
    stored = b"".join(
        token.to_bytes(8, "big", signed=True) + str(token).encode() for token, _ in rows
    )
    assert key is not None and b"bruise" not in bytes(key)
    for word in ("arrived", "bruise", "cheek", "dog", "jumped"):
        assert word.encode() not in stored.lower()
        assert word.encode("utf-16-le") not in stored.lower()


async def test_a_concern_hidden_from_someone_is_not_found_by_them(school: Harness) -> None:
    people = People(school)
    await filed(school, TEACHER, DEPUTY)  # an allegation about the deputy DSL: #1
    word = ALLEGATION.split()[0]  # "Grabbed"
    async with people.signed_in(DEPUTY) as deputy:
        _, found = await deputy.get(f"/search?text={word}")
        assert case_numbers(found) == []
        _, found = await deputy.get("/search?text=arm+mark")
        assert case_numbers(found) == []
    async with people.signed_in(HEAD) as head:  # the allegations manager
        _, found = await head.get(f"/search?text={word}")
        assert case_numbers(found) == [1]


async def test_reindex_fills_tokens_for_concerns_filed_before(
    school: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    people = People(school)
    await file_concern(school, narrative=FIRST)
    await file_concern(school, narrative=SECOND)
    async with people.signed_in(DSL) as dsl:
        await dsl.post("/incidents/2/actions", {"text": LATER})
    async with school.server.factory() as db, db.begin():
        indexed = await db.scalar(select(func.count()).select_from(NarrativeToken))
        await db.execute(delete(NarrativeToken))  # as if filed before search existed
        await db.execute(delete(SearchKey))

    monkeypatch.setenv("VIGIL_DATABASE_URL", school.database_url)
    monkeypatch.setenv("VIGIL_DATA_KEY", school.data_key)
    for _ in range(2):  # the second run changes nothing
        status = await asyncio.to_thread(main, ["--env-file", "/nonexistent", "search", "reindex"])
        assert status == 0
        assert "Indexed the words of 2 concerns" in capsys.readouterr().out
        async with school.server.factory() as db:
            count = await db.scalar(select(func.count()).select_from(NarrativeToken))
        assert count == indexed
    async with people.signed_in(DSL) as dsl:
        _, found = await dsl.get("/search?text=fothergill+sleep")
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?text=bruise")
        assert case_numbers(found) == [1]
