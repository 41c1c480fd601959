"""The safeguarding team's pupil pages: find a pupil, and their chronology (page, print
and PDF), filtered by category and dates.

- `GET /pupils?q=` searches the roster by name or UPN.
- `GET /pupils/{id}` is the pupil's chronology; `GET /pupils/{id}/chronology.pdf` is the
  same document as an A4 PDF (WeasyPrint).
- `POST /pupils/{id}/context` sets the pupil's context (CP plan, SEN, social worker...).
- `POST /pupils/{id}/transfer` makes the pupil's transfer pack for a trusted school
  (`store.flows.transfers.export_pack`), downloaded as an attachment, never cached.

Key-holders only (`@keyholder_only`). Every search and chronology is audited by its flow
(`store.flows.pupils`): the pupil's id, never a name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web import pdf
from handlers.web.bodymap import context as bodymap_context
from handlers.web.dates import Dates, read_dates
from handlers.web.deps import DEPS
from handlers.web.render import day, formats, not_found, page, pdf_not_made, when, zone
from handlers.web.security import keyholder_only, one_transaction, retried_with_new_keys
from handlers.web.session import request_db, viewer, visit
from store import pupil_context, reports, transfers
from store.chronology import Chronology
from store.db import transaction
from store.documents.files import previews
from store.flows import pupils as flows
from store.flows import transfers as transfer_flows
from store.flows.pupils import ChronologyAsked
from store.ids import parse_id
from store.pupil_context import SOCIAL_WORKER_MAX, YES_NO
from store.pupils import SEARCH_LIMIT, PupilRow
from store.transfer_format import TransferError

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
routes = web.RouteTableDef()


@routes.get("/pupils")
@keyholder_only(action="pupil.search")
async def pupils(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:100]
    rows: list[PupilRow] = []
    if query:
        async with transaction(request.app[DEPS].factory) as db:
            rows = await flows.search_pupils(db, visit=visit(request), query=query)
    return page(request, "pupils.html", query=query, rows=rows, limit=SEARCH_LIMIT)


@dataclass(frozen=True)
class ChronologyFilter:
    dates: Dates
    categories: list[str]

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
        if self.dates.errors:
            return None, None
        start = reports.local_midnight(self.dates.first, zone) if self.dates.first else None
        end = (
            reports.local_midnight(self.dates.last + dt.timedelta(days=1), zone)
            if self.dates.last
            else None
        )
        return start, end

    @property
    def range_text(self) -> str:
        first, last = (None, None) if self.dates.errors else (self.dates.first, self.dates.last)
        if first and last:
            return f"{day(first)} to {day(last)}"
        if first:
            return f"From {day(first)}"
        if last:
            return f"Up to {day(last)}"
        return "All dates"

    @property
    def range_key(self) -> str:
        first, last = (None, None) if self.dates.errors else (self.dates.first, self.dates.last)
        if not (first or last):
            return "all dates"
        return f"{first.isoformat() if first else ''}..{last.isoformat() if last else ''}"

    @property
    def query_string(self) -> str:
        pairs = [*self.dates.query.items(), *(("category", c) for c in self.categories)]
        return urlencode(pairs)


def read_filter(request: web.Request) -> ChronologyFilter:
    """The chronology's filter: dates, and categories (at most 50, as given)."""
    chosen = [str(c)[:100] for c in dict.fromkeys(request.query.getall("category", []))]
    return ChronologyFilter(read_dates(request.query), chosen[:50])


async def _chronology(
    request: web.Request, *, action: str, db: AsyncSession | None = None
) -> dict[str, Any] | None:
    """The chronology in the path, filtered as asked, audited as `action` (or the refusal
    is): what its page and its PDF show; None if there is no such pupil here. Read in
    `db` if given (the page's, `@one_transaction`), else in a transaction of its own."""
    wanted = read_filter(request)
    start, end = wanted.bounds(zone(request))
    asked = ChronologyAsked(
        parse_id(request.match_info.get("pupil_id")),
        wanted.categories,
        start,
        end,
        wanted.range_key,
    )
    if db is None:
        async with transaction(request.app[DEPS].factory) as own:
            shown = await flows.view_chronology(
                own, visit=visit(request), asked=asked, action=action
            )
    else:
        shown = await flows.view_chronology(db, visit=visit(request), asked=asked, action=action)
    if shown is None:
        return None
    found = shown.chronology
    offered = [
        c.name
        for c in request.app[DEPS].school_of(viewer(request).workspace_id).catalogue.categories
    ] + found.categories_seen
    return {
        "found": found,
        "pupil": found.pupil,
        "entries": found.entries,
        "wanted": wanted,
        "errors": wanted.dates.errors,
        "offered": list(dict.fromkeys(offered)),
        "school": shown.school,
        "produced_by": viewer(request).name,
        "produced_at": request.app[DEPS].clock(),
        "max_upload_mb": request.app[DEPS].max_upload_bytes // (1024 * 1024),
        "body_map_figure": bodymap_context(),
        "context": found.context,
        "sen_levels": pupil_context.SEN_LEVELS,
        "flag_labels": [(flag, pupil_context.LABELS[flag]) for flag in YES_NO],
        "social_worker_max": SOCIAL_WORKER_MAX,
        "pdf_url": f"/pupils/{found.pupil.id}/chronology.pdf"
        + (f"?{wanted.query_string}" if wanted.query_string else ""),
    }


@routes.get("/pupils/{pupil_id}")
@one_transaction
@keyholder_only(action="chronology.view")
async def chronology_page(request: web.Request) -> web.Response:
    db = request_db(request)  # the session's transaction: read, audited, committed once
    context = await _chronology(request, action="chronology.view", db=db)
    if context is None:
        return not_found(request)
    cards = await transfers.trusted_cards(db, workspace_id=viewer(request).workspace_id)
    context["transfer_schools"] = [card.name for card in cards]
    log.info(
        "web.chronology",
        staff=viewer(request).id,
        pupil=context["pupil"].id,
        entries=len(context["entries"]),
    )
    return page(request, "chronology.html", **context)


@routes.get("/pupils/{pupil_id}/chronology.pdf")
@keyholder_only(action="chronology.pdf")
async def chronology_pdf(request: web.Request) -> web.Response:
    context = await _chronology(request, action="chronology.pdf")
    if context is None:
        return not_found(request)
    pupil_id = context["pupil"].id
    started = asyncio.get_running_loop().time()
    try:
        body = await _pdf_of(request, context)
    except (pdf.PdfBusy, pdf.PdfUnavailable) as error:
        if isinstance(error, pdf.PdfBusy):
            log.warning("web.chronology_pdf_busy", staff=viewer(request).id)
        else:
            log.error("web.chronology_pdf_unavailable")
        return pdf_not_made(
            request,
            error,
            unavailable="This server cannot make PDFs yet (WeasyPrint needs Pango). "
            "Use Print on the chronology page instead, and tell the IT technician.",
        )
    log.info(
        "web.chronology_pdf",
        staff=viewer(request).id,
        pupil=pupil_id,
        entries=len(context["entries"]),
        ms=round((asyncio.get_running_loop().time() - started) * 1000),
    )
    name = f"chronology-{pupil_id}-{request.app[DEPS].clock():%Y%m%d}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@dataclass(frozen=True)
class _Whole:
    """The filter of a chronology printed whole (a transfer's): every date and category."""

    categories: tuple[str, ...] = ()
    range_text: str = "All dates"


def chronology_pdf_html(
    found: Chronology,
    *,
    school: str,
    produced_by: str,
    produced_at: dt.datetime,
    zone: ZoneInfo,
    previews: dict[int, str],
) -> str:
    """The whole chronology's printable document, without a request (`vigil transfer
    export` puts its PDF in the pack): the same template as the PDF download."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True),
    )
    return environment.get_template("chronology_pdf.html").render(
        found=found,
        pupil=found.pupil,
        entries=found.entries,
        wanted=_Whole(),
        school=school,
        produced_by=produced_by,
        produced_at=produced_at,
        body_map_figure=bodymap_context(),
        context=found.context,
        previews=previews,
        when=functools.partial(when, zone=zone),
        day=day,
    )


async def _pdf_of(request: web.Request, context: dict[str, Any]) -> bytes:
    """The chronology's PDF (PdfBusy, PdfUnavailable as `pdf.POOL.make`)."""
    deps = request.app[DEPS]
    shown_files = [f for entry in context["entries"] for f in entry.files]
    context["previews"] = await previews(
        deps.factory, configured=deps.files, cipher=deps.cipher, views=shown_files
    )
    html = aiohttp_jinja2.render_string(
        "chronology_pdf.html", request, {**context, **formats(request)}
    )
    return await pdf.POOL.make(html)


@routes.post("/pupils/{pupil_id}/transfer")
@keyholder_only(action="transfer.export")
@retried_with_new_keys
async def transfer_pack(request: web.Request) -> web.Response:
    """The pupil's transfer pack for the trusted school chosen, with the chronology's PDF
    in it when this server can make PDFs; a refusal is shown, and audited."""
    form = await request.post()
    to = str(form.get("to", ""))[:200]
    context = await _chronology(request, action="transfer.chronology")
    if context is None:
        return not_found(request)
    try:
        chronology_pdf: bytes | None = await _pdf_of(request, context)
    except (pdf.PdfBusy, pdf.PdfUnavailable):
        chronology_pdf = None  # the record itself is the pack's content; the PDF a copy
    deps, staff = request.app[DEPS], viewer(request)
    try:
        async with transaction(deps.factory) as db:
            exported = await transfer_flows.export_pack(
                db,
                factory=deps.factory,
                store=deps.files,
                cipher=deps.cipher,
                actor=staff,
                pupil_id=context["pupil"].id,
                to=to,
                chronology_pdf=chronology_pdf,
                now=deps.clock(),
            )
    except TransferError as error:
        async with transaction(deps.factory) as db:
            transfer_flows.refused(
                db,
                action=transfer_flows.EXPORT,
                actor=staff,
                workspace_id=staff.workspace_id,
                reason=str(error),
            )
        return page(
            request,
            "message.html",
            status=400,
            heading="No transfer pack made",
            text=str(error),
        )
    log.info("web.transfer_pack", staff=staff.id, pupil=context["pupil"].id)
    return web.Response(
        body=exported.pack,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
            "Cache-Control": "no-store",
        },
    )


@routes.post("/pupils/{pupil_id}/context")
@keyholder_only(action="pupil.context")
async def edit_context(request: web.Request) -> web.Response:
    """The key-holder's edit of the pupil's context: every flag as the form gives it."""
    form = await request.post()
    values: dict[str, Any] = {flag: form.get(flag) == "Y" for flag in YES_NO}
    sen = pupil_context.sen_level(str(form.get("sen", "")))
    if sen is not None:
        values["sen"] = sen
    worker = " ".join(str(form.get("social_worker", "")).split())
    values["social_worker"] = "".join(c for c in worker if c.isprintable())[:SOCIAL_WORKER_MAX]
    pupil_id = parse_id(request.match_info.get("pupil_id"))
    async with transaction(request.app[DEPS].factory) as db:
        changed = await flows.edit_context(
            db, visit=visit(request), pupil_id=pupil_id, values=values
        )
    if changed is None:
        return not_found(request)
    log.info("web.pupil_context", staff=viewer(request).id, pupil=pupil_id, flags=len(changed))
    raise web.HTTPSeeOther(f"/pupils/{pupil_id}#context")
