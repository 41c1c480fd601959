"""Key-holders' pages: find a pupil, their chronology (page, print, PDF), and reports.

- `GET /pupils?q=` searches the roster by name or UPN.
- `GET /pupils/{id}` is the pupil's chronology, filtered by category and dates;
  `GET /pupils/{id}/chronology.pdf` is the same document as an A4 PDF (WeasyPrint).
- `GET /reports` counts a date range (this term unless chosen); each table downloads at
  `GET /reports/{table}.csv`. `GET /reports/governors` is the counts-only governors'
  report, its tables at `GET /reports/governors/{table}.csv`.

Only key-holders: for anyone else every one of these is the usual 404 page, and the
refusal is audited. Every view and download is audited too, naming the report and the
range (and for a chronology, the pupil's id: never a name). Handlers parse, ask
`store.chronology` / `store.reports`, and render; nothing here writes SQL.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
import io
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web.deps import DEPS, WebDeps
from handlers.web.pages import not_found, when
from handlers.web.render import page
from handlers.web.security import client_ip, current
from store import audit, chronology, reports, workspaces
from store.access import is_keyholder
from store.models import Staff
from store.pupils import SEARCH_LIMIT, PupilRow, find_pupils
from store.reports import CategoryMonths, DateRange
from store.workdays import WorkingTime

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

HERE = Path(__file__).parent
PRINT_CSS = HERE / "static" / "print.css"
PDF_SLOTS = threading.BoundedSemaphore(2)  # PDFs rendered at once (each takes a core)


# -- shared helpers -------------------------------------------------------------------------


def _deps(request: web.Request) -> WebDeps:
    return request.app[DEPS]


def _zone(request: web.Request) -> ZoneInfo:
    return _deps(request).school.working_time.zone


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    zone = _zone(request)
    return page(
        request,
        template,
        when=functools.partial(when, zone=zone),
        day=_day,
        **context,
    )


def _day(value: dt.date | None) -> str:
    return "" if value is None else f"{value.day} {value:%b %Y}"


def _id(raw: str | None) -> int | None:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        return None
    value = int(raw)
    return value if value > 0 else None


async def _refuse(request: web.Request, *, action: str, detail: str) -> web.Response:
    """Not for this person: audit it and answer the one 404 page."""
    deps = _deps(request)
    viewer = current(request).staff
    async with deps.factory() as db, db.begin():
        audit.record(
            db,
            action=action,
            outcome=audit.REFUSED,
            actor=viewer,
            ip=client_ip(request),
            detail=detail,
        )
    log.warning("web.reports_refused", staff=viewer.id, action=action)
    return not_found(request)


def _keyholder(request: web.Request) -> Staff | None:
    viewer = current(request).staff
    return viewer if viewer.active and is_keyholder(viewer.role_set) else None


# -- dates from the query string ---------------------------------------------------------------


@dataclass(frozen=True)
class Dates:
    """The dates typed into a filter: as typed (to show again), as dates, and errors."""

    typed_from: str
    typed_to: str
    first: dt.date | None
    last: dt.date | None
    errors: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        found = {}
        if self.first:
            found["from"] = self.first.isoformat()
        if self.last:
            found["to"] = self.last.isoformat()
        return found


EARLIEST, LATEST = dt.date(1990, 1, 1), dt.date(2100, 12, 31)


def read_dates(query: Any) -> Dates:
    """`from` and `to` (YYYY-MM-DD, inclusive) from a query string, each optional."""
    typed = {k: str(query.get(k, "")).strip()[:20] for k in ("from", "to")}
    found: dict[str, dt.date | None] = {"from": None, "to": None}
    errors: dict[str, str] = {}
    for key, label in (("from", "start"), ("to", "end")):
        if not typed[key]:
            continue
        try:
            day = dt.date.fromisoformat(typed[key])
        except ValueError:
            errors[key] = f"Enter the {label} date as a date, for example 2025-09-01."
            continue
        if EARLIEST <= day <= LATEST:
            found[key] = day
        else:
            errors[key] = f"Enter a {label} date between {EARLIEST.year} and {LATEST.year}."
    first, last = found["from"], found["to"]
    if first and last and last < first:
        errors["to"] = "The end date must be on or after the start date."
    return Dates(typed["from"], typed["to"], first, last, errors)


def report_period(dates: Dates, *, today: dt.date) -> DateRange:
    """The range a report covers: as chosen, else this term (either end may be left out)."""
    term = reports.term_of(today)
    if dates.errors or (dates.first is None and dates.last is None):
        return term
    first = dates.first or reports.term_of(dates.last or today).first
    last = dates.last or max(first, min(today, reports.term_of(first).last))
    if (last - first).days >= reports.LONGEST_RANGE_DAYS:
        last = first + dt.timedelta(days=reports.LONGEST_RANGE_DAYS - 1)
    matching = [
        r for r in (term, reports.previous_term(today)) if (r.first, r.last) == (first, last)
    ]
    return matching[0] if matching else DateRange(first, last)


def _today(request: web.Request) -> dt.date:
    return _deps(request).clock().astimezone(_zone(request)).date()


# -- CSV -------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> str:
    """A cell a spreadsheet shows as text: anything that could start a formula (=, +, -,
    @, tab, carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark (so Excel reads it as UTF-8), every cell safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(v) for v in header])
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv_response(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _month(value: dt.date) -> str:
    return f"{value:%b %Y}"


def category_table(data: CategoryMonths) -> tuple[list[str], list[list[Any]]]:
    header = ["Category", *(_month(m) for m in data.months), "Total"]
    rows: list[list[Any]] = [[r.name, *r.counts, r.total] for r in data.rows]
    rows.append(["All incidents (each counted once)", *data.incidents, data.total])
    return header, rows


def _year_rows(found: Sequence[reports.YearGroupRow]) -> tuple[list[str], list[list[Any]]]:
    return ["Year group", "Incidents (main pupil)"], [[r.year_group, r.incidents] for r in found]


def _referral_rows(
    found: Sequence[reports.OpenReferral], zone: ZoneInfo
) -> tuple[list[str], list[list[Any]]]:
    header = [
        "Concern",
        "Agency",
        "Agency's reference",
        "Referred",
        "Due",
        "Status",
        "Age (days)",
        "Age (working days)",
        "Overdue (working days)",
    ]
    rows = [
        [
            r.number,
            r.agency,
            r.reference or "",
            _local(r.referred_at, zone),
            _local(r.due_at, zone),
            _status(r),
            r.age_days,
            r.age_working_days,
            r.overdue_days if r.overdue else "",
        ]
        for r in found
    ]
    return header, rows


def _status(r: reports.OpenReferral) -> str:
    if r.overdue:
        return "Overdue (no response)"
    return "Responded, not closed" if r.status == "responded" else "Waiting for the agency"


def _alert_rows(found: Sequence[reports.LateAlertsRow]) -> tuple[list[str], list[list[Any]]]:
    header = ["Person", "Alerts received", "Not read within a working day", "Still unread"]
    return header, [[r.name, r.alerts, r.late, r.unread] for r in found]


def _agency_rows(found: Sequence[reports.AgencyRow]) -> tuple[list[str], list[list[Any]]]:
    header = ["Agency", "Referrals made", "Open now", "Overdue now"]
    return header, [[a.agency, a.made, a.open_now, a.overdue_now] for a in found]


def _alert_total_rows(totals: reports.AlertTotals) -> tuple[list[str], list[list[Any]]]:
    header = ["Alerts sent", "Not read within a working day", "Still unread after a working day"]
    return header, [[totals.alerts, totals.late, totals.unread]]


# -- the chart ---------------------------------------------------------------------------------

# Okabe-Ito: told apart with every common kind of colour blindness; grey for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOUR = "#8C8C8C"


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    colour: str
    label: str  # for the segment's <title>


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    total: int  # incidents that month (each once)
    top: float  # y of the top of the stack
    segments: list[Segment]
    show_label: bool  # with many months, every other (or third...) month is labelled
    show_total: bool  # the number above the column, when there is room for it


@dataclass(frozen=True)
class Chart:
    """A stacked column chart of categories by month, drawn by `_report_chart.html` as SVG."""

    width: int
    height: int
    left: int
    base: float  # y of the axis
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    legend: list[tuple[str, str]]  # colour, name
    description: str


def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if top / step <= 5:
            return step
    return 10_000


def build_chart(data: CategoryMonths, *, shown: int = len(PALETTE)) -> Chart:
    """Columns per month, stacked by category: the most frequent six, then the rest."""
    width, height, left, right, top_pad, bottom = 720, 300, 48, 12, 16, 40
    named = data.rows[:shown]
    rest = data.rows[shown:]
    series = [(r.name, r.counts, PALETTE[i]) for i, r in enumerate(named)]
    if rest:
        others = [sum(r.counts[m] for r in rest) for m in range(len(data.months))]
        series.append((f"Other categories ({len(rest)})", others, OTHER_COLOUR))
    stacks = [sum(s[1][m] for s in series) for m in range(len(data.months))]
    highest = max(stacks, default=0) or 1
    step = _nice_step(highest)
    axis_top = step * -(-highest // step)
    base = float(height - bottom)
    scale = (base - top_pad) / axis_top
    slot = (width - left - right) / max(1, len(data.months))
    bar_width = min(56.0, slot * 0.6)
    every = -(-len(data.months) // 12)  # label at most twelve months
    bars = []
    for m, month in enumerate(data.months):
        x = left + slot * m + (slot - bar_width) / 2
        y = base
        segments = []
        for name, counts, colour in series:
            count = counts[m]
            if not count:
                continue
            h = count * scale
            y -= h
            segments.append(Segment(round(y, 1), round(h, 1), colour, f"{name}: {count}"))
        bars.append(
            Bar(
                round(x, 1),
                round(bar_width, 1),
                _month(month),
                data.incidents[m],
                round(y, 1),
                segments,
                show_label=m % every == 0,
                show_total=slot >= 30,
            )
        )
    ticks = [(round(base - v * scale, 1), v) for v in range(0, axis_top + 1, step)]
    description = (
        f"{data.total} incidents from {_month(data.months[0])} to {_month(data.months[-1])}. "
        + "; ".join(f"{_month(mo)}: {n}" for mo, n in zip(data.months, data.incidents, strict=True))
        + ". An incident with two categories is counted in each."
        + " The table below gives every figure."
    )
    return Chart(
        width, height, left, base, bars, ticks, [(c, n) for n, _, c in series], description
    )


# -- pupils and the chronology ------------------------------------------------------------------


@routes.get("/pupils")
async def pupils(request: web.Request) -> web.Response:
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(request, action="pupil.search", detail="not a key-holder")
    deps = _deps(request)
    query = request.query.get("q", "").strip()[:100]
    rows: list[PupilRow] = []
    if query:
        async with deps.factory() as db, db.begin():
            rows = await find_pupils(db, workspace_id=viewer.workspace_id, query=query)
            # The words typed may be a name: the audit log keeps only how many were found.
            audit.record(
                db,
                action="pupil.search",
                actor=viewer,
                ip=client_ip(request),
                detail=f"{len(rows)} found",
            )
    return _render(request, "pupils.html", query=query, rows=rows, limit=SEARCH_LIMIT)


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
            return f"{_day(first)} to {_day(last)}"
        if first:
            return f"From {_day(first)}"
        if last:
            return f"Up to {_day(last)}"
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

    def audit_detail(self, pupil_id: int, known: set[str]) -> str:
        detail = f"pupil {pupil_id}; {self.range_key}"
        named = [c for c in self.categories if c in known]
        unknown = len(self.categories) - len(named)
        if self.categories:
            detail += "; categories: " + ", ".join(named)
            detail += f" (+{unknown} unknown)" if unknown else ""
        return detail[:200]


def read_filter(request: web.Request) -> ChronologyFilter:
    """The chronology's filter: dates, and categories (at most 50, as given)."""
    chosen = [str(c)[:100] for c in dict.fromkeys(request.query.getall("category", []))]
    return ChronologyFilter(read_dates(request.query), chosen[:50])


async def _chronology(
    request: web.Request, viewer: Staff, *, action: str
) -> tuple[chronology.Chronology | None, ChronologyFilter, str]:
    """The chronology in the path, filtered as asked; audited (or the refusal is)."""
    deps = _deps(request)
    zone = _zone(request)
    pupil_id = _id(request.match_info.get("pupil_id"))
    wanted = read_filter(request)
    start, end = wanted.bounds(zone)
    async with deps.factory() as db, db.begin():
        found = (
            await chronology.chronology(
                db,
                workspace_id=viewer.workspace_id,
                pupil_id=pupil_id,
                cipher=deps.cipher,
                now=deps.clock(),
                categories=wanted.categories,
                start=start,
                end=end,
            )
            if pupil_id is not None
            else None
        )
        if found is None:
            audit.record(
                db,
                action=action,
                outcome=audit.REFUSED,
                actor=viewer,
                ip=client_ip(request),
                detail=f"no pupil {pupil_id} here" if pupil_id else "not a pupil id",
            )
            return None, wanted, ""
        # Only category names the school uses go into the audit log (a made-up one
        # matches nothing, and is counted instead).
        known = {c.name for c in deps.catalogue.categories} | set(found.categories_seen)
        audit.record(
            db,
            action=action,
            actor=viewer,
            ip=client_ip(request),
            detail=wanted.audit_detail(found.pupil.id, known),
        )
        school = await workspaces.school_name(db, workspace_id=viewer.workspace_id)
    return found, wanted, school


def _chronology_context(
    request: web.Request,
    found: chronology.Chronology,
    wanted: ChronologyFilter,
    school: str,
    viewer: Staff,
) -> dict[str, Any]:
    deps = _deps(request)
    offered = list(
        dict.fromkeys([c.name for c in deps.catalogue.categories] + found.categories_seen)
    )
    return {
        "found": found,
        "pupil": found.pupil,
        "entries": found.entries,
        "wanted": wanted,
        "errors": wanted.dates.errors,
        "offered": offered,
        "school": school,
        "produced_by": viewer.name,
        "produced_at": deps.clock(),
        "pdf_url": f"/pupils/{found.pupil.id}/chronology.pdf"
        + (f"?{wanted.query_string}" if wanted.query_string else ""),
    }


@routes.get("/pupils/{pupil_id}")
async def chronology_page(request: web.Request) -> web.Response:
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(request, action="chronology.view", detail="not a key-holder")
    found, wanted, school = await _chronology(request, viewer, action="chronology.view")
    if found is None:
        return not_found(request)
    log.info("web.chronology", staff=viewer.id, pupil=found.pupil.id, entries=len(found.entries))
    return _render(
        request, "chronology.html", **_chronology_context(request, found, wanted, school, viewer)
    )


def _refuse_fetch(url: str, *_args: Any, **_kwargs: Any) -> Any:
    """WeasyPrint fetches nothing: the stylesheet is handed over, and there is nothing else."""
    raise ValueError(f"not fetched: {url[:40]}")


class PdfUnavailable(Exception):
    """WeasyPrint cannot load here (it needs Pango: see the README)."""


def pdf_support() -> str | None:
    """Why PDFs cannot be made on this machine, or None when they can."""
    try:
        import weasyprint  # noqa: F401 - loading it is the check
    except (ImportError, OSError) as error:
        return f"WeasyPrint cannot load ({type(error).__name__}); it needs Pango: see the README"
    return None


def render_pdf(html: str) -> bytes:
    """An A4 PDF of the document (blocking: run it in a thread)."""
    try:
        import weasyprint  # imported on first use: it takes a moment to load
    except (ImportError, OSError) as error:
        raise PdfUnavailable(str(error)[:100]) from None

    with PDF_SLOTS:
        document = weasyprint.HTML(string=html, url_fetcher=_refuse_fetch, media_type="print")
        return document.write_pdf(stylesheets=[weasyprint.CSS(filename=str(PRINT_CSS))])


@routes.get("/pupils/{pupil_id}/chronology.pdf")
async def chronology_pdf(request: web.Request) -> web.Response:
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(request, action="chronology.pdf", detail="not a key-holder")
    found, wanted, school = await _chronology(request, viewer, action="chronology.pdf")
    if found is None:
        return not_found(request)
    context = _chronology_context(request, found, wanted, school, viewer)
    html = aiohttp_jinja2.render_string(
        "chronology_pdf.html",
        request,
        {**context, "when": functools.partial(when, zone=_zone(request)), "day": _day},
    )
    started = asyncio.get_running_loop().time()
    try:
        body = await asyncio.to_thread(render_pdf, html)
    except PdfUnavailable:
        log.error("web.chronology_pdf_unavailable")
        return page(
            request,
            "message.html",
            status=503,
            heading="PDF not available",
            text="This server cannot make PDFs yet (WeasyPrint needs Pango). "
            "Use Print on the chronology page instead, and tell the IT technician.",
        )
    log.info(
        "web.chronology_pdf",
        staff=viewer.id,
        pupil=found.pupil.id,
        entries=len(found.entries),
        ms=round((asyncio.get_running_loop().time() - started) * 1000),
    )
    name = f"chronology-{found.pupil.id}-{_deps(request).clock():%Y%m%d}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- reports -----------------------------------------------------------------------------------

REPORT_TABLES = ("categories", "referrals", "alerts", "year-groups")
PAGE_REFERRALS = 100  # open referrals listed on the page (overdue first); the CSV has all
GOVERNORS_TABLES = ("categories", "year-groups", "agencies", "alerts")


def _period_links(today: dt.date) -> list[tuple[str, DateRange]]:
    return [
        ("This term", reports.term_of(today)),
        ("Last term", reports.previous_term(today)),
        ("This school year", reports.school_year_of(today)),
    ]


def _period_query(period: DateRange) -> str:
    return urlencode({"from": period.first.isoformat(), "to": period.last.isoformat()})


Build = Callable[..., Awaitable[Any]]


async def _report_data(
    request: web.Request, viewer: Staff, build: Build, *, action: str, detail: str
) -> tuple[Any, DateRange, Dates, str]:
    """`build(db, workspace_id=, period=, working=, now=)` for the range asked, audited."""
    deps = _deps(request)
    dates = read_dates(request.query)
    period = report_period(dates, today=_today(request))
    async with deps.factory() as db, db.begin():
        data = await build(
            db,
            workspace_id=viewer.workspace_id,
            period=period,
            working=deps.school.working_time,
            now=deps.clock(),
        )
        school = await workspaces.school_name(db, workspace_id=viewer.workspace_id)
        audit.record(
            db,
            action=action,
            actor=viewer,
            ip=client_ip(request),
            detail=f"{detail}; {period.key}",
        )
    return data, period, dates, school


def _report_context(request: web.Request, period: DateRange, dates: Dates) -> dict[str, Any]:
    today = _today(request)
    return {
        "period": period,
        "period_query": _period_query(period),
        "links": [(label, r, _period_query(r)) for label, r in _period_links(today)],
        "dates": dates,
        "errors": dates.errors,
    }


@routes.get("/reports")
async def reports_page(request: web.Request) -> web.Response:
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(request, action="report.view", detail="reports; not a key-holder")
    report, period, dates, school = await _report_data(
        request, viewer, reports.term_report, action="report.view", detail="reports"
    )
    header, rows = category_table(report.categories)
    log.info("web.report", staff=viewer.id, report="reports", period=period.key)
    return _render(
        request,
        "reports.html",
        report=report,
        referral_limit=PAGE_REFERRALS,
        school=school,
        chart=build_chart(report.categories) if not report.categories.empty else None,
        category_header=header,
        category_rows=rows,
        **_report_context(request, period, dates),
    )


@routes.get("/reports/governors")
async def governors_page(request: web.Request) -> web.Response:
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(request, action="report.view", detail="governors; not a key-holder")
    report, period, dates, school = await _report_data(
        request, viewer, reports.governors_report, action="report.view", detail="governors"
    )
    header, rows = category_table(report.categories)
    log.info("web.report", staff=viewer.id, report="governors", period=period.key)
    return _render(
        request,
        "governors.html",
        report=report,
        school=school,
        chart=build_chart(report.categories) if not report.categories.empty else None,
        category_header=header,
        category_rows=rows,
        **_report_context(request, period, dates),
    )


def _table(table: str, *, governors: bool) -> Build:
    """What one CSV download counts: only that table, not the whole report."""

    async def rows(
        db: AsyncSession,
        *,
        workspace_id: int,
        period: DateRange,
        working: WorkingTime,
        now: dt.datetime,
    ) -> tuple[list[str], list[list[Any]]]:
        zone = working.zone
        if table == "categories":
            return category_table(
                await reports.incidents_by_category(
                    db, workspace_id=workspace_id, period=period, zone=zone
                )
            )
        if table == "year-groups":
            return _year_rows(
                await reports.year_groups(db, workspace_id=workspace_id, period=period, zone=zone)
            )
        if table == "agencies":
            return _agency_rows(
                await reports.referrals_by_agency(
                    db, workspace_id=workspace_id, period=period, zone=zone, now=now
                )
            )
        if table == "referrals":
            found = await reports.open_referrals(
                db, workspace_id=workspace_id, working=working, now=now
            )
            return _referral_rows(found, zone)
        if governors:  # alerts, added up
            return _alert_total_rows(
                await reports.alert_totals(
                    db, workspace_id=workspace_id, period=period, working=working, now=now
                )
            )
        return _alert_rows(
            await reports.late_alerts(
                db, workspace_id=workspace_id, period=period, working=working, now=now
            )
        )

    return rows


async def _download(request: web.Request, *, governors: bool) -> web.Response:
    name = "governors" if governors else "reports"
    table = request.match_info.get("table", "")
    viewer = _keyholder(request)
    if viewer is None:
        return await _refuse(
            request, action="report.download", detail=f"{name}/{table[:40]}.csv; not a key-holder"
        )
    if table not in (GOVERNORS_TABLES if governors else REPORT_TABLES):
        return not_found(request)
    (header, rows), period, _dates, _school = await _report_data(
        request,
        viewer,
        _table(table, governors=governors),
        action="report.download",
        detail=f"{name}/{table}.csv",
    )
    log.info("web.report_download", staff=viewer.id, report=f"{name}/{table}", period=period.key)
    prefix = "governors-" if governors else ""
    filename = f"vigil-{prefix}{table}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return _csv_response(csv_bytes(header, rows), filename)


@routes.get("/reports/{table}.csv")
async def report_csv(request: web.Request) -> web.Response:
    return await _download(request, governors=False)


@routes.get("/reports/governors/{table}.csv")
async def governors_csv(request: web.Request) -> web.Response:
    return await _download(request, governors=True)
