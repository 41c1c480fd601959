"""The safeguarding team's reports: counts for a date range (this term unless chosen).

- `GET /reports` is the term report; each of its tables downloads at
  `GET /reports/{table}.csv`.
- `GET /reports/governors` is the counts-only governors' report, its tables at
  `GET /reports/governors/{table}.csv`.

Key-holders only (`@keyholder_only`). Every view and download is audited by
`store.flows.reports`, naming the report and the range. The tables are `tables`, the
chart is `chart`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from handlers.web.chart import build_chart
from handlers.web.dates import Dates, read_dates
from handlers.web.deps import DEPS
from handlers.web.render import not_found, page, zone
from handlers.web.security import keyholder_only, one_transaction
from handlers.web.session import request_db, viewer, visit
from handlers.web.tables import category_table, csv_bytes, csv_response, table_rows
from store import reports
from store.flows.reports import Build, view_report
from store.reports import DateRange

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

REPORT_TABLES = ("categories", "referrals", "alerts", "year-groups")
PAGE_REFERRALS = 100  # open referrals listed on the page (overdue first); the CSV has all
GOVERNORS_TABLES = ("categories", "year-groups", "agencies", "alerts")


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
    return request.app[DEPS].clock().astimezone(zone(request)).date()


def _period_query(period: DateRange) -> str:
    return urlencode({"from": period.first.isoformat(), "to": period.last.isoformat()})


async def _report_data(
    request: web.Request, build: Build, *, action: str, detail: str
) -> tuple[Any, DateRange, Dates, str]:
    """What `build` counts for the range asked, audited; the range, the dates typed, and
    the school's name."""
    dates = read_dates(request.query)
    period = report_period(dates, today=_today(request))
    # Read and audited in the transaction the session was loaded in (`@one_transaction`).
    data, school = await view_report(
        request_db(request),
        visit=visit(request),
        build=build,
        period=period,
        action=action,
        name=detail,
    )
    return data, period, dates, school


async def _report_page(
    request: web.Request, build: Build, *, name: str, template: str, **more: Any
) -> web.Response:
    """A report's page: what `build` counts for the range asked (audited), its chart and
    tables, and links to other ranges."""
    report, period, dates, school = await _report_data(
        request, build, action="report.view", detail=name
    )
    log.info("web.report", staff=viewer(request).id, report=name, period=period.key)
    today = _today(request)
    links = [
        ("This term", reports.term_of(today)),
        ("Last term", reports.previous_term(today)),
        ("This school year", reports.school_year_of(today)),
    ]
    header, rows = category_table(report.categories)
    return page(
        request,
        template,
        report=report,
        school=school,
        chart=build_chart(report.categories) if not report.categories.empty else None,
        category_header=header,
        category_rows=rows,
        period=period,
        period_query=_period_query(period),
        links=[(label, r, _period_query(r)) for label, r in links],
        dates=dates,
        errors=dates.errors,
        **more,
    )


@routes.get("/reports")
@one_transaction
@keyholder_only(action="report.view", about=lambda _request: "reports")
async def reports_page(request: web.Request) -> web.Response:
    return await _report_page(
        request,
        reports.term_report,
        name="reports",
        template="reports.html",
        referral_limit=PAGE_REFERRALS,
    )


@routes.get("/reports/governors")
@one_transaction
@keyholder_only(action="report.view", about=lambda _request: "governors")
async def governors_page(request: web.Request) -> web.Response:
    return await _report_page(
        request, reports.governors_report, name="governors", template="governors.html"
    )


async def _download(request: web.Request, *, governors: bool) -> web.Response:
    name = "governors" if governors else "reports"
    table = request.match_info.get("table", "")
    if table not in (GOVERNORS_TABLES if governors else REPORT_TABLES):
        return not_found(request)
    (header, rows), period, _dates, _school = await _report_data(
        request,
        table_rows(table, governors=governors),
        action="report.download",
        detail=f"{name}/{table}.csv",
    )
    log.info(
        "web.report_download", staff=viewer(request).id, report=f"{name}/{table}", period=period.key
    )
    prefix = "governors-" if governors else ""
    filename = f"vigil-{prefix}{table}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return csv_response(csv_bytes(header, rows), filename)


def _csv_about(name: str) -> Callable[[web.Request], str]:
    """Which download a refused request asked for, for the audit entry."""
    return lambda request: f"{name}/{request.match_info.get('table', '')[:40]}.csv"


@routes.get("/reports/{table}.csv")
@one_transaction
@keyholder_only(action="report.download", about=_csv_about("reports"))
async def report_csv(request: web.Request) -> web.Response:
    return await _download(request, governors=False)


@routes.get("/reports/governors/{table}.csv")
@one_transaction
@keyholder_only(action="report.download", about=_csv_about("governors"))
async def governors_csv(request: web.Request) -> web.Response:
    return await _download(request, governors=True)
