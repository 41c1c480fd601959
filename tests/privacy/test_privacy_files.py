"""`vigil privacy-check` covers documents: a database and a directory store holding files
and a paper record pass; a file's name or content copied in plain text into a table or
into the file store is reported, by file id and place, without its value."""

from __future__ import annotations

from pathlib import Path

from bot.settings import load_settings
from privacy.report import Report
from privacy.school import check_school
from store import audit
from store.db import transaction
from testing.harness import Harness
from tests.support.records import pupil_by_upn
from tests.support.school import DSL, PUPIL_4B, TEACHER, seeded_school
from tests.support.slack import file_concern
from tests.support.web import signed_in

LETTER = (
    "To whom it may concern. Following our home visit on Tuesday the family asked for "
    "help with food and heating; the children were well but the flat was very cold.\n"
) * 30
NAME = "Home visit letter for Harrington family.txt"
PHOTO = b"%PDF-1.4\n" + bytes(range(256)) * 40
DESCRIPTION = "Incident slip from 2017 about a fall in the playground, carried over by hand."
MARK_NOTE = "Round mark on the forearm, the size of a fingertip, yellowing at the edges."


async def check(school: Harness, store: Path) -> Report:
    settings = load_settings(
        env_file=None,
        VIGIL_DATABASE_URL=school.database_url,
        VIGIL_DATA_KEY=school.data_key,
        VIGIL_FILES_URL=f"file://{store}",
    )
    return await check_school(settings)


async def test_files_names_and_paper_records_are_checked(db_url: str, tmp_path: Path) -> None:
    store = tmp_path / "files"
    overrides = {"VIGIL_FILES_URL": f"file://{store}"}
    async with seeded_school(db_url, tmp_path, overrides=overrides) as school:
        await file_concern(school, TEACHER)
        pupil = await pupil_by_upn(school, PUPIL_4B)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            assert (await teacher.upload("/incidents/1/files", NAME, LETTER.encode()))[0] == 200
            await teacher.get("/incidents/1")
            assert (await teacher.upload("/incidents/1/files", "scan.pdf", PHOTO))[0] == 200
            await teacher.get("/incidents/1/body-map")
            mark = {"side": "front", "region": "right forearm or wrist", "type": "bruise"}
            mark |= {"size": "under 1 cm", "note": MARK_NOTE}
            status, _ = await teacher.post(
                "/incidents/1/body-map", {f"mark-1-{k}": v for k, v in mark.items()}
            )
            assert status == 200
        async with signed_in(school, DSL) as dsl:
            await dsl.get(f"/pupils/{pupil.id}")
            status, _ = await dsl.send_files(
                f"/pupils/{pupil.id}/paper",
                [("files", "old slip.pdf", b"%PDF-1.5\n" + PHOTO[::-1])],
                {"recorded_on": "2017-05-02", "description": DESCRIPTION},
            )
            assert status == 200

        report = await check(school, store)
        assert report.passed, report.render()
        assert report.searched.files == 3 and report.searched.store_files == 3
        assert "3 stored narratives, reasons and action texts" in report.looked_for
        assert "content of each of 3 stored files" in report.looked_for

        # Leaks: the name in a table, the letter's text and the scan's bytes in the store.
        async with transaction(school.server.factory) as db:
            planted = audit.record(
                db, action="note", workspace_id=school.workspace_id, detail=f"sent {NAME}"
            )
            noted = audit.record(
                db, action="note", workspace_id=school.workspace_id, detail=MARK_NOTE
            )
        (store / "leaked-copy.txt").write_text(LETTER[:500])
        (store / "ab").mkdir(exist_ok=True)
        (store / "ab" / "cache.bin").write_bytes(b"junk" + PHOTO + b"junk")
        report = await check(school, store)
        text = report.render()
        assert report.exit_code == 1
        assert (
            f"database: name of file id 1 found in audit_log.detail; e.g. id {planted.id}" in text
        )
        assert "file store: content of file id 1 found in the file store (leaked-copy.txt)" in text
        assert "file store: content of file id 2 found in the file store (ab/cache.bin)" in text
        leaked_note = "database: body-map note of body map id 1 found in audit_log.detail"
        assert f"{leaked_note}; e.g. id {noted.id}" in text
        assert (
            "Harrington" not in text
            and "fingertip" not in text
            and "home visit" not in text.casefold()
        )
