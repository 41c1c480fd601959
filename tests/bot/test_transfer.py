"""Record transfers between two Vigil schools, as their DSLs run them: `vigil transfer keys`,
`trust`, `export`, `import` and `receipt` (the real command, in a thread beside each
school's running server), the web view's transfer button, and the nudge when a transfer
is not receipted after five school days.

The sending school is on `db_url` (both databases); the receiving one on a SQLite copy of
its own, with its own data key: two deployments, as in life.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import func, select

from bot.cli import main
from handlers.web.pdf import pdf_support
from store import keyring
from store.crypto import bind
from store.models import (
    AuditEvent,
    BodyMap,
    Incident,
    IncidentAction,
    PaperRecord,
    Pupil,
    StoredFile,
    Transfer,
    TransferImport,
)
from store.transfer_format import PACK_MAGIC, SchoolKeys, read_card, seal_pack
from testing.harness import Harness
from testing.school import STAFF
from testing.webclient import form_field
from tests.support import database
from tests.support.clock import WORKING, move_clock
from tests.support.records import audit_events, pupil_by_upn, staff_member
from tests.support.school import DSL, HEAD, NARRATIVE, PUPIL_4B, TEACHER, TEACHER_3A, seeded_school
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

SENDER, RECEIVER = "Larkspur Primary School", "Oakfield Academy"
LETTER = b"Letter from the GP about the bruising, 3 March.\n" * 50
DSL_EMAIL = next(p.email for p in STAFF if p.slack_user_id == DSL)
TEACHER_EMAIL = next(p.email for p in STAFF if p.slack_user_id == TEACHER)


def env_file(school: Harness, directory: Path) -> Path:
    """A `.env` for the `vigil` command at `school`: its database and data key."""
    path = directory / f"{id(school)}.env"
    path.write_text(
        f"VIGIL_DATABASE_URL={school.database_url}\nVIGIL_DATA_KEY={school.data_key}\n",
        encoding="utf-8",
    )
    return path


async def vigil(env: Path, *args: str) -> int:
    """`vigil --env-file ENV transfer ARGS…`, run as the IT technician would (in a thread:
    the command runs its own event loop)."""
    return await asyncio.to_thread(main, ["--env-file", str(env), "transfer", *args])


async def export(env: Path, out: Path, *, to: str = RECEIVER, by: str = DSL_EMAIL) -> int:
    """`vigil transfer export` of the 4B pupil's record to `to`, made by `by`."""
    return await vigil(env, "export", "--upn", PUPIL_4B, "--to", to, "--out", str(out), "--by", by)


async def import_pack(env: Path, pack: Path) -> int:
    """`vigil transfer import PACK`, by the receiving school's DSL."""
    return await vigil(env, "import", str(pack), "--by", DSL_EMAIL)


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VIGIL_DATABASE_URL", "VIGIL_DATA_KEY", "SLACK_BOT_TOKEN", "VIGIL_FILES_URL"):
        monkeypatch.delenv(name, raising=False)


class Schools(NamedTuple):
    """Larkspur (sending) and Oakfield (receiving), and each one's `.env`."""

    sender: Harness
    receiver: Harness
    env_a: Path
    env_b: Path


@pytest.fixture
async def schools(db_url: str, sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Schools]:
    """Larkspur (sending) and Oakfield (receiving), each with keys made and the other's
    card trusted, and Larkspur's concern #1 (`a_record`)."""
    for name in ("a", "b", "b-roster"):
        (tmp_path / name).mkdir()
    other_db = database.sqlite_copy(sqlite_template, tmp_path / "b")
    async with (
        seeded_school(db_url, tmp_path / "a") as sender,
        seeded_school(other_db, tmp_path / "b-roster") as receiver,
    ):
        env_a, env_b = env_file(sender, tmp_path), env_file(receiver, tmp_path)
        card_a, card_b = tmp_path / "larkspur.card", tmp_path / "oakfield.card"
        assert await vigil(env_a, "keys", "--name", SENDER, "--out", str(card_a)) == 0
        assert await vigil(env_b, "keys", "--name", RECEIVER, "--out", str(card_b)) == 0
        assert await vigil(env_a, "trust", str(card_b)) == 0
        assert await vigil(env_b, "trust", str(card_a)) == 0
        await a_record(sender)
        yield Schools(sender, receiver, env_a, env_b)


async def a_record(school: Harness) -> None:
    """Concern #1 about the 4B pupil with an action, a file and a body map."""
    await file_concern(school, TEACHER, categories=("Medical",))
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, body = await teacher.upload("/incidents/1/files", "GP letter.txt", LETTER)
        assert status == 200, shown(body)
        await teacher.get("/incidents/1")
        status, body = await teacher.post(
            "/incidents/1/body-map",
            {
                "mark-1-side": "front",
                "mark-1-region": "left upper arm",
                "mark-1-type": "bruise",
                "mark-1-size": "2 to 5 cm",
                "mark-1-note": "fingertip pattern",
            },
        )
        assert status == 200, shown(body)


async def counts(school: Harness) -> dict[str, int]:
    async with school.server.factory() as db:
        return {
            model.__tablename__: await db.scalar(select(func.count()).select_from(model)) or 0
            for model in (Incident, IncidentAction, StoredFile, BodyMap, PaperRecord, Pupil)
        }


async def test_a_record_goes_to_the_next_school_and_the_receipt_closes_it(
    schools: Schools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sender, receiver, env_a, env_b = schools
    pack = tmp_path / "out" / "pack.vigilpack"
    # Only a key-holder makes a pack.
    assert await export(env_a, pack, by=TEACHER_EMAIL) == 1
    assert "is not an active key-holder" in capsys.readouterr().err and not pack.exists()
    assert await export(env_a, pack, to=RECEIVER.upper()) == 0
    assert "1 concerns, encrypted to Oakfield Academy" in capsys.readouterr().out
    data = pack.read_bytes()
    pupil = await pupil_by_upn(sender, PUPIL_4B)
    assert pupil.surname.encode() not in data and b"hungry" not in data and b"GP letter" not in data
    async with sender.server.factory() as db:
        [transfer] = (await db.scalars(select(Transfer))).all()
    assert transfer.pupil_id == pupil.id and transfer.receipted_at is None
    assert transfer.to_name == RECEIVER

    before = await counts(receiver)
    assert await import_pack(env_b, pack) == 0
    out = capsys.readouterr().out
    # The GP letter, and the chronology's PDF (as a paper record) where PDFs are made.
    printed = 1 if pdf_support() is None else 0
    assert f"from {SENDER} into the pupil on roll" in out and f"{1 + printed} files" in out
    after = await counts(receiver)
    assert after["incidents"] == before["incidents"] + 1
    assert after["body_maps"] == before["body_maps"] + 1
    assert after["files"] == before["files"] + 1 + printed
    assert after["paper_records"] == before["paper_records"] + printed
    assert after["pupils"] == before["pupils"]  # matched by UPN

    # At Oakfield: the concern is on the pupil's chronology, marked as transferred,
    # and its file opens (re-sealed under Oakfield's key).
    here = await pupil_by_upn(receiver, PUPIL_4B)
    async with signed_in(receiver, DSL) as dsl:
        status, body = await dsl.get(f"/pupils/{here.id}")
        assert status == 200
        text = shown(body)
        assert f"Transferred from {SENDER}: their concern #1" in text
        assert NARRATIVE in text and "Medical" in text
        async with receiver.server.factory() as db:
            row = await db.scalar(
                select(StoredFile)
                .where(StoredFile.incident_id.is_not(None))
                .order_by(StoredFile.id.desc())
            )
        assert row is not None
        async with dsl.http.get(
            f"{receiver.server.url}/incidents/{row.incident_id}/files/{row.id}"
        ) as response:
            assert response.status == 200 and await response.read() == LETTER
        status, body = await dsl.get(f"/incidents/{row.incident_id}")
        assert "fingertip pattern" in shown(body) and "GP letter.txt" in shown(body)
    [imported] = await audit_events(receiver, "transfer.import")
    assert imported.outcome == "ok" and pupil.surname not in (imported.detail or "")

    # The same pack again: a replay, refused, nothing imported.
    assert await import_pack(env_b, pack) == 1
    assert "already imported" in capsys.readouterr().err
    assert await counts(receiver) == after

    # The receipt, back at Larkspur, closes the transfer (once).
    receipt = pack.with_suffix(".receipt")
    assert await vigil(env_a, "receipt", str(receipt)) == 0
    assert "is closed: receipted" in capsys.readouterr().out
    async with sender.server.factory() as db:
        closed = await db.scalar(select(Transfer))
    assert closed is not None and closed.receipted_at is not None
    assert await vigil(env_a, "receipt", str(receipt)) == 1
    assert "already receipted" in capsys.readouterr().err


async def test_a_tampered_misaddressed_or_stranger_pack_is_refused_and_nothing_imported(
    schools: Schools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sender, receiver, env_a, env_b = schools
    pack = tmp_path / "pack.vigilpack"
    assert await export(env_a, pack) == 0
    capsys.readouterr()
    good = pack.read_bytes()
    before = await counts(receiver)
    start = len(PACK_MAGIC)
    header_end = start + 4 + int.from_bytes(good[start : start + 4], "big")
    for position in (25, header_end - 5, len(good) // 2, len(good) - 70, len(good) - 1):
        bad = bytearray(good)
        bad[position] ^= 0x01
        tampered = tmp_path / f"tampered-{position}.vigilpack"
        tampered.write_bytes(bytes(bad))
        assert await import_pack(env_b, tampered) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("vigil: refused: ") and len(err.splitlines()) == 1, err
    truncated = tmp_path / "truncated.vigilpack"
    truncated.write_bytes(good[:-100])
    assert await import_pack(env_b, truncated) == 1
    assert "signature does not verify" in capsys.readouterr().err

    # Addressed to a third school (Larkspur trusts its card; Oakfield is not it).
    third = SchoolKeys.generate("Birchwood High")
    third_card = tmp_path / "birchwood.card"
    third_card.write_text(third.card.to_json())
    assert await vigil(env_a, "trust", str(third_card)) == 0
    elsewhere = tmp_path / "elsewhere.vigilpack"
    assert await export(env_a, elsewhere, to="Birchwood High") == 0
    capsys.readouterr()
    assert await import_pack(env_b, elsewhere) == 1
    assert "addressed to Birchwood High" in capsys.readouterr().err

    # From a school Oakfield does not trust (a well-made pack, addressed to Oakfield).
    oakfield = read_card((tmp_path / "oakfield.card").read_text())
    stranger = tmp_path / "stranger.vigilpack"
    stranger.write_bytes(
        seal_pack(
            b"not even a record",
            sender=SchoolKeys.generate(SENDER),  # claims Larkspur's name, not its keys
            recipient=oakfield,
            pack_id="f" * 32,
            at=dt.datetime.now(dt.UTC),
        )
    )
    assert await import_pack(env_b, stranger) == 1
    assert "does not trust" in capsys.readouterr().err

    assert await counts(receiver) == before
    async with receiver.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(TransferImport)) == 0
        refusals = (
            await db.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "transfer.import", AuditEvent.outcome == "refused"
                )
            )
        ).all()
    assert len(refusals) == 8


async def test_an_unreceipted_transfer_is_nudged_to_the_dsls_after_five_school_days(
    schools: Schools, tmp_path: Path
) -> None:
    sender, _, env_a, _env_b = schools
    pack = tmp_path / "pack.vigilpack"
    assert await export(env_a, pack) == 0
    async with sender.server.factory() as db:
        transfer = await db.scalar(select(Transfer))
    assert transfer is not None
    due = WORKING.add_working_days(transfer.created_at, 5)
    # Four school days on: nothing yet.
    move_clock(sender, WORKING.next_working_time(WORKING.add_working_days(transfer.created_at, 4)))
    assert await sender.server.transfer_job.run() == 0
    move_clock(sender, WORKING.next_working_time(due + dt.timedelta(minutes=1)))
    assert await sender.server.transfer_job.run() == 1
    assert await sender.server.transfer_job.run() == 0  # once
    await sender.delivered()
    [dm] = sender.standin.messages_for_user(DSL)[-1:]
    assert dm["text"].startswith(
        f"A record transfer (T{transfer.id}) to {RECEIVER} has not been receipted after "
        "5 school days"
    )
    assert not [m for m in sender.standin.messages_for_user(TEACHER) if "transfer" in m["text"]]
    pupil = await pupil_by_upn(sender, PUPIL_4B)
    for call in sender.standin.calls_to("chat.postMessage"):
        sent = json.dumps(call.params)
        assert pupil.surname not in sent and pupil.forename not in sent
        assert PUPIL_4B not in sent and "hungry" not in sent


async def test_the_web_button_gives_key_holders_a_pack_and_others_the_404(
    schools: Schools, tmp_path: Path
) -> None:
    sender, receiver, _, env_b = schools
    pupil = await pupil_by_upn(sender, PUPIL_4B)
    async with signed_in(sender, TEACHER_3A) as teacher:
        await teacher.get("/alerts")
        status, body = await teacher.post(f"/pupils/{pupil.id}/transfer", {"to": RECEIVER})
        assert status == 404
    async with sender.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(Transfer)) == 0
    async with signed_in(sender, HEAD) as head:
        status, body = await head.get(f"/pupils/{pupil.id}")
        assert status == 200 and 'id="transfer-form"' in body
        assert f'<option value="{RECEIVER}">' in body
        async with head.http.post(
            f"{sender.server.url}/pupils/{pupil.id}/transfer",
            data={"to": RECEIVER, "csrf": form_field(body, "csrf")},
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["Cache-Control"] == "no-store"
            data = await response.read()
        status, body = await head.post(
            f"/pupils/{pupil.id}/transfer",
            {"to": "Nowhere School", "csrf": form_field(body, "csrf")},
        )
        assert status == 400 and "no trusted school card named" in shown(body)
    exported = await audit_events(sender, "transfer.export")
    assert [e.outcome for e in exported] == ["refused", "ok", "refused"]
    head_row = await staff_member(sender, HEAD)
    assert exported[1].actor_id == head_row.id
    pack = tmp_path / "web.vigilpack"
    pack.write_bytes(data)
    assert await import_pack(env_b, pack) == 0
    async with receiver.server.factory() as db:
        papers = (await db.scalars(select(PaperRecord))).all()
        # Imported by another process (`vigil transfer import`): its records' keys are new.
        await keyring.load_record_keys(db, receiver.server.cipher)
    # The chronology's PDF travels with the record when the server can make PDFs.
    expected = ["Chronology as printed by"] if pdf_support() is None else []
    described = [
        receiver.server.cipher.decrypt(p.description_ct, bind(PaperRecord.description_ct, p.id))[
            :24
        ]
        for p in papers
    ]
    assert described == expected
