"""`vigil transfer keys|trust|export|import|receipt`: a pupil's record to and from another
school (the steps are `store.flows.transfers`; the format docs/transfer-format.md).

Each command is one transaction: a refusal (a tampered or wrongly addressed pack, an
untrusted sender, a replay...) rolls it back, is audited in a transaction of its own,
and is printed as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import load_catalogue, load_school, load_schools
from bot.roster_cli import _workspace_id
from bot.settings import ConfigError, Settings
from bot.startup import StartupError, database_problem
from handlers.web.pdf import pdf_support, render_pdf
from handlers.web.pupils import chronology_pdf_html
from store import chronology, keyring, transfers, workspaces
from store.crypto import Cipher
from store.db import (
    DATABASE_ERRORS,
    SessionFactory,
    create_engine,
    session_factory,
    transaction,
)
from store.documents.files import previews
from store.documents.storage import open_store
from store.flows import transfers as flows
from store.models import Staff, utcnow
from store.transfer_format import TransferError, read_card


def _write(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner (a pack or receipt names no one in clear,
    but is still the school's business)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(data)


async def _chronology_pdf(
    session: AsyncSession,
    factory: SessionFactory,
    settings: Settings,
    cipher: Cipher,
    actor: Staff,
    *,
    upn: str,
    now: dt.datetime,
) -> bytes | None:
    """The pupil's whole chronology as the web view prints it, for the pack (None when
    this machine cannot make PDFs, or there is no such pupil: the flow says so)."""
    pupil = await transfers.pupil_by_upn(
        session, workspace_id=actor.workspace_id, cipher=cipher, upn=upn
    )
    if pupil is None or pdf_support() is not None:
        return None
    found = await chronology.chronology(
        session,
        workspace_id=actor.workspace_id,
        pupil_id=pupil.id,
        cipher=cipher,
        now=now,
        viewer=actor,
    )
    if found is None:
        return None
    base = load_school(settings)
    schools = load_schools(settings, base, load_catalogue(settings, base))
    await schools.reload(session)
    config = schools.config(actor.workspace_id)
    store = open_store(settings.files_url)
    views = [f for entry in found.entries for f in entry.files]
    html = chronology_pdf_html(
        found,
        school=await workspaces.school_name(session, workspace_id=actor.workspace_id),
        produced_by=actor.name,
        produced_at=now,
        zone=config.working_time.zone,
        previews=await previews(factory, configured=store, cipher=cipher, views=views),
    )
    return await asyncio.to_thread(render_pdf, html)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    return path.read_bytes()


async def run_transfer(settings: Settings, *, args: argparse.Namespace) -> int:
    """Run one `vigil transfer` command."""
    if not settings.data_key:
        raise ConfigError("VIGIL_DATA_KEY is not set: the school's keys are stored under it")
    cipher = Cipher(settings.data_key)
    engine = create_engine(settings.database_url)
    factory = session_factory(engine)
    try:
        workspace_id = await _workspace_id(factory, None, team=args.team)
        actor: Staff | None = None
        actor_id: int | None = None
        try:
            async with transaction(factory) as session:
                await keyring.ensure_data_key(session, cipher)  # what the record is sealed with
                if getattr(args, "by", None):
                    actor = await session.scalar(
                        select(Staff).where(
                            Staff.workspace_id == workspace_id,
                            Staff.email == args.by.strip().lower(),
                        )
                    )
                    if actor is None:
                        raise TransferError(f"{args.by} is not on this school's staff list")
                    actor_id = actor.id
                message = await _run(args, session, factory, settings, cipher, workspace_id, actor)
        except TransferError as error:
            async with transaction(factory) as session:
                flows.refused(
                    session,
                    action=f"transfer.{args.transfer_command}",
                    actor=await session.get(Staff, actor_id) if actor_id else None,
                    workspace_id=workspace_id,
                    reason=str(error),
                )
            print(f"vigil: refused: {error} (nothing imported or changed)", file=sys.stderr)
            return 1
    except DATABASE_ERRORS as error:
        raise StartupError(database_problem(error, settings.database_url)) from None
    finally:
        await engine.dispose()
    print(message)
    return 0


async def _run(
    args: argparse.Namespace,
    session: AsyncSession,
    factory: SessionFactory,
    settings: Settings,
    cipher: Cipher,
    workspace_id: int,
    actor: Staff | None,
) -> str:
    command = args.transfer_command
    now = utcnow()
    if command == "keys":
        card, made = await flows.make_keys(
            session,
            workspace_id=workspace_id,
            name=args.name,
            cipher=cipher,
        )
        if args.out:
            _write(args.out, card.to_json().encode("utf-8"))
        where = f"; card written to {args.out}" if args.out else ""
        state = "Made" if made else "Kept"
        return (
            f"{state} the transfer keys of {card.name} (fingerprint {card.fingerprint}){where}. "
            "Give the card to schools that send records here; check the fingerprint with them."
        )
    if command == "trust":
        card = read_card(_read(args.card).decode("utf-8", errors="replace"))
        added = await flows.trust_card(
            session,
            workspace_id=workspace_id,
            card=card,
        )
        if not added:
            return f"{card.name} ({card.fingerprint}) was already trusted."
        return f"Trusted {card.name} (fingerprint {card.fingerprint})."
    if actor is None and command in ("export", "import"):
        raise TransferError("say which key-holder is acting: --by EMAIL")
    if command == "export":
        assert actor is not None
        chronology_pdf = await _chronology_pdf(
            session, factory, settings, cipher, actor, upn=args.upn, now=now
        )
        exported = await flows.export_pack(
            session,
            factory=factory,
            store=open_store(settings.files_url),
            cipher=cipher,
            actor=actor,
            upn=args.upn,
            to=args.to,
            chronology_pdf=chronology_pdf,
            now=now,
        )
        _write(args.out, exported.pack)
        return (
            f"Wrote {args.out}: pack {exported.pack_id}, {exported.concerns} concerns, "
            f"encrypted to {exported.to}. Send it to them; the transfer closes when their "
            "receipt is imported (`vigil transfer receipt FILE`)."
        )
    if command == "import":
        assert actor is not None
        imported = await flows.import_pack(
            session,
            store=open_store(settings.files_url),
            cipher=cipher,
            actor=actor,
            pack=_read(args.file),
            now=now,
        )
        receipt_path = args.receipt_out or args.file.with_suffix(".receipt")
        _write(receipt_path, imported.receipt)
        numbers = ", ".join(f"#{n}" for n in imported.numbers) or "none"
        pupil = "a new pupil record" if imported.created_pupil else "the pupil on roll"
        return (
            f"Imported pack {imported.pack_id} from {imported.from_school} into {pupil} "
            f"(id {imported.pupil_id}): concerns {numbers}, {imported.files} files. "
            f"Send the receipt {receipt_path} back to {imported.from_school}."
        )
    transfer = await flows.import_receipt(
        session,
        workspace_id=workspace_id,
        data=_read(args.file),
        now=now,
    )
    return f"Transfer T{transfer.id} to {transfer.to_name} is closed: receipted."
