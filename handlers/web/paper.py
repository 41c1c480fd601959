"""Scanned paper records (key-holders only): the form on a pupil's chronology sends the
record's date, a short description and its scans as one streamed multipart upload
(`@streamed_upload`: the CSRF token first, then the fields in the form's order, then
the files, each read a piece at a time into its own `Intake`). Refused files and
invalid forms store nothing. A paper record's scans are downloaded from its chronology.
"""

from __future__ import annotations

import datetime as dt

import structlog
from aiohttp import BodyPartReader, web

from handlers.web.deps import DEPS
from handlers.web.files import STORE_DOWN, send_file
from handlers.web.render import not_found, page, zone
from handlers.web.security import UPLOAD, keyholder_only, streamed_upload
from handlers.web.session import visit
from store.db import transaction
from store.documents.intake import Intake, Sealed, TooLarge, clean_name
from store.documents.kinds import Refused
from store.documents.s3 import FileStoreUnavailable
from store.documents.sealing import CHUNK
from store.flows import paper as flows
from store.ids import parse_id

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

FILES_MAX = 10  # scans of one record
FIELD_MAX = 4096  # bytes read of a text field


def _pupil_about(request: web.Request) -> str:
    return f"pupil {request.match_info.get('pupil_id', '')[:20]}"


def _message(request: web.Request, pupil_id: int, text: str, status: int) -> web.Response:
    return page(
        request,
        "message.html",
        status=status,
        heading="Paper record not added",
        text=text,
        link=f"/pupils/{pupil_id}#add-paper",
        link_text="Back to the chronology",
    )


async def _text(part: BodyPartReader) -> str:
    value = b""
    while not part.at_eof() and len(value) <= FIELD_MAX:
        value += await part.read_chunk(FIELD_MAX)
    return value[:FIELD_MAX].decode("utf-8", "replace")


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        return None


@routes.post("/pupils/{pupil_id}/paper")
@keyholder_only(action="paper.add", about=_pupil_about)
@streamed_upload
async def add_paper_record(request: web.Request) -> web.StreamResponse:
    """Add a historic record from the paper files to the pupil's chronology."""
    deps = request.app[DEPS]
    pupil_id = parse_id(request.match_info.get("pupil_id"))
    if pupil_id is None:
        return not_found(request)
    limit = deps.max_upload_bytes
    if (request.content_length or 0) > FILES_MAX * limit + 64 * 1024:
        return _message(request, pupil_id, str(TooLarge(limit)), 413)
    fields: dict[str, str] = {}
    uploads: list[tuple[Sealed, str]] = []
    try:
        reader = request[UPLOAD] if UPLOAD in request else None
        while reader is not None and (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name != "files":
                fields[part.name or ""] = await _text(part)
                continue
            if not part.filename:  # the file field left empty
                continue
            if len(uploads) == FILES_MAX:
                raise Refused(f"At most {FILES_MAX} files for one record.")
            intake = Intake(deps.files, max_bytes=limit)
            while piece := await part.read_chunk(CHUNK):
                intake.feed(piece)
            uploads.append((intake.finish(), clean_name(part.filename)))
    except (TooLarge, Refused) as error:
        for sealed, _ in uploads:
            sealed.spool.discard()
        log.info("web.paper_refused", staff=visit(request).staff.id, pupil=pupil_id)
        return _message(request, pupil_id, str(error), 413 if isinstance(error, TooLarge) else 400)
    draft = flows.PaperDraft(
        on=_date(fields.get("recorded_on", "")),
        description=fields.get("description", ""),
        uploads=uploads,
    )
    added: flows.PaperAdded | flows.PaperRefused | None = None
    committed = False
    try:
        async with transaction(deps.factory) as db:
            added = await flows.add_paper_record(
                db,
                visit=visit(request),
                pupil_id=pupil_id,
                draft=draft,
                store=deps.files,
                today=deps.clock().astimezone(zone(request)).date(),
            )
        committed = True
    except FileStoreUnavailable as error:
        log.warning("web.file_store_unavailable", pupil=pupil_id, error=str(error))
        return _message(request, pupil_id, STORE_DOWN, 503)  # the spools are discarded
    finally:
        if not (committed and isinstance(added, flows.PaperAdded)):  # a failed commit too
            for sealed, _ in uploads:
                sealed.spool.discard()
    if added is None:
        return not_found(request)
    if isinstance(added, flows.PaperRefused):
        return _message(request, pupil_id, " ".join(added.errors.values()), 400)
    log.info("web.paper_added", pupil=added.pupil_id, record=added.record_id, files=len(uploads))
    raise web.HTTPSeeOther(f"/pupils/{added.pupil_id}#entry-paper-{added.record_id}")


@routes.get("/pupils/{pupil_id}/paper/{record_id}/files/{file_id}")
@keyholder_only(action="file.download", about=_pupil_about)
async def download_paper_file(request: web.Request) -> web.StreamResponse:
    """A scan of a paper record, as an attachment (audited)."""
    async with transaction(request.app[DEPS].factory) as db:
        opened = await flows.open_paper_file(
            db,
            visit=visit(request),
            pupil_id=parse_id(request.match_info.get("pupil_id")),
            record_id=parse_id(request.match_info.get("record_id")),
            file_id=parse_id(request.match_info.get("file_id")),
        )
    return await send_file(request, opened, preview=False)
