"""Subject access requests (DESIGN §14): the key-holders' list, opening one from a
pupil's chronology, the review of its redactions, the PDF export and completion.

- `GET /sar` lists the school's requests with their deadline.
- `POST /pupils/{id}/sar` opens one (date received, who asked).
- `GET /sar/{n}` is the review: each redaction in context, the pack as exported.
- `POST /sar/{n}/redactions` adds a phrase; `POST /sar/{n}/redactions/{r}/remove` keeps
  one in the pack.
- `POST /sar/{n}/export` is the redacted pack as a PDF (`handlers.web.pdf.POOL`), never
  cached; `POST /sar/{n}/complete` marks the request answered.

Key-holders only (`@keyholder_only`); every step audited by its flow
(`store.flows.subject_access`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp_jinja2
import structlog
from aiohttp import web

from handlers.web import pdf
from handlers.web.deps import DEPS
from handlers.web.render import formats, not_found, page, pdf_not_made
from handlers.web.security import keyholder_only, retried_with_new_keys
from handlers.web.session import viewer, visit
from store.db import transaction
from store.flows import subject_access as flows
from store.ids import parse_id
from store.messages import deadline_words
from store.subject_access import NEAR_DAYS, REDACTED

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        return None


@routes.get("/sar")
@keyholder_only(action=flows.LIST)
async def requests_page(request: web.Request) -> web.Response:
    async with transaction(request.app[DEPS].factory) as db:
        rows = await flows.list_requests(db, visit=visit(request))
    return page(request, "sar_list.html", rows=rows, near=NEAR_DAYS, deadline=deadline_words)


@routes.post("/pupils/{pupil_id}/sar")
@keyholder_only(action=flows.OPEN)
async def open_request(request: web.Request) -> web.Response:
    form = await request.post()
    pupil_id = parse_id(request.match_info.get("pupil_id"))
    async with transaction(request.app[DEPS].factory) as db:
        opened = await flows.open_request(
            db,
            visit=visit(request),
            pupil_id=pupil_id,
            received_on=_date(form.get("received_on")),
            requester=str(form.get("requester", ""))[:400],
            redact_staff=form.get("redact_staff") == "Y",
        )
    if opened is None:
        return not_found(request)
    if opened.request is None:
        return page(
            request,
            "message.html",
            status=400,
            heading="No subject access request opened",
            text=" ".join(opened.errors.values()),
            link=f"/pupils/{pupil_id}#sar",
            link_text="Back to the pupil",
        )
    log.info("web.sar_opened", staff=viewer(request).id, request=opened.request.id)
    raise web.HTTPSeeOther(f"/sar/{opened.request.id}")


@routes.get("/sar/{request_id}")
@keyholder_only(action=flows.VIEW)
async def review_page(request: web.Request) -> web.Response:
    async with transaction(request.app[DEPS].factory) as db:
        shown = await flows.review(
            db, visit=visit(request), request_id=parse_id(request.match_info.get("request_id"))
        )
    if shown is None:
        return not_found(request)
    return page(
        request,
        "sar.html",
        review=shown,
        sar=shown.request,
        pack=shown.pack,
        redacted=REDACTED,
        deadline=deadline_words,
    )


@routes.post("/sar/{request_id}/redactions")
@keyholder_only(action=flows.ADD)
async def add_redaction(request: web.Request) -> web.Response:
    form = await request.post()
    request_id = parse_id(request.match_info.get("request_id"))
    async with transaction(request.app[DEPS].factory) as db:
        refused = await flows.add_redaction(
            db, visit=visit(request), request_id=request_id, phrase=str(form.get("phrase", ""))
        )
    if refused == "not here":
        return not_found(request)
    if refused:
        return page(
            request,
            "message.html",
            status=400,
            heading="Nothing added",
            text=refused,
            link=f"/sar/{request_id}",
            link_text="Back to the request",
        )
    raise web.HTTPSeeOther(f"/sar/{request_id}#redactions")


@routes.post("/sar/{request_id}/redactions/{redaction_id}/remove")
@keyholder_only(action=flows.REMOVE)
async def remove_redaction(request: web.Request) -> web.Response:
    request_id = parse_id(request.match_info.get("request_id"))
    async with transaction(request.app[DEPS].factory) as db:
        done = await flows.remove_redaction(
            db,
            visit=visit(request),
            request_id=request_id,
            redaction_id=parse_id(request.match_info.get("redaction_id")),
        )
    if not done:
        return not_found(request)
    raise web.HTTPSeeOther(f"/sar/{request_id}#redactions")


@routes.post("/sar/{request_id}/complete")
@keyholder_only(action=flows.COMPLETE)
async def complete(request: web.Request) -> web.Response:
    request_id = parse_id(request.match_info.get("request_id"))
    async with transaction(request.app[DEPS].factory) as db:
        done = await flows.complete(db, visit=visit(request), request_id=request_id)
    if not done:
        return not_found(request)
    raise web.HTTPSeeOther(f"/sar/{request_id}")


def pack_html(request: web.Request, exported: flows.Export) -> str:
    """The printable pack (the PDF's document)."""
    deps = request.app[DEPS]
    return aiohttp_jinja2.render_string(
        "sar_pdf.html",
        request,
        {
            "sar": exported.request,
            "pack": exported.pack,
            "school": exported.school,
            "redactions": exported.redactions,
            "produced_by": viewer(request).name,
            "produced_at": deps.clock(),
            **formats(request),
        },
    )


@routes.post("/sar/{request_id}/export")
@keyholder_only(action=flows.EXPORT)
@retried_with_new_keys
async def export(request: web.Request) -> web.Response:
    request_id = parse_id(request.match_info.get("request_id"))
    async with transaction(request.app[DEPS].factory) as db:
        exported = await flows.export(db, visit=visit(request), request_id=request_id)
    if exported is None:
        return not_found(request)
    try:
        body = await pdf.POOL.make(pack_html(request, exported))
    except (pdf.PdfBusy, pdf.PdfUnavailable) as error:
        if isinstance(error, pdf.PdfUnavailable):
            log.error("web.sar_pdf_unavailable")
        return pdf_not_made(
            request,
            error,
            unavailable="This server cannot make PDFs yet (WeasyPrint needs Pango): tell "
            "the IT technician.",
        )
    log.info("web.sar_export", staff=viewer(request).id, request=exported.request.id)
    name = f"subject-access-{exported.request.id}-{request.app[DEPS].clock():%Y%m%d}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
