"""A dump reveals no child (issue 15): pupils' names, dates of birth and UPNs, and agencies'
references, are stored only encrypted, on both databases. The typeahead still finds
pupils from each process's in-memory roster, and sees an import another process made;
an import still matches pupils by UPN (a keyed hash); migration 0020 converts the rows
stored before it (and its downgrade gives them back); `vigil rotate-key` covers them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from privacy.sources import raw_rows, table_shapes
from store import encrypted, pupils
from store.crypto import Cipher, bind, generate_key
from store.db import create_engine, session_factory
from store.migrate import KeyNeeded, alembic_config, upgrade
from store.models import Pupil, PupilDetails, Referral
from store.roster import import_pupils
from testing.harness import Harness
from testing.school import STAFF, DemoPupil, fictional_pupils, pupils_csv
from tests.handlers.test_concern_flow import suggest
from tests.support.school import DSL, TEACHER
from tests.support.slack import file_concern
from tests.support.web import People

REFERENCE = "MASH/77341-Q"
MASH = "Children's social care (MASH)"


async def refer(school: Harness, people: People) -> None:
    """Concern 1, and a referral to MASH with `REFERENCE` recorded on it by the DSL."""
    await file_concern(school)
    async with people.signed_in(DSL) as dsl:
        status, _ = await dsl.post(
            "/incidents/1/actions",
            {"text": "Referred to MASH by phone.", "agency": MASH, "reference": REFERENCE},
        )
    assert status == 200


async def raw_dump(school: Harness) -> str:
    """Everything the database holds, as a dump would show it: on SQLite the file's own
    bytes (and its write-ahead log), on PostgreSQL every row of every table."""
    url = make_url(school.database_url)
    if url.get_backend_name() == "sqlite":
        database = Path(str(url.database))
        parts = [database, database.with_name(database.name + "-wal")]
        return "".join(p.read_bytes().decode("latin-1") for p in parts if p.exists())
    values: list[str] = []
    async with school.server.engine.connect() as connection:
        for shape in await table_shapes(connection):
            async for row in raw_rows(connection, shape):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        values.append(bytes(value).decode("latin-1"))
                    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                        values.append(value.isoformat())
                    elif value is not None:
                        values.append(str(value))
    return "\n".join(values)


def tell_tales(roster: list[DemoPupil]) -> dict[str, str]:
    """What would name a pupil in a dump: each UPN, date of birth (ISO and as a school
    writes it) and name (a surname or forename no member of staff shares), and the
    reference. Value → what it is."""
    staff_words = {w.casefold() for s in STAFF for w in s.name.split()}
    found: dict[str, str] = {REFERENCE: "reference"}
    for p in roster:
        found[p.upn] = "UPN"
        found[p.date_of_birth.isoformat()] = "date of birth"
        found[p.date_of_birth.strftime("%d/%m/%Y")] = "date of birth"
        for name in (p.forename, p.surname):
            # (shorter names than 5 letters turn up by chance in a file of random bytes)
            if name.casefold() not in staff_words and len(name) >= 5:
                found[name] = "name"
    return found


async def test_a_raw_dump_names_no_pupil_date_of_birth_or_reference(school: Harness) -> None:
    people = People(school)
    await refer(school, people)
    dump = await raw_dump(school)
    assert "Referred to MASH" not in dump  # (the dump is real: stored texts were sealed too)
    assert "a.hughes@larkspur.example" in dump  # and it holds the tables (staff are plain)
    leaked = {what for value, what in tell_tales(fictional_pupils(30)).items() if value in dump}
    assert leaked == set()
    # ...while the pages still show them: the reference on the concern, the pupil's name.
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
    assert REFERENCE in page
    async with school.server.factory() as db:
        [referral] = (await db.scalars(select(Referral))).all()
        assert referral.reference == REFERENCE


async def test_the_typeahead_sees_an_import_made_by_another_process(
    school: Harness, tmp_path: Path
) -> None:
    people = People(school)
    roster = fictional_pupils(30)
    staying, leaving = roster[0], roster[1]
    assert [o["value"] for o in await suggest(school, TEACHER, leaving.upn)] != []
    before = await suggest(school, TEACHER, staying.surname)
    assert any(staying.forename in o["text"]["text"] for o in before)

    # Another process (its own engine, sessions and cipher) imports the roster: one pupil
    # has left, one has joined. This process is told nothing but what the database says.
    newcomer = DemoPupil(
        upn="N12345678901Q",
        forename="Xanthe",
        surname="Quillfeather",
        date_of_birth=dt.date(2018, 2, 3),
        year_group="Year 3",
        registration_group="3A",
    )
    path = tmp_path / "pupils-again.csv"
    path.write_text(pupils_csv([p for p in roster if p is not leaving] + [newcomer]))
    other = create_engine(school.database_url)
    try:
        report = await import_pupils(
            session_factory(other),
            workspace_id=school.workspace_id,
            path=path,
            cipher=Cipher(school.data_key),
        )
    finally:
        await other.dispose()
    assert (report.created, report.left) == (1, 1)

    [option] = await suggest(school, TEACHER, "quillf")
    assert option["text"]["text"].startswith("Xanthe Quillfeather")
    assert await suggest(school, TEACHER, leaving.upn) == []  # leavers are not offered
    # The web view's finder (key-holders) still finds the leaver, and the newcomer by UPN.
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get(f"/pupils?q={newcomer.upn.lower()}")
        assert "Quillfeather" in page
        _, page = await dsl.get(f"/pupils?q={leaving.upn}")
        assert leaving.surname in page


async def test_an_import_matches_pupils_by_their_upn(school: Harness, tmp_path: Path) -> None:
    roster = fictional_pupils(30)
    renamed = [
        DemoPupil(**{**vars(p), "upn": p.upn.lower(), "surname": "Newname"}) if i == 0 else p
        for i, p in enumerate(roster)
    ]
    path = tmp_path / "pupils-again.csv"
    path.write_text(pupils_csv(renamed))
    report = await import_pupils(
        school.server.factory,
        workspace_id=school.workspace_id,
        path=path,
        cipher=school.server.cipher,
    )
    assert (report.created, report.updated, report.unchanged) == (0, 1, 29)
    async with school.server.factory() as db:
        found = await pupils.by_upn(
            db,
            workspace_id=school.workspace_id,
            cipher=school.server.cipher,
            upn=f"  {roster[0].upn.lower()} ",
        )
        assert found is not None and (found.upn, found.surname) == (roster[0].upn, "Newname")
        stored = set((await db.execute(text("SELECT upn FROM pupils"))).scalars())
    assert len(stored) == 30 and not stored & {p.upn for p in roster}
    assert all(len(s) == 13 and s == s.lower() for s in stored)  # keyed hashes, not UPNs


def _migrate(url: str, revision: str, cipher: Cipher | None, *, down: bool) -> Any:
    async def run() -> None:
        engine = create_engine(url)
        try:
            if not down:
                await upgrade(engine, revision, cipher=cipher)
                return

            def downgrade(connection: Any) -> None:
                config = alembic_config()
                config.attributes["connection"] = connection
                config.attributes["cipher"] = cipher
                command.downgrade(config, revision)

            async with engine.begin() as connection:
                await connection.run_sync(downgrade)
        finally:
            await engine.dispose()

    return run()


def _revision_before(revision: str) -> str:
    """The revision a migration follows (the chain's order is the merge order)."""
    script = ScriptDirectory.from_config(alembic_config())
    found = script.get_revision(revision)
    assert found is not None and isinstance(found.down_revision, str)
    return found.down_revision


async def test_migration_0020_converts_the_rows_stored_before_it(school: Harness) -> None:
    people = People(school)
    await refer(school, people)
    roster = fictional_pupils(30)
    url, cipher = school.database_url, Cipher(school.data_key)
    before = _revision_before("0020")
    await _migrate(url, before, cipher, down=True)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            plain = (
                await connection.execute(
                    text("SELECT upn, surname, date_of_birth FROM pupils ORDER BY upn")
                )
            ).all()
            reference = (await connection.execute(text("SELECT reference FROM referrals"))).scalar()
        assert [(u, s) for u, s, _ in plain] == sorted((p.upn, p.surname) for p in roster)
        assert reference == REFERENCE

        # Without the key the upgrade is refused, and nothing changes.
        with pytest.raises(KeyNeeded, match="VIGIL_DATA_KEY"):
            await _migrate(url, "head", None, down=False)
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(surname) FROM pupils"))).scalar()
    finally:
        await engine.dispose()

    await _migrate(url, "head", cipher, down=False)
    assert not {"UPN", "date of birth", "name", "reference"} & {
        what for value, what in tell_tales(roster).items() if value in await raw_dump(school)
    }
    async with school.server.factory() as db:
        stored = {p.upn: p for p in (await db.scalars(select(Pupil))).all()}
        assert {u: (p.surname, p.date_of_birth) for u, p in stored.items()} == {
            p.upn: (p.surname, p.date_of_birth) for p in roster
        }
        [referral] = (await db.scalars(select(Referral))).all()
        assert referral.reference == REFERENCE
    [option] = await suggest(school, TEACHER, roster[5].upn)
    assert roster[5].surname in option["text"]["text"]
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get(f"/caseload?reference={REFERENCE.lower()}")
        assert 'id="case-1"' in page
        _, page = await dsl.get("/caseload?reference=MASH/1")
        assert 'id="case-1"' not in page


async def test_rotate_key_covers_pupils_and_references(school: Harness) -> None:
    """After `vigil rotate-key` with a new key in front, the new key alone reads them."""
    people = People(school)
    await refer(school, people)
    fresh = generate_key()
    both = Cipher(f"{fresh},{school.data_key}")
    result = await encrypted.rotate(school.server.factory, both, progress=lambda _: None)
    assert not result.old_key_needed and result.rewrapped >= 1
    alone = Cipher(fresh)
    async with school.server.factory() as db:
        assert await encrypted.key_reads_stored_data(db, cipher=alone)
        [(referral_id, reference)] = (
            await db.execute(select(Referral.id, Referral.reference_ct))
        ).all()
        rows = (await db.execute(select(Pupil.id, Pupil.details_ct))).all()
    assert alone.decrypt(reference, bind(Referral.reference_ct, referral_id)) == REFERENCE
    opened = [
        PupilDetails.from_sealed_text(alone.decrypt(token, bind(Pupil.details_ct, pupil_id)))
        for pupil_id, token in rows
    ]
    assert sorted(d.upn for d in opened) == sorted(p.upn for p in fictional_pupils(30))
