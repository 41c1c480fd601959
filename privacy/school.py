"""`vigil privacy-check`: a school's own database, read without changing it.

Every pupil's full name and every stored text (decrypted with the configured key) are
looked for in a raw dump of every table, and in any log files named. Every stored file's
name and samples of its content (`privacy.files`) are looked for in the tables and in
the directory or S3 store, if `VIGIL_FILES_URL` names one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.settings import Settings
from bot.startup import S3_ERRORS, first_line
from privacy.files import (
    directory_of,
    file_values,
    search_database_bytes,
    search_directory,
    search_s3,
)
from privacy.matching import (
    MIN_TEXT,
    PUPILS_TABLE,
    WINDOW,
    Matcher,
    Needle,
    adult_name_needles,
    date_of_birth_needles,
    name_needles,
    normalise,
    reference_needles,
    text_needles,
    upn_needles,
    word_needles,
)
from privacy.report import Finding, PrivacyCheckError, Report
from privacy.sources import (
    read_only,
    search_database,
    search_log_file,
    search_sqlite_file,
    stream_rows,
    table_shapes,
)
from store import keyring
from store.crypto import Binding, Cipher, DecryptionError, bind
from store.db import create_engine, is_sqlite
from store.documents.s3 import FileStoreUnavailable, S3Store
from store.documents.storage import open_store
from store.encrypted import ENCRYPTED_COLUMNS, primary_key
from store.models import Pupil, PupilContextChange, PupilDetails, Referral


async def check_school(settings: Settings, *, log_files: Sequence[Path] = ()) -> Report:
    """Search the configured database (read-only) and `log_files` for every pupil's full
    name outside the pupils table and for every stored text in plain text anywhere."""
    _check_inputs(settings, log_files)
    url = settings.database_url
    cipher = Cipher(settings.data_key or "")
    directory = directory_of(settings.files_url)
    s3 = _s3_store(settings)
    engine = create_engine(url)
    try:
        async with read_only(engine) as connection:
            if PUPILS_TABLE not in {s.name for s in await table_shapes(connection)}:
                raise PrivacyCheckError("this is not a Vigil database (no pupils table)")
            try:
                await keyring.load_data_keys(connection, cipher, create=False)
            except keyring.KeyUnavailable as error:
                raise PrivacyCheckError(str(error)) from None
            values = await _school_values(connection, cipher)
            documents = await file_values(connection, cipher, directory, s3)
            report = values.report()
            report.searched.files = documents.files
            if documents.files:
                report.looked_for += (
                    f"; and the name and samples of the content of each of {documents.files} "
                    "stored files (allowed nowhere in plain text)"
                )
            for location, count in documents.unreadable.items():
                unreadable = Finding("database", "file VIGIL_DATA_KEY cannot open", location)
                report.findings[unreadable] += count
            matcher = Matcher([*values.needles, *documents.names])
            await search_database(connection, matcher, report, words=Matcher(values.words))
            if is_sqlite(url):  # and the file itself, as a copy of it would show it
                search_sqlite_file(Path(str(make_url(url).database)), matcher, report)
            await search_database_bytes(connection, documents, report)
        if s3 is not None:
            report.searched.store_files = await search_s3(s3, documents, matcher, report)
    except (*S3_ERRORS, FileStoreUnavailable) as error:
        where = f"{settings.files_url} at {settings.s3_endpoint_url or 'AWS'}"
        raise PrivacyCheckError(
            f"cannot read the file store {where} ({first_line(error)}): check "
            "VIGIL_S3_ENDPOINT_URL and the AWS credentials"
        ) from None
    finally:
        await engine.dispose()
        if s3 is not None:
            await s3.close()
    if directory is not None and directory.is_dir():
        report.searched.store_files = search_directory(directory, documents, matcher, report)
    for path in log_files:
        search_log_file(path, matcher, report)
    return report


def _s3_store(settings: Settings) -> S3Store | None:
    """The S3 store `VIGIL_FILES_URL` names, if it names one."""
    store = open_store(
        settings.files_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
    )
    return store if isinstance(store, S3Store) else None


def _check_inputs(settings: Settings, log_files: Sequence[Path]) -> None:
    """Refuse at once what cannot be checked (and never create an empty SQLite file)."""
    settings.require("data_key")
    for path in log_files:
        if not path.is_file():
            raise PrivacyCheckError(f"no log file at {path}")
    if is_sqlite(settings.database_url):
        database = make_url(settings.database_url).database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise PrivacyCheckError(f"no SQLite database at {database}")


@dataclass
class _SchoolValues:
    """What the school's database says must not be found, and what could not be read."""

    needles: list[Needle] = field(default_factory=list)
    words: dict[Needle, None] = field(default_factory=dict)  # for the search tables
    pupils: int = 0
    stored: int = 0
    social_workers: int = 0
    references: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)

    def report(self) -> Report:
        """An empty report saying what is looked for (and what could not be decrypted)."""
        report = Report(
            title="Vigil privacy check: the school's database (read only; nothing changed)",
            looked_for=(
                f"the full names, dates of birth (in their common forms) and UPNs of "
                f"{self.pupils} pupils and {self.references} agencies' references (stored "
                f"only encrypted; allowed nowhere in plain text), "
                f"and {self.stored} stored narratives, reasons and action texts decrypted "
                f"with VIGIL_DATA_KEY (those of {MIN_TEXT} or more characters, by their "
                f"opening and closing {WINDOW} characters; allowed nowhere in plain text), "
                f"and {self.social_workers} social workers' names (stored only encrypted; "
                "allowed nowhere in plain text)"
            ),
        )
        for location, count in self.unreadable.items():
            finding = Finding("database", "text VIGIL_DATA_KEY cannot decrypt", location)
            report.findings[finding] += count
        if self.unreadable and not self.stored:
            report.notes.append(
                "VIGIL_DATA_KEY decrypts none of the stored texts: is it this database's key?"
            )
        return report

    def add_marks(self, cipher: Cipher, token: bytes, *, kind: str, where: Binding) -> None:
        """A body map's notes (its marks are stored together, as JSON)."""
        try:
            marks = json.loads(cipher.decrypt(token, where))
        except (DecryptionError, ValueError):
            self.unreadable["body_maps.marks_ct"] += 1
            return
        for mark in marks:
            note = str(mark.get("note", "")) if isinstance(mark, dict) else ""
            if note:
                self.stored += 1
                self.needles += text_needles(note, kind=kind)

    def add_text(
        self, cipher: Cipher, token: bytes, *, kind: str, location: str, where: Binding
    ) -> None:
        try:
            plain = cipher.decrypt(token, where)
        except DecryptionError:
            self.unreadable[location] += 1
            return
        self.stored += 1
        self.needles += text_needles(plain, kind=kind)
        self.words.update(dict.fromkeys(word_needles(plain, kind="a stored text")))


def _name(column: Any) -> str:
    return f"{column.class_.__tablename__}.{column.key}"


ADULTS, SOCIAL_WORKERS = "incident_adults.name_ct", "pupil_context_changes.value_ct"
#: How the check names each column of `store.encrypted.ENCRYPTED_COLUMNS` in a finding:
#: (what, the row's kind); a row kind of None is not looked for (keys and secrets, and
#: the current social worker, whose name is also in the dated history).
SEALED: dict[str, tuple[str, str | None]] = {
    "incidents.narrative_ct": ("narrative", "incident"),
    "incidents.parents_reason_ct": ("parents' reason", "incident"),
    "incident_adults.name_ct": ("typed adult's name", "incident"),
    "incident_actions.text_ct": ("action text", "action"),
    "paper_records.description_ct": ("description", "paper record"),
    "body_maps.marks_ct": ("body-map note", "body map"),
    "pupil_context_changes.value_ct": ("social worker's name", "pupil context change"),
    "pupil_context.social_worker_ct": ("social worker's name", None),
    "totp_enrolments.secret_ct": ("authenticator key", None),
    "transfer_keys.receive_ct": ("transfer key", None),
    "transfer_keys.sign_ct": ("transfer signing key", None),
    "search_keys.key_ct": ("search key", None),
    # Looked for above, in their own forms (names, dates of birth, UPNs, references).
    "pupils.details_ct": ("pupil's details", None),
    "referrals.reference_ct": ("agency reference", None),
    "retention_holds.reason_ct": ("legal hold's reason", "retention hold"),
    "subject_access_requests.requester_ct": ("who asked", "subject access request"),
    "sar_redactions.phrase_ct": ("redacted phrase", "redaction"),
    "slack_installations.bot_token_ct": ("bot token", None),
}


async def _school_values(connection: AsyncConnection, cipher: Cipher) -> _SchoolValues:
    """Every pupil's full names, and every stored text decrypted."""
    values = _SchoolValues()
    names = select(Pupil.id, Pupil.details_ct)
    async for pupil_id, token in stream_rows(connection, names):
        try:
            details = PupilDetails.from_sealed_text(
                cipher.decrypt(token or b"", bind(Pupil.details_ct, pupil_id))
            )
        except (DecryptionError, ValueError):
            values.unreadable["pupils.details_ct"] += 1
            continue
        values.pupils += 1
        label = f"pupil id {pupil_id}"
        values.needles += name_needles(
            forename=details.forename,
            surname=details.surname,
            preferred_name=details.preferred_name,
            label=label,
            whole_only=True,
        )
        values.needles += date_of_birth_needles(details.date_of_birth, label=label)
        values.needles += upn_needles(details.upn, label=label)
    references = select(Referral.id, Referral.reference_ct).where(
        Referral.reference_ct.is_not(None)
    )
    async for referral_id, token in stream_rows(connection, references):
        try:
            reference = cipher.decrypt(token, bind(Referral.reference_ct, referral_id))
        except DecryptionError:
            values.unreadable["referrals.reference_ct"] += 1
            continue
        values.references += 1
        values.needles += reference_needles(
            reference, kind=f"agency reference of referral id {referral_id}"
        )
    seen: set[str] = set()  # social workers' names, each looked for once
    for column in ENCRYPTED_COLUMNS:
        what, row_name = SEALED[_name(column)]
        if row_name is None:  # keys and secrets: nothing a person wrote
            continue
        location = _name(column)
        rows = select(primary_key(column), column).where(column.is_not(None))
        if location == SOCIAL_WORKERS:
            rows = rows.add_columns(PupilContextChange.pupil_id)
        async for row_id, token, *more in stream_rows(connection, rows):
            where = bind(column, row_id)
            kind = f"{what} of {row_name} id {row_id}"
            if location == "body_maps.marks_ct":
                values.add_marks(cipher, token, kind=kind, where=where)
                continue
            if location not in (ADULTS, SOCIAL_WORKERS):
                values.add_text(cipher, token, kind=kind, location=location, where=where)
                continue
            try:
                plain = cipher.decrypt(token, where)
            except DecryptionError:
                values.unreadable[location] += 1
                continue
            if location == ADULTS:
                values.stored += 1
                values.needles += adult_name_needles(plain, kind=kind)
            else:
                # Every social worker's name ever recorded (the history holds them all).
                name = normalise(plain).strip()
                if name and name not in seen:
                    seen.add(name)
                    values.social_workers += 1
                    values.needles.append(Needle(name, f"{what} (of pupil id {more[0]})"))
    return values
