"""`vigil rotate-key`: a new key-encryption key in front of the old one, the data keys
re-wrapped and legacy values converted while the server keeps serving, then the old key
removed and everything still read; and the clear errors when a key is removed too soon.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from bot.cli import main
from bot.startup import StartupError
from store import encrypted, keyring
from store.crypto import Cipher, bind, generate_key, is_legacy, is_legacy_file_key
from store.documents import files, sealing
from store.models import DataKey, EncryptionState, Incident, StoredFile
from testing.harness import Harness
from tests.support.school import DSL, NARRATIVE, TEACHER
from tests.support.slack import file_concern
from tests.support.web import People, shown

OLD_TEXT = "Written before data keys: said her uncle shouts at her every night."
FILE_TEXT = b"A letter from the GP, filed before data keys.\n" * 20


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    monkeypatch.delenv("VIGIL_DATA_KEY", raising=False)


async def make_legacy(school: Harness) -> int:
    """Put the first incident's narrative and the first file's key in the format of a
    database from before data keys (Fernet under the key, file keys under a derived key)."""
    old = Cipher(school.data_key)
    async with school.server.factory() as db:
        incident_id = await db.scalar(select(Incident.id).where(Incident.number == 1))
        row = await db.scalar(select(StoredFile))
        assert incident_id is not None and row is not None
        file_key = sealing.unwrap_key(school.server.cipher, row.key_ct, binding=files.binding(row))
        legacy_key = sealing.wrap_key_legacy(old, file_key, binding=files.binding(row))
    async with school.server.engine.begin() as connection:
        await connection.execute(
            update(Incident)
            .where(Incident.id == incident_id)
            .values(narrative_ct=old.legacy_encrypt(OLD_TEXT))
        )
        await connection.execute(
            update(StoredFile).where(StoredFile.id == row.id).values(key_ct=legacy_key)
        )
        # A database from before data keys has never closed the legacy format.
        await connection.execute(delete(EncryptionState))
    await school.restart()
    return row.id


def env_file(tmp_path: Path, school: Harness, key: str) -> Path:
    env = tmp_path / ".env"
    env.write_text(f"VIGIL_DATABASE_URL={school.database_url}\nVIGIL_DATA_KEY={key}\n")
    return env


async def reads_everything(school: Harness, people: People, file_id: int) -> None:
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/incidents/1")
        assert status == 200 and OLD_TEXT in shown(body), shown(body)
        status, body = await dsl.get("/incidents/2")
        assert status == 200 and NARRATIVE in shown(body)
        async with dsl.http.get(f"{school.server.url}/incidents/1/files/{file_id}") as response:
            assert response.status == 200 and await response.read() == FILE_TEXT


async def test_a_rotation_while_serving_then_the_old_key_removed(
    school: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = People(school)
    await file_concern(school, TEACHER)
    await file_concern(school, TEACHER)
    async with people.signed_in(TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, _ = await teacher.upload("/incidents/1/files", "gp.txt", FILE_TEXT)
        assert status == 200
    file_id = await make_legacy(school)
    await reads_everything(school, people, file_id)  # legacy values still read

    old, new = school.data_key, generate_key()
    env = env_file(tmp_path, school, f"{new},{old}")
    async with people.signed_in(DSL) as dsl:
        rotation = asyncio.create_task(
            asyncio.to_thread(main, ["--env-file", str(env), "rotate-key"])
        )
        served = 0
        while not rotation.done() or served < 3:  # the server keeps serving meanwhile
            for number in (1, 2):
                status, body = await dsl.get(f"/incidents/{number}")
                assert status == 200, shown(body)
                served += 1
        assert await rotation == 0
    out = capsys.readouterr().out
    assert "The old key is no longer used: remove it from VIGIL_DATA_KEY" in out
    assert "converted 1 value(s) and 1 file key(s)" in out

    async with school.server.factory() as db:
        narratives = (await db.scalars(select(Incident.narrative_ct))).all()
        key_ct = await db.scalar(select(StoredFile.key_ct))
        kek_ids = set((await db.scalars(select(DataKey.kek_id))).all())
    assert not any(is_legacy(bytes(n)) for n in narratives)
    assert key_ct is not None and not is_legacy_file_key(bytes(key_ct))
    assert kek_ids == {Cipher(new).keks[0].key_id}

    # Only the new key from now on: the restarted server reads everything.
    school.settings = school.settings.model_copy(update={"data_key": new})
    await school.restart()
    await reads_everything(school, people, file_id)
    # Run again, it has nothing to do and says the one key is all there is.
    env_file(tmp_path, school, new)
    assert await asyncio.to_thread(main, ["--env-file", str(env), "rotate-key"]) == 0
    assert "Everything is encrypted under the only key" in capsys.readouterr().out

    # Every value converted, the unbound format is closed: an old-format value copied in
    # (even one the configured key would decrypt) is refused, not read.
    async with school.server.engine.begin() as connection:
        await connection.execute(
            update(Incident)
            .where(Incident.number == 2)
            .values(narrative_ct=Cipher(new).legacy_encrypt(OLD_TEXT))
        )
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/incidents/2")
    assert status == 500 and "integrity check" in shown(body) and OLD_TEXT not in body


async def test_the_old_key_removed_before_rotation_is_a_clear_start_up_error(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER)
    await school.server.stop()
    school.settings = school.settings.model_copy(update={"data_key": generate_key()})
    with pytest.raises(StartupError) as refused:
        await school.restart()
    message = str(refused.value)
    assert "none of its keys unwraps the data keys" in message
    assert "VIGIL_DATA_KEY=new,old" in message and "vigil rotate-key" in message


async def test_legacy_values_left_when_the_old_key_is_removed_are_named(
    school: Harness,
) -> None:
    """The data keys were re-wrapped, but older values not yet converted: removing the old
    key then is refused at start-up, naming what still needs it."""
    await file_concern(school, TEACHER)
    await file_concern(school, TEACHER)
    old, new = school.data_key, generate_key()
    async with school.server.engine.begin() as connection:
        await connection.execute(
            update(Incident)
            .where(Incident.number == 1)
            .values(narrative_ct=Cipher(old).legacy_encrypt(OLD_TEXT))
        )
    async with school.server.factory() as db:
        assert await encrypted.rewrap_data_keys(db, Cipher(f"{new},{old}")) == 1
        await db.commit()
    only_new = Cipher(new)
    async with school.server.factory() as db:
        with pytest.raises(keyring.KeyUnavailable) as refused:
            await encrypted.key_reads_stored_data(db, cipher=only_new)
    message = str(refused.value)
    assert "incidents.narrative_ct still holds values written before data keys" in message
    assert "run `vigil rotate-key`" in message
    # With both keys it reads, and the second narrative was never legacy.
    both = Cipher(f"{new},{old}")
    async with school.server.factory() as db:
        assert await encrypted.key_reads_stored_data(db, cipher=both)
        second = await db.scalar(select(Incident).where(Incident.number == 2))
        assert second is not None
        where = bind(Incident.narrative_ct, second.id)
        assert both.decrypt(second.narrative_ct, where) == NARRATIVE
