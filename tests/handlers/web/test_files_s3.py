"""Files kept in an S3-compatible bucket (`VIGIL_FILES_URL=s3://bucket/prefix`), against
a local S3 stand-in (moto's server on 127.0.0.1; never AWS): attached and downloaded
through the web view, one object per file named by its token, holding only ciphertext;
a large file sent in several parts; an object swapped in the bucket refused; an object
never overwritten; the object of an upload whose row was not written removed again; and
a bucket that cannot be used refused at start-up in one line."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from bot.app import VigilServer
from bot.settings import ConfigError, load_settings
from bot.startup import StartupError, file_store_problem
from store.documents import sealing
from store.documents.s3 import ObjectExists, S3Store
from store.documents.storage import S3Store as Reexported
from store.documents.storage import check_files_url, open_store
from store.flows import files as flows
from store.flows import paper as paper_flows
from store.models import StoredFile
from testing.harness import Harness
from tests.handlers.web.test_files import SECRET_NAME, SECRET_TEXT, count_files, pdf_bytes
from tests.support.records import audit_events, pupil_by_upn
from tests.support.s3 import REGION, MotoS3
from tests.support.school import DSL, PUPIL_4B, TEACHER, seeded_school
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

TOKEN = re.compile(r"^vigil/files/([0-9a-f]{2})/([0-9a-f]{32})\.vgf$")


async def rows(school: Harness) -> list[StoredFile]:
    async with school.server.factory() as db:
        return list(await db.scalars(select(StoredFile).order_by(StoredFile.id)))


async def test_a_file_goes_to_the_bucket_as_ciphertext_named_by_its_token(
    db_url: str, tmp_path: Path, s3: MotoS3
) -> None:
    async with seeded_school(db_url, tmp_path, overrides=s3.overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            content = SECRET_TEXT.encode() * 50  # several chunks
            status, body = await teacher.upload("/incidents/1/files", SECRET_NAME, content)
            assert status == 200 and SECRET_NAME in shown(body)
            (row,) = await rows(school)
            assert row.storage == "s3" and row.chunk_count > 1
            async with teacher.http.get(
                f"{school.server.url}/incidents/1/files/{row.id}"
            ) as response:
                assert response.status == 200 and await response.read() == content
        assert await count_files(school) == (1, 0)  # no chunks in the database
    stored = s3.objects()
    assert list(stored) == [f"vigil/files/{row.token[:2]}/{row.token}.vgf"]
    (raw,) = stored.values()
    assert len(raw) > len(content)
    for secret in (b"stepdad", b"Jamie", b"Dear Mrs", b"letter from GP", b"GP.txt"):
        assert secret not in raw
    assert all("Jamie" not in key and ".txt" not in key for key in stored)  # nor its name
    head = s3.client.head_object(Bucket=s3.bucket, Key=next(iter(stored)))
    assert not any("Jamie" in v or ".txt" in v for v in head.get("Metadata", {}).values())


async def test_a_large_file_goes_up_in_several_parts_and_comes_back_whole(
    db_url: str, tmp_path: Path, s3: MotoS3
) -> None:
    content = pdf_bytes() + os.urandom(12 * 2**20)
    async with seeded_school(db_url, tmp_path, overrides=s3.overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            status, _ = await teacher.upload("/incidents/1/files", "scan.pdf", content)
            assert status == 200
            (row,) = await rows(school)
            digest = hashlib.sha256()
            async with teacher.http.get(
                f"{school.server.url}/incidents/1/files/{row.id}"
            ) as response:
                assert response.status == 200
                async for piece in response.content.iter_chunked(2**20):
                    digest.update(piece)
        assert digest.digest() == hashlib.sha256(content).digest()
    (key,) = s3.keys()
    etag = s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"].strip('"')
    assert etag.endswith("-2"), etag  # a multipart upload of two parts (8 MiB and the rest)
    first = s3.client.head_object(Bucket=s3.bucket, Key=key, PartNumber=1)
    assert first["ContentLength"] == 8 * 2**20
    raw = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert content[1000:1032] not in raw and content[-32:] not in raw


async def test_an_object_swapped_in_the_bucket_is_refused_with_an_integrity_error(
    db_url: str, tmp_path: Path, s3: MotoS3
) -> None:
    async with seeded_school(db_url, tmp_path, overrides=s3.overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            for name, text in (("one.txt", b"first file\n"), ("two.txt", b"second file\n")):
                await teacher.get("/incidents/1")
                assert (await teacher.upload("/incidents/1/files", name, text * 10))[0] == 200
            first, second = await rows(school)
            # Someone with the bucket puts the second file's object under the first's name.
            store = S3Store(bucket=s3.bucket, prefix="vigil/files")
            other = s3.client.get_object(Bucket=s3.bucket, Key=store.key(second.token))
            s3.client.put_object(
                Bucket=s3.bucket, Key=store.key(first.token), Body=other["Body"].read()
            )
            with capture_logs() as logs:
                status, body = await teacher.get(f"/incidents/1/files/{first.id}")
                assert status == 500 and "integrity check" in shown(body)
                assert "first file" not in body and "second file" not in body
                # An object gone from the bucket: refused the same way, never a traceback.
                s3.client.delete_object(Bucket=s3.bucket, Key=store.key(second.token))
                status, body = await teacher.get(f"/incidents/1/files/{second.id}")
                assert status == 500 and "integrity check" in shown(body)
    events = {entry["event"] for entry in logs}
    assert {"file.integrity_error", "file.missing_from_store"} <= events
    downloads = await audit_events(school, "file.download")
    assert len(downloads) == 2  # audited as asked for; the content was never sent


async def test_an_object_is_never_overwritten(s3: MotoS3) -> None:
    store = S3Store(bucket=s3.bucket, prefix="/vigil/files/", endpoint_url=s3.endpoint)
    try:
        token = sealing.new_token()
        first = store.spool(token)
        first.write(b"sealed chunk one")
        await first.commit(None, file_id=1)  # type: ignore[arg-type]
        second = store.spool(token)
        second.write(b"something else")
        with pytest.raises(ObjectExists):
            await second.commit(None, file_id=2)  # type: ignore[arg-type]
        assert [chunk async for chunk in store.read_sealed(token)] == [b"sealed chunk one"]
        # Even without the HEAD that finds it first, the write itself is conditional.
        store.exists = _never  # type: ignore[method-assign]
        third = store.spool(token)
        third.write(b"something else")
        with pytest.raises(ObjectExists):
            await third.commit(None, file_id=3)  # type: ignore[arg-type]
        assert [chunk async for chunk in store.read_sealed(token)] == [b"sealed chunk one"]
    finally:
        await store.close()


async def _never(token: str) -> bool:
    return False


async def test_the_object_of_an_upload_whose_row_failed_is_removed(s3: MotoS3) -> None:
    store = S3Store(bucket=s3.bucket, prefix="vigil/files", endpoint_url=s3.endpoint)
    token = sealing.new_token()
    spool = store.spool(token)
    spool.write(b"sealed")
    await spool.commit(None, file_id=1)  # type: ignore[arg-type]
    assert s3.keys() == [store.key(token)]
    spool.discard()  # the row's transaction failed after the object was stored
    await store.close()  # waits for the removal
    assert s3.keys() == []


def failing_commit(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Make the flow `module.name` succeed, then its transaction's COMMIT fail."""
    real = getattr(module, name)

    async def then_commit_fails(session: AsyncSession, **kwargs: Any) -> Any:
        answer = await real(session, **kwargs)

        def refuse(_session: object) -> None:
            raise OperationalError("COMMIT", {}, Exception("the database went away"))

        event.listen(session.sync_session, "before_commit", refuse)
        return answer

    monkeypatch.setattr(module, name, then_commit_fails)


async def test_files_whose_rows_were_not_committed_leave_nothing_in_the_bucket(
    db_url: str, tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        seeded_school(db_url, tmp_path, overrides=s3.overrides) as school,
        signed_in(school, TEACHER) as teacher,
        signed_in(school, DSL) as dsl,
    ):
        await file_concern(school, TEACHER)
        pupil = await pupil_by_upn(school, PUPIL_4B)
        with monkeypatch.context() as patched:
            failing_commit(patched, flows, "attach")
            failing_commit(patched, paper_flows, "add_paper_record")
            await teacher.get("/incidents/1")
            status, _ = await teacher.upload("/incidents/1/files", "notes.pdf", pdf_bytes())
            assert status == 500
            await dsl.get(f"/pupils/{pupil.id}")
            status, _ = await dsl.send_files(
                f"/pupils/{pupil.id}/paper",
                [("files", "p1.pdf", pdf_bytes()), ("files", "p2.pdf", pdf_bytes())],
                {"recorded_on": "2019-03-14", "description": "An old slip."},
            )
            assert status == 500
            await school.server.files.close()  # the removals have finished
            assert await count_files(school) == (0, 0)
            assert s3.keys() == []
        # With the database answering again (and the client made anew), it is stored.
        await teacher.get("/incidents/1")
        assert (await teacher.upload("/incidents/1/files", "notes.pdf", pdf_bytes()))[0] == 200
        assert len(s3.keys()) == 1


def test_s3_urls_are_accepted_and_malformed_ones_refused() -> None:
    assert check_files_url("s3://bucket/prefix") == "s3://bucket/prefix"
    store = open_store("s3://bucket/a/b/", s3_endpoint_url="http://minio:9000", s3_region=REGION)
    assert isinstance(store, Reexported) and store.bucket == "bucket"
    assert store.key("ab" + "0" * 30) == f"a/b/ab/ab{'0' * 30}.vgf"
    assert store.endpoint_url == "http://minio:9000" and store.region == REGION
    assert open_store("s3://bucket").key("cd12") == "cd/cd12.vgf"  # type: ignore[attr-defined]
    for bad in ("s3://", "s3:///prefix", "s3://key:secret@bucket/p", "s3://bucket/p?x=1"):
        with pytest.raises(ConfigError, match="s3://bucket/prefix"):
            load_settings(env_file=None, VIGIL_FILES_URL=bad)


async def test_a_missing_bucket_refuses_to_start_in_one_line(harness: Harness, s3: MotoS3) -> None:
    overrides = {**s3.overrides, "VIGIL_FILES_URL": "s3://no-such-bucket/files"}
    settings = harness.settings.model_copy(
        update={
            "files_url": overrides["VIGIL_FILES_URL"],
            "s3_endpoint_url": s3.endpoint,
            "s3_region": REGION,
        }
    )
    await harness.server.stop()  # let go of the database
    other = VigilServer(settings)
    try:
        with pytest.raises(StartupError) as refused:
            await other.start()
    finally:
        await other.close()
    message = str(refused.value)
    assert "\n" not in message
    assert "s3://no-such-bucket/files" in message and "no such bucket" in message
    assert "VIGIL_FILES_URL" in message


def test_refused_credentials_and_an_unreachable_endpoint_are_explained() -> None:
    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "no"}}, "HeadBucket")

    where = {"files_url": "s3://b/p", "endpoint_url": "http://127.0.0.1:9"}
    for code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        message = file_store_problem(refused(code), **where)
        assert "refused Vigil's credentials" in message and "AWS_ACCESS_KEY_ID" in message
    assert "VIGIL_S3_REGION" in file_store_problem(refused("301"), **where)
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    message = file_store_problem(unreachable, **where)
    assert "cannot reach the file store s3://b/p at http://127.0.0.1:9" in message
    assert "VIGIL_S3_ENDPOINT_URL" in message
    assert "AWS_ACCESS_KEY_ID" in file_store_problem(NoCredentialsError(), **where)


async def test_a_bucket_that_stops_answering_gives_a_clear_page_and_stores_nothing(
    db_url: str, tmp_path: Path, s3: MotoS3
) -> None:
    async with seeded_school(db_url, tmp_path, overrides=s3.overrides) as school:
        await file_concern(school, TEACHER)
        async with signed_in(school, TEACHER) as teacher:
            await teacher.get("/incidents/1")
            assert (await teacher.upload("/incidents/1/files", "notes.pdf", pdf_bytes()))[0] == 200
            (row,) = await rows(school)
            for key in s3.keys():
                s3.client.delete_object(Bucket=s3.bucket, Key=key)
            s3.client.delete_bucket(Bucket=s3.bucket)  # the store answers NoSuchBucket
            status, body = await teacher.get(f"/incidents/1/files/{row.id}")
            assert status == 503 and "The file store did not answer" in shown(body)
            status, body = await teacher.get("/incidents/1")
            assert status == 200 and "notes.pdf" in shown(body)  # the page still opens
            status, body = await teacher.upload("/incidents/1/files", "more.pdf", pdf_bytes())
            assert status == 503 and "nothing was attached" in shown(body)
        assert await count_files(school) == (1, 0)
