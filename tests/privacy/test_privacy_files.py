"""`vigil privacy-check` covers documents: a database and a directory store holding files
and a paper record pass; a file's name or content copied in plain text into a table or
into the file store is reported, by file id and place, without its value."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import load_settings
from privacy.report import PrivacyCheckError, Report
from privacy.school import check_school
from store import audit
from store.db import transaction
from store.models import StoredFile
from testing.harness import Harness
from tests.support.records import pupil_by_upn
from tests.support.s3 import MotoS3
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


async def test_an_s3_store_is_searched_object_by_object(
    db_url: str, tmp_path: Path, s3: MotoS3
) -> None:
    async with seeded_school(db_url, tmp_path, overrides=s3.overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            assert (await teacher.upload("/incidents/1/files", NAME, LETTER.encode()))[0] == 200
            await teacher.get("/incidents/1")
            assert (await teacher.upload("/incidents/1/files", "scan.pdf", PHOTO))[0] == 200
        settings = load_settings(
            env_file=None,
            VIGIL_DATABASE_URL=school.database_url,
            VIGIL_DATA_KEY=school.data_key,
            **s3.overrides,
        )
        report = await check_school(settings)
        assert report.passed, report.render()
        assert report.searched.files == 2 and report.searched.store_files == 2
        assert "content of each of 2 stored files" in report.looked_for

        # Leaks put in the bucket by hand: the letter's text, the scan's bytes, the name.
        put = s3.client.put_object
        put(Bucket=s3.bucket, Key="vigil/files/leaked-copy.txt", Body=LETTER[:500].encode())
        put(Bucket=s3.bucket, Key="vigil/files/ab/cache.bin", Body=b"junk" + PHOTO + b"junk")
        put(Bucket=s3.bucket, Key="vigil/files/zz/notes", Body=f"about {NAME}".encode())
        report = await check_school(settings)
        text = report.render()
        assert report.exit_code == 1 and report.searched.store_files == 5
        where = "file store: content of file id {} found in the file store (vigil/files/{})"
        assert where.format(1, "leaked-copy.txt") in text
        assert where.format(2, "ab/cache.bin") in text
        assert "name of file id 1 found in the file store (vigil/files/zz/notes)" in text
        assert "Harrington" not in text and "home visit" not in text.casefold()

        # An object gone from the bucket is reported, not a traceback.
        async with school.server.factory() as db:
            token = await db.scalar(select(StoredFile.token).where(StoredFile.id == 2))
        s3.client.delete_object(Bucket=s3.bucket, Key=f"vigil/files/{token[:2]}/{token}.vgf")
        report = await check_school(settings)
        assert report.exit_code == 1
        assert "the file store (missing or cut short)" in report.render()


async def test_an_s3_store_out_of_reach_stops_the_check_in_one_line(
    school: Harness, s3: MotoS3
) -> None:
    settings = load_settings(
        env_file=None,
        VIGIL_DATABASE_URL=school.database_url,
        VIGIL_DATA_KEY=school.data_key,
        **{**s3.overrides, "VIGIL_FILES_URL": "s3://no-such-bucket/files"},
    )
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        assert (await teacher.upload("/incidents/1/files", NAME, LETTER.encode()))[0] == 200
    with pytest.raises(PrivacyCheckError, match="cannot read the file store s3://no-such-bucket"):
        await check_school(settings)
