"""Record keys (DESIGN §8 and §14, docs/record-encryption.md), on both databases: each
concern and each paper record is sealed under a key of its own; destroying the record
destroys its key, so a copy of its ciphertexts taken before can no longer be opened by
anyone holding the school's keys; another process reads a record made after it loaded
its keys; `vigil rotate-key` moves values sealed under a data key to their record's key.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from store import encrypted, keyring, referrals
from store.crypto import (
    RECORD_KEY_BIT,
    Cipher,
    MissingKeyError,
    RecordKeyNotLoaded,
    bind,
    is_record_key,
    key_id_of,
)
from store.crypto import IntegrityError as CryptoIntegrityError
from store.db import create_engine
from store.flows import retention as flows
from store.immutability import ImmutableRecordError, destruction_permit
from store.migrate import KeyNeeded
from store.models import (
    BodyMap,
    Incident,
    IncidentAction,
    PaperRecord,
    RecordKey,
    Referral,
    StoredFile,
)
from testing.harness import Harness
from tests.store.test_pupils_sealed import _migrate
from tests.store.test_retention import SCAN, attach_file_and_body_map, set_born, visit_of
from tests.support.records import add_action, pupil_by_upn, staff_member
from tests.support.school import DSL, PUPIL_3A, PUPIL_4B, TEACHER
from tests.support.slack import file_concern
from tests.support.web import signed_in

FIRST = "Marmalade disclosure: the lodger keeps the shed locked at night."
SECOND = "Wintergreen said her cousin waits by the canal gate."


async def fresh_cipher(school: Harness) -> Cipher:
    """A second process: the school's keys, loaded from the database now."""
    cipher = Cipher(school.data_key)
    async with school.server.factory() as db:
        await keyring.load_data_keys(db, cipher, create=False)
    return cipher


async def incident_numbered(school: Harness, number: int) -> Incident:
    async with school.server.factory() as db:
        incident = await db.scalar(
            select(Incident).where(
                Incident.workspace_id == school.workspace_id, Incident.number == number
            )
        )
    assert incident is not None
    return incident


async def key_of(school: Harness, incident_id: int) -> int | None:
    async with school.server.factory() as db:
        return await db.scalar(select(RecordKey.id).where(RecordKey.incident_id == incident_id))


async def test_each_record_is_sealed_under_a_key_of_its_own(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, narrative=SECOND)
    async with signed_in(school, DSL, remember=True) as dsl_web:
        await attach_file_and_body_map(dsl_web, file_name="Lodger letter.pdf", note="Lodger bruise")
    first, second = await incident_numbered(school, 1), await incident_numbered(school, 2)
    dsl = await staff_member(school, DSL)
    async with school.server.factory() as db, db.begin():
        action = await add_action(school, db, author=dsl, incident=first, text="Phoned home.")
        await referrals.record_referral(
            db,
            incident=first,
            action=action,
            author=dsl,
            agency=school.server.web_deps.school.agencies[0],
            referred_at=school.now(),
            reference="POL-5511",
            working=school.server.web_deps.school.working_time,
            cipher=school.server.cipher,
            now=school.now(),
        )
    first_key, second_key = await key_of(school, first.id), await key_of(school, second.id)
    assert first_key is not None and second_key is not None and first_key != second_key
    assert is_record_key(first_key) and is_record_key(second_key)
    assert key_id_of(first.narrative_ct) == first_key
    assert key_id_of(second.narrative_ct) == second_key
    async with school.server.factory() as db:
        for column, owner in (
            (IncidentAction.text_ct, IncidentAction.incident_id),
            (BodyMap.marks_ct, BodyMap.incident_id),
            (Referral.reference_ct, Referral.incident_id),
            (StoredFile.key_ct, StoredFile.incident_id),
        ):
            tokens = (await db.scalars(select(column).where(owner == first.id))).all()
            assert tokens, column
            assert {key_id_of(t) for t in tokens} == {first_key}, column
    # The pages still read it all.
    async with signed_in(school, DSL, remember=True) as dsl_web:
        status, body = await dsl_web.get("/incidents/1")
        assert status == 200 and "Marmalade" in body and "POL-5511" in body
        assert "Lodger letter.pdf" in body


async def test_a_paper_record_has_its_own_key_and_destruction_shreds_it(school: Harness) -> None:
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL, remember=True) as dsl_web:
        await dsl_web.get(f"/pupils/{pupil.id}")
        status, _ = await dsl_web.send_files(
            f"/pupils/{pupil.id}/paper",
            [("files", "scan.pdf", SCAN)],
            {"recorded_on": "2001-03-14", "description": "Lodger note from the file."},
        )
        assert status == 200
    async with school.server.factory() as db:
        paper = await db.scalar(select(PaperRecord))
        assert paper is not None
        key_id = await db.scalar(select(RecordKey.id).where(RecordKey.paper_record_id == paper.id))
        file_key_ct = await db.scalar(select(StoredFile.key_ct))
    assert key_id is not None and key_id_of(paper.description_ct) == key_id
    assert file_key_ct is not None and key_id_of(file_key_ct) == key_id
    copied, where = paper.description_ct, bind(PaperRecord.description_ct, paper.id)
    dsl = await staff_member(school, DSL)
    visit = visit_of(school, dsl)
    async with school.server.factory() as db:
        (row,) = (await flows.review_page(db, visit=visit)).due
    async with school.server.factory() as db, db.begin():
        await flows.destroy(
            db, visit=visit, files=school.server.web_deps.files, ref=row.ref, confirmed=True
        )
    async with school.server.factory() as db:
        assert await db.scalar(select(RecordKey.id)) is None
    with pytest.raises(MissingKeyError):
        (await fresh_cipher(school)).decrypt(copied, where)


async def test_destruction_destroys_the_record_key_and_its_copied_ciphertexts(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, narrative=SECOND)
    doomed, kept = await incident_numbered(school, 1), await incident_numbered(school, 2)
    doomed_key = await key_of(school, doomed.id)
    assert doomed_key is not None
    # What a backup, or someone reading the database, copied before the destruction.
    copied = doomed.narrative_ct
    where = bind(Incident.narrative_ct, doomed.id)
    assert (await fresh_cipher(school)).decrypt(copied, where) == FIRST
    await set_born(school, PUPIL_4B, dt.date(1990, 3, 1))
    dsl = await staff_member(school, DSL)
    async with school.server.factory() as db, db.begin():
        done = await flows.destroy(
            db,
            visit=visit_of(school, dsl),
            files=school.server.web_deps.files,
            ref=flows.RecordRef(flows.CONCERN, 1),
            confirmed=True,
        )
        assert isinstance(done, flows.Destroyed)
    async with school.server.factory() as db:
        left = set((await db.scalars(select(RecordKey.id))).all())
    assert doomed_key not in left and await key_of(school, kept.id) in left
    # Gone from this process, and from the database: a new process with the school's
    # keys cannot open the copy, and asking the database for that key finds nothing.
    with pytest.raises(MissingKeyError):
        school.server.cipher.decrypt(copied, where)
    later = await fresh_cipher(school)
    with pytest.raises(RecordKeyNotLoaded):
        later.decrypt(copied, where)
    async with school.server.factory() as db:
        assert await keyring.load_record_keys(db, later, key_ids=[doomed_key]) == 0
    with pytest.raises(MissingKeyError):
        later.decrypt(copied, where)
    # The other record still reads, in both.
    kept_where = bind(Incident.narrative_ct, kept.id)
    assert later.decrypt(kept.narrative_ct, kept_where) == SECOND
    assert school.server.cipher.decrypt(kept.narrative_ct, kept_where) == SECOND


async def test_another_process_reads_a_record_made_after_it_loaded(school: Harness) -> None:
    other = await fresh_cipher(school)
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    made = await incident_numbered(school, 1)
    where = bind(Incident.narrative_ct, made.id)
    with pytest.raises(RecordKeyNotLoaded):
        other.decrypt(made.narrative_ct, where)
    async with school.server.factory() as db:
        assert await keyring.load_record_keys(db, other) == 1  # those made since it loaded
    assert other.decrypt(made.narrative_ct, where) == FIRST


async def test_a_page_loads_a_record_key_another_process_made(school: Harness) -> None:
    """The web view meeting a record key it has not loaded loads it and serves the page."""
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    made = await incident_numbered(school, 1)
    key_id = await key_of(school, made.id)
    assert key_id is not None
    school.server.cipher.forget_key(key_id)  # as if another process had made it
    school.server.cipher.record_keys_loaded_at = None
    async with signed_in(school, DSL, remember=True) as dsl_web:
        status, body = await dsl_web.get("/incidents/1")
    assert status == 200 and "Marmalade" in body


async def test_rotate_key_moves_older_values_under_their_record_key(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    made = await incident_numbered(school, 1)
    cipher = school.server.cipher
    where = bind(Incident.narrative_ct, made.id)
    # As stored before record keys: under the school's data key, and no record key.
    async with school.server.factory() as db, db.begin():
        await db.execute(
            update(Incident)
            .where(Incident.id == made.id)
            .values(narrative_ct=cipher.encrypt(FIRST, where))
            .execution_options(synchronize_session=False)
        )
        old_key = await db.scalar(select(RecordKey.id).where(RecordKey.incident_id == made.id))
        async with destruction_permit(db):  # only a destruction deletes a key
            await keyring.destroy_record_key(db, cipher, incident_id=made.id)
    async with signed_in(school, DSL, remember=True) as dsl_web:
        status, body = await dsl_web.get("/incidents/1")
        assert status == 200 and "Marmalade" in body  # older values still read
    result = await encrypted.rotate(school.server.factory, cipher, progress=lambda _: None)
    assert result.converted >= 1 and not result.old_key_needed
    new_key = await key_of(school, made.id)
    assert new_key is not None and new_key != old_key
    made = await incident_numbered(school, 1)
    assert key_id_of(made.narrative_ct) == new_key
    async with school.server.factory() as db:
        tokens = (
            await db.scalars(
                select(IncidentAction.text_ct).where(IncidentAction.incident_id == made.id)
            )
        ).all()
    assert all(key_id_of(t) == new_key for t in tokens)
    assert (await fresh_cipher(school)).decrypt(made.narrative_ct, where) == FIRST


async def test_the_downgrade_reseals_records_under_the_data_key(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    made = await incident_numbered(school, 1)
    url = school.database_url
    with pytest.raises(KeyNeeded):
        await _migrate(url, "0020", None, down=True)  # nothing changed
    await _migrate(url, "0020", Cipher(school.data_key), down=True)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            token = await connection.scalar(
                select(Incident.narrative_ct).where(Incident.id == made.id)
            )
    finally:
        await engine.dispose()
    assert token is not None and not is_record_key(key_id_of(token) or 0)
    reader = Cipher(school.data_key)
    await _migrate(url, "head", Cipher(school.data_key), down=False)
    async with school.server.factory() as db:
        await keyring.load_data_keys(db, reader, create=False)
    assert reader.decrypt(token, bind(Incident.narrative_ct, made.id)) == FIRST


async def test_a_record_key_is_deleted_by_a_destruction_only(school: Harness) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    async with school.server.engine.connect() as connection:
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
            await connection.execute(text("DELETE FROM record_keys"))
    async with school.server.engine.connect() as connection:
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
            await connection.execute(text("UPDATE record_keys SET data_key_id = 1"))
    async with school.server.factory() as db:
        with pytest.raises(ImmutableRecordError):
            await db.execute(delete(RecordKey))
        assert await db.scalar(select(RecordKey.id)) is not None


async def test_a_wrapped_record_key_moved_to_another_record_does_not_unwrap(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, narrative=SECOND)
    first, second = await incident_numbered(school, 1), await incident_numbered(school, 2)
    async with school.server.factory() as db:
        row = await db.scalar(select(RecordKey).where(RecordKey.incident_id == first.id))
    assert row is not None
    moved = SimpleNamespace(
        id=row.id, incident_id=second.id, paper_record_id=None, wrapped=row.wrapped
    )
    reader = Cipher(school.data_key)
    async with school.server.factory() as db:
        await keyring.load_data_keys(db, reader, create=False, records=False)
    with pytest.raises(CryptoIntegrityError):
        keyring._add_record_key(reader, moved)
    keyring._add_record_key(reader, row)  # where it belongs, it unwraps
    assert reader.decrypt(first.narrative_ct, bind(Incident.narrative_ct, first.id)) == FIRST


async def test_a_new_concern_whose_random_key_id_is_taken_is_sealed_under_another(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concern's key is made before it is written (its id taken with its number); if
    that random id is another record's already, the concern gets another key and its
    values are sealed again under it, still readable by a process loading the keys."""
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=FIRST)
    first = await incident_numbered(school, 1)
    taken = await key_of(school, first.id)
    assert taken is not None
    draws = iter([taken - RECORD_KEY_BIT])  # the next key drawn: the first's id
    real = keyring.secrets.randbelow

    def randbelow(n: int) -> int:
        return next(draws, None) or real(n) if n == 2**31 else real(n)

    monkeypatch.setattr(keyring.secrets, "randbelow", randbelow)
    await file_concern(school, TEACHER, pupil_query=PUPIL_3A, narrative=SECOND)
    assert next(draws, None) is None  # the second concern drew the first's id
    second = await incident_numbered(school, 2)
    second_key = await key_of(school, second.id)
    assert second_key is not None and second_key != taken
    assert key_id_of(second.narrative_ct) == second_key
    assert await key_of(school, first.id) == taken  # the first's key untouched
    other = await fresh_cipher(school)
    assert other.decrypt(second.narrative_ct, bind(Incident.narrative_ct, second.id)) == SECOND
    assert other.decrypt(first.narrative_ct, bind(Incident.narrative_ct, first.id)) == FIRST
    async with signed_in(school, DSL, remember=True) as dsl_web:
        status, body = await dsl_web.get("/incidents/2")
    assert status == 200 and "Wintergreen" in body
