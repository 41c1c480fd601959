"""Files on an incident: adding one (a streamed multipart upload), downloading one, and
the inline preview of an image.

The upload's CSRF token is its form's first field, checked by the middleware
(`@streamed_upload`); the file is then read from the network a piece at a time into
`store.documents.intake.Intake`, which refuses it as soon as it is too large or not a
kind Vigil keeps, and only an accepted file reaches `store.flows.files.attach`. Logs
carry ids, kinds and sizes only: never a file's name or content.
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from aiohttp import BodyPartReader, web

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.security import SECURITY_HEADERS, UPLOAD, streamed_upload
from handlers.web.session import visit
from store.db import transaction
from store.documents import files as stored
from store.documents.files import OpenedFile
from store.documents.intake import Intake, TooLarge, clean_name
from store.documents.kinds import Refused
from store.documents.s3 import FileStoreUnavailable
from store.documents.sealing import CHUNK, FileIntegrityError
from store.documents.storage import FilesUrlError
from store.flows import files as flows
from store.ids import parse_id, parse_number

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

MULTIPART_SLACK = 64 * 1024  # the form's other fields and boundaries, beyond the file
STORE_DOWN = (
    "The file store did not answer, so nothing was attached. Try again in a minute; if it "
    "keeps happening, tell the person who looks after Vigil."
)


def _number(request: web.Request) -> int | None:
    return parse_number(request.match_info.get("number"))


def _refused(request: web.Request, number: int, text: str, status: int) -> web.Response:
    return page(
        request,
        "message.html",
        status=status,
        heading="File not attached",
        text=text,
        link=f"/incidents/{number}#files",
        link_text=f"Back to concern #{number}",
    )


async def _audit_refusal(request: web.Request, number: int, why: str) -> None:
    async with transaction(request.app[DEPS].factory) as db:
        await flows.upload_refused(db, visit=visit(request), number=number, why=why)


@routes.post("/incidents/{number}/files")
@streamed_upload
async def add_file(request: web.Request) -> web.StreamResponse:
    """Attach a file to the incident: sniffed, cleaned, sealed and stored, or refused."""
    deps = request.app[DEPS]
    asking = visit(request)
    async with transaction(deps.factory) as db:
        number = await flows.may_attach(db, visit=asking, number=_number(request))
    if number is None:
        return not_found(request)
    limit = deps.max_upload_bytes
    if (request.content_length or 0) > limit + MULTIPART_SLACK:
        await _audit_refusal(request, number, "too large")
        log.info("web.file_refused", staff=asking.staff.id, number=number, why="too large")
        return _refused(request, number, str(TooLarge(limit)), 413)
    part = await request[UPLOAD].next() if UPLOAD in request else None
    action_id = None
    if isinstance(part, BodyPartReader) and part.name == "action":  # the form's order
        raw = b""
        while not part.at_eof() and len(raw) <= 64:
            raw += await part.read_chunk(64)
        action_id = parse_id(raw.decode("ascii", "replace"))
        if raw.strip() and action_id is None:
            return _refused(request, number, "That action is not on this concern.", 400)
        part = await request[UPLOAD].next()
    if not isinstance(part, BodyPartReader) or part.name != "file" or not part.filename:
        return _refused(request, number, "Choose a file to attach.", 400)
    intake = Intake(deps.files, max_bytes=limit)
    try:
        while piece := await part.read_chunk(CHUNK):
            intake.feed(piece)
        sealed = intake.finish()
    except TooLarge as error:
        await _audit_refusal(request, number, "too large")
        log.info("web.file_refused", staff=asking.staff.id, number=number, why="too large")
        return _refused(request, number, str(error), 413)
    except Refused as error:
        await _audit_refusal(request, number, "not an accepted kind")
        log.info("web.file_refused", staff=asking.staff.id, number=number, why="kind")
        return _refused(request, number, str(error), 400)
    except BaseException:
        intake.discard()
        raise
    try:
        async with transaction(deps.factory) as db:
            attached = await flows.attach(
                db,
                visit=asking,
                number=number,
                sealed=sealed,
                name=clean_name(part.filename),
                store=deps.files,
                action_id=action_id,
            )
    except FileStoreUnavailable as error:
        sealed.spool.discard()
        log.warning("web.file_store_unavailable", staff=asking.staff.id, error=str(error))
        return _refused(request, number, STORE_DOWN, 503)
    except BaseException:
        sealed.spool.discard()
        raise
    if attached is None:
        return not_found(request)
    if isinstance(attached, flows.AttachRefused):
        return _refused(request, attached.number, attached.message, 400)
    log.info(
        "web.file_added",
        staff=asking.staff.id,
        incident=attached.incident_id,
        file=attached.file_id,
        kind=sealed.kind.value,
        size=sealed.size,
    )
    raise web.HTTPSeeOther(f"/incidents/{attached.number}#file-{attached.file_id}")


def _disposition(kind: str, name: str) -> str:
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _send(request: web.Request, *, preview: bool) -> web.StreamResponse:
    async with transaction(request.app[DEPS].factory) as db:
        opened = await flows.open_for(
            db,
            visit=visit(request),
            number=_number(request),
            file_id=parse_id(request.match_info.get("file_id")),
            preview=preview,
        )
    return await send_file(request, opened, preview=preview)


async def send_file(
    request: web.Request, opened: OpenedFile | flows.Damaged | None, *, preview: bool
) -> web.StreamResponse:
    """Stream an opened file (decrypted chunk by chunk), or the 404 or integrity page."""
    deps = request.app[DEPS]
    if opened is None:
        return not_found(request)
    if isinstance(opened, flows.Damaged):
        return page(
            request,
            "message.html",
            status=500,
            heading="This file cannot be opened",
            text="It failed its integrity check: what is stored is not the file that was "
            "attached here. Nothing was shown. Tell the person who looks after Vigil.",
        )
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": opened.media_type,
            "Content-Disposition": _disposition("inline" if preview else "attachment", opened.name),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.content_length = opened.row.size
    chunks = stored.plaintext(deps.factory, configured=deps.files, opened=opened)
    try:
        first = await anext(chunks)  # a damaged first chunk still gets a page
    except FilesUrlError:
        log.error("web.file_store_missing", file=opened.row.id, storage=opened.row.storage)
        return page(
            request,
            "message.html",
            status=503,
            heading="This file cannot be opened here",
            text="It is kept in a file store this server is not configured for "
            "(VIGIL_FILES_URL). Tell the person who looks after Vigil.",
        )
    except FileIntegrityError:
        return page(
            request,
            "message.html",
            status=500,
            heading="This file cannot be opened",
            text="It failed its integrity check. Nothing was shown.",
        )
    except FileStoreUnavailable as error:
        log.warning("web.file_store_unavailable", file=opened.row.id, error=str(error))
        return page(
            request,
            "message.html",
            status=503,
            heading="This file cannot be opened just now",
            text="The file store did not answer. Try again in a minute; if it keeps "
            "happening, tell the person who looks after Vigil.",
        )
    await response.prepare(request)
    await response.write(first)
    try:
        async for piece in chunks:
            await response.write(piece)
    except (FileIntegrityError, FileStoreUnavailable):
        # Headers are sent: cut the connection, so the download is seen to fail.
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


@routes.get("/incidents/{number}/files/{file_id}")
async def download_file(request: web.Request) -> web.StreamResponse:
    """The file, as an attachment (audited)."""
    return await _send(request, preview=False)


@routes.get("/incidents/{number}/files/{file_id}/preview")
async def preview_file(request: web.Request) -> web.StreamResponse:
    """An image shown in the incident's page (audited)."""
    return await _send(request, preview=True)
