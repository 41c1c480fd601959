"""Files on a concern, over HTTP on both databases: attaching one from the incident page
(sniffed by content, images without their metadata, sealed at rest), downloading it
(audited, with the headers that keep it out of caches and browsers' guesses), and what
is refused: a renamed program, a file over the limit, anyone who may not see the concern,
and a ciphertext moved from one file's row to another's.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image
from sqlalchemy import func, select, update

from store.models import FileChunk, IncidentAction, StoredFile
from testing.harness import Harness
from tests.support.records import audit_events
from tests.support.school import DSL, TEACHER, TEACHER_3A, seeded_school
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

SECRET_TEXT = "Dear Mrs Example, Jamie-Lee said her stepdad hit her with a belt.\n" * 40
SECRET_NAME = "Jamie-Lee Example - letter from GP.txt"
GPS_LATITUDE = 0x0002
pillow_heif.register_heif_opener()


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" + b"0" * 5000


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825), "the fixture has GPS"
    return data


def heic_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.5)}
    out = io.BytesIO()
    image.save(out, "HEIF", exif=exif.tobytes(), quality=80)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825), "the fixture has GPS"
    return data


def exe_bytes() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 4000 + b"PE\x00\x00"


async def count_files(school: Harness) -> tuple[int, int]:
    async with school.server.factory() as db:
        files = await db.scalar(select(func.count()).select_from(StoredFile))
        chunks = await db.scalar(select(func.count()).select_from(FileChunk))
    return files or 0, chunks or 0


async def raw_database(school: Harness) -> bytes:
    """Every byte the database holds (SQLite: the files; PostgreSQL: every table's rows)."""
    url = school.database_url
    if url.startswith("sqlite"):
        from sqlalchemy import text

        path = Path(url.split("///", 1)[1])
        async with school.server.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    async with school.server.factory() as db:
        rows = (await db.execute(select(FileChunk.data))).scalars().all()
        files = (await db.execute(select(StoredFile.name_ct, StoredFile.key_ct))).all()
    return b"".join(bytes(r) for r in rows) + b"".join(bytes(a) + bytes(b) for a, b in files)


async def test_a_file_is_attached_listed_downloaded_and_audited(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        status, body = await teacher.get("/incidents/1")
        assert status == 200 and 'id="file-form"' in body and "No files yet." in body
        status, body = await teacher.upload("/incidents/1/files", SECRET_NAME, SECRET_TEXT.encode())
        assert status == 200 and teacher.last_url.endswith("/incidents/1"), shown(body)
        assert SECRET_NAME in shown(body) and "text file" in body
        async with school.server.factory() as db:
            row = await db.scalar(select(StoredFile))
        assert row is not None and row.kind == "txt" and row.size == len(SECRET_TEXT.encode())
        async with teacher.http.get(f"{school.server.url}/incidents/1/files/{row.id}") as response:
            assert response.status == 200
            assert await response.read() == SECRET_TEXT.encode()
            headers = response.headers
        assert headers["Content-Disposition"].startswith("attachment;")
        assert "Jamie-Lee" in headers["Content-Disposition"]
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Type"].startswith("text/plain")
    added = await audit_events(school, "file.add")
    downloads = await audit_events(school, "file.download")
    assert len(added) == 1 and added[0].detail == f"file {row.id}; txt; {row.size} bytes"
    assert len(downloads) == 1 and downloads[0].incident_id == row.incident_id
    # Neither the content nor the name is in the database in plain text.
    raw = await raw_database(school)
    assert b"stepdad" not in raw and b"Jamie-Lee" not in raw


async def test_a_renamed_program_is_refused_and_nothing_is_stored(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, body = await teacher.upload("/incidents/1/files", "report.pdf", exe_bytes())
    assert status == 400
    assert "This file cannot be attached" in shown(body) and "Accepted: PDF" in shown(body)
    assert await count_files(school) == (0, 0)
    refused = await audit_events(school, "file.add")
    assert [(r.outcome, r.detail) for r in refused] == [("failed", "not an accepted kind")]


async def test_an_oversized_file_is_refused_and_nothing_is_stored(
    db_url: str, tmp_path: Path
) -> None:
    async with seeded_school(db_url, tmp_path, overrides={"VIGIL_MAX_UPLOAD_MB": 1}) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            status, body = await teacher.upload(
                "/incidents/1/files", "big.pdf", pdf_bytes() + b"1" * (2 * 1024 * 1024)
            )
            assert status == 413 and "larger than 1 MB" in shown(body)
            # Just over the limit, within the form's allowance: refused while reading.
            await teacher.get("/incidents/1")
            status, body = await teacher.upload(
                "/incidents/1/files", "big.pdf", pdf_bytes() + b"1" * (1024 * 1024)
            )
            assert status == 413 and "larger than 1 MB" in shown(body)
        assert await count_files(school) == (0, 0)


async def test_a_photo_loses_its_location_and_camera_on_the_way_in(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, body = await teacher.upload("/incidents/1/files", "bruise.pdf", jpeg_with_gps())
        assert status == 200
        async with school.server.factory() as db:
            row = await db.scalar(select(StoredFile))
        assert row is not None and row.kind == "jpeg"  # by content, not by the name's .pdf
        assert f'/incidents/1/files/{row.id}/preview"' in body
        async with teacher.http.get(
            f"{school.server.url}/incidents/1/files/{row.id}/preview"
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.headers["Content-Disposition"].startswith("inline;")
            data = await response.read()
    image = Image.open(io.BytesIO(data))
    assert image.size == (64, 48)
    exif = image.getexif()
    assert not exif.get_ifd(0x8825) and 0x010F not in exif and b"PhoneMaker" not in data
    assert len(await audit_events(school, "file.preview")) == 1


async def test_a_phone_photo_heic_loses_its_location_too(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, body = await teacher.upload("/incidents/1/files", "IMG_0042.HEIC", heic_with_gps())
        assert status == 200 and "HEIC image" in body
        async with school.server.factory() as db:
            row = await db.scalar(select(StoredFile))
        assert row is not None and row.kind == "heic"
        assert "/preview" not in body  # browsers cannot show HEIC: downloaded only
        async with teacher.http.get(f"{school.server.url}/incidents/1/files/{row.id}") as got:
            assert got.status == 200 and got.headers["Content-Type"] == "image/heic"
            data = await got.read()
    image = Image.open(io.BytesIO(data))
    assert image.size == (64, 48) and not image.getexif().get_ifd(0x8825)
    assert b"PhoneMaker" not in data


async def test_someone_who_may_not_see_the_concern_gets_the_one_404(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        await teacher.upload("/incidents/1/files", "notes.pdf", pdf_bytes())
    async with school.server.factory() as db:
        file_id = await db.scalar(select(StoredFile.id))
    async with signed_in(school, TEACHER_3A) as outsider:
        _, missing = await outsider.get("/incidents/99/files/1")
        for path in (f"/incidents/1/files/{file_id}", f"/incidents/1/files/{file_id}/preview"):
            status, body = await outsider.get(path)
            assert status == 404 and body == missing
        await outsider.get("/alerts")
        status, body = await outsider.upload("/incidents/1/files", "x.pdf", pdf_bytes())
        assert status == 404 and body == missing
    assert await count_files(school) == (1, 1)
    refusals = await audit_events(school, "file.download")
    assert refusals and all(r.outcome == "refused" for r in refusals)
    async with signed_in(school, DSL) as dsl:  # a key-holder sees every concern
        status, _ = await dsl.get(f"/incidents/1/files/{file_id}")
        assert status == 200


async def test_an_upload_without_the_form_token_is_refused(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, _ = await teacher.upload("/incidents/1/files", "n.pdf", pdf_bytes(), csrf="x")
    assert status == 403
    assert await count_files(school) == (0, 0)
    assert len(await audit_events(school, "csrf.refused")) == 1


async def test_a_swapped_ciphertext_is_refused_with_an_integrity_error(
    school: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        await teacher.upload("/incidents/1/files", "one.txt", b"first file\n" * 10)
        await teacher.get("/incidents/1")
        await teacher.upload("/incidents/1/files", "two.txt", b"second file\n" * 10)
        async with school.server.factory() as db:
            first, second = (await db.scalars(select(StoredFile).order_by(StoredFile.id))).all()
        # Someone with the database moves the second file's chunk under the first's row
        # (the triggers refuse UPDATE: only someone bypassing them could, so do it as they
        # would, by dropping the trigger for the test's own connection).
        await swap_chunks(school, first.id, second.id)
        with caplog.at_level(logging.ERROR):
            status, body = await teacher.get(f"/incidents/1/files/{first.id}")
        assert status == 500 and "integrity check" in shown(body)
        assert "first file" not in body and "second file" not in body
        # And a wrapped key copied onto another row does not unwrap there.
        await copy_key(school, first.id, second.id)
        status, body = await teacher.get(f"/incidents/1/files/{second.id}")
        assert status == 500 and "integrity check" in shown(body)
    failed = await audit_events(school, "file.download")
    assert [e.outcome for e in failed][-1] == "failed"


async def _without_triggers(school: Harness, table: str, statement: object) -> None:
    async with school.server.engine.begin() as connection:
        from sqlalchemy import text

        if school.database_url.startswith("sqlite"):
            await connection.execute(text(f"DROP TRIGGER {table}_no_update"))
        else:
            await connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        await connection.execute(statement)  # type: ignore[call-overload]


async def swap_chunks(school: Harness, first: int, second: int) -> None:
    async with school.server.factory() as db:
        data = await db.scalar(select(FileChunk.data).where(FileChunk.file_id == second))
    statement = update(FileChunk).where(FileChunk.file_id == first).values(data=data)
    await _without_triggers(school, "file_chunks", statement)


async def copy_key(school: Harness, first: int, second: int) -> None:
    async with school.server.factory() as db:
        row = await db.get(StoredFile, first)
        assert row is not None
        key, name = row.key_ct, row.name_ct
    statement = update(StoredFile).where(StoredFile.id == second).values(key_ct=key, name_ct=name)
    await _without_triggers(school, "files", statement)


async def test_a_directory_store_holds_no_plaintext(db_url: str, tmp_path: Path) -> None:
    store = tmp_path / "files"
    overrides = {"VIGIL_FILES_URL": f"file://{store}"}
    async with seeded_school(db_url, tmp_path, overrides=overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            content = SECRET_TEXT.encode() * 50  # several chunks
            status, _ = await teacher.upload("/incidents/1/files", SECRET_NAME, content)
            assert status == 200
            async with school.server.factory() as db:
                row = await db.scalar(select(StoredFile))
            assert row is not None and row.storage == "directory" and row.chunk_count > 1
            async with teacher.http.get(
                f"{school.server.url}/incidents/1/files/{row.id}"
            ) as response:
                assert response.status == 200 and await response.read() == content
        assert await count_files(school) == (1, 0)  # no chunks in the database
        stored = [p for p in store.rglob("*") if p.is_file()]
        assert [p.name for p in stored] == [f"{row.token}.vgf"]
        raw = b"".join(p.read_bytes() for p in stored)
        assert b"stepdad" not in raw and b"Jamie" not in raw and len(raw) > len(content)


async def test_a_file_is_added_with_an_action_of_the_same_concern_only(school: Harness) -> None:
    await file_concern(school, TEACHER)
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        for number in (1, 2):
            await teacher.get(f"/incidents/{number}")
            await teacher.post(f"/incidents/{number}/actions", {"text": "Phoned home."})
        async with school.server.factory() as db:
            first, second = (await db.scalars(select(IncidentAction.id).order_by("id"))).all()
        status, body = await teacher.get("/incidents/1")
        assert f'<option value="{first}">Action by' in body
        status, body = await teacher.upload(
            "/incidents/1/files", "notes.pdf", pdf_bytes(), fields={"action": str(first)}
        )
        assert status == 200 and f'href="#action-{first}"' in body
        async with school.server.factory() as db:
            row = await db.scalar(select(StoredFile))
        assert row is not None and row.action_id == first
        async with teacher.http.get(f"{school.server.url}/incidents/1/files/{row.id}") as got:
            assert got.status == 200 and await got.read() == pdf_bytes()
        # An action of another concern: refused, nothing more stored.
        await teacher.get("/incidents/1")
        status, body = await teacher.upload(
            "/incidents/1/files", "notes.pdf", pdf_bytes(), fields={"action": str(second)}
        )
        assert status == 400 and "That action is not on this concern." in shown(body)
    assert await count_files(school) == (1, 1)
    added = await audit_events(school, "file.add")
    assert [a.outcome for a in added] == ["ok", "failed"]
    assert added[0].detail == f"file {row.id}; pdf; {row.size} bytes; action {first}"
