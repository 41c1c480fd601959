"""Casework in the web view (DESIGN §12): a concern's status, the caseload, search and
"my concerns".

- `POST /incidents/{number}/status` closes (with an outcome), sets monitoring or reopens
  a concern (key-holders only; `store.flows.casework.change_status`).
- `GET /caseload`: open and monitoring concerns, oldest first, filtered (key-holders).
- `GET /search`: concerns by pupil, category, author, status, outcome, dates, agency,
  reference and words of the narrative or actions (`text`), newest first (key-holders).
- `GET /my-concerns`: the concerns the signed-in member of staff filed.

Lists are paged (`?page=`); each flow audits the filters' kinds, never their values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web
from multidict import MultiDictProxy

from handlers.web.dates import Dates, read_dates
from handlers.web.deps import DEPS
from handlers.web.incidents import NOTHING_ENTERED, incident_page_response
from handlers.web.render import not_found, page, zone
from handlers.web.security import keyholder_only, one_transaction
from handlers.web.session import request_db, visit
from store.casework import STATUS_LABELS, CaseFilters, StatusWanted
from store.db import transaction
from store.enums import CaseStatus
from store.flows import casework as flows
from store.ids import parse_id, parse_number
from store.reports.periods import local_midnight

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

TEXT_MAX = 100
MAX_PAGE = 10_000


def _number(request: web.Request) -> int | None:
    return parse_number(request.match_info.get("number"))


@routes.post("/incidents/{number}/status")
@keyholder_only(action="case.status")
async def change_status(request: web.Request) -> web.Response:
    """Close, set monitoring or reopen, recorded as an action (all or nothing)."""
    form: MultiDictProxy[Any] = await request.post()
    wanted = StatusWanted(
        status=str(form.get("status", "")),
        outcome=str(form.get("outcome", "")),
        reason=str(form.get("reason", "")),
    )
    asking = visit(request)
    async with transaction(request.app[DEPS].factory) as db:
        result = await flows.change_status(db, visit=asking, number=_number(request), wanted=wanted)
    if result is None:
        return not_found(request)
    if isinstance(result, flows.StatusRefused):
        log.info(
            "web.status_invalid",
            staff=asking.staff.id,
            incident=result.page.incident.id,
            fields=sorted(result.errors),
        )
        typed = {"status": wanted.status, "outcome": wanted.outcome, "reason": wanted.reason}
        return incident_page_response(
            request,
            result.page,
            status_errors=result.errors,
            status_entered=typed,
            entered=NOTHING_ENTERED,
            status=400,
        )
    log.info(
        "web.status_changed", staff=asking.staff.id, action=result.action_id, status=result.status
    )
    raise web.HTTPSeeOther(f"/incidents/{result.number}#action-{result.action_id}")


# -- the lists ------------------------------------------------------------------------------


def _text(query: Mapping[str, str], key: str) -> str:
    return str(query.get(key, "")).strip()[:TEXT_MAX]


def _page_number(query: Mapping[str, str]) -> int:
    number = parse_number(query.get("page"))
    return min(number, MAX_PAGE) if number else 1


def _filters(request: web.Request, *, dates: Dates | None) -> tuple[CaseFilters, dict[str, str]]:
    """The filters asked for, and the query string that asks for them again."""
    q = request.query
    known = {s.value for s in CaseStatus}
    status = _text(q, "status")
    referral = _text(q, "referral")
    author = parse_id(q.get("author"))
    first = last = None
    if dates is not None and not dates.errors:
        if dates.first:
            first = local_midnight(dates.first, zone(request))
        if dates.last:
            last = local_midnight(dates.last, zone(request)) + dt.timedelta(days=1)
    filters = CaseFilters(
        statuses=(status,) if status in known else (),
        category=_text(q, "category") or None,
        author_id=author,
        year_group=_text(q, "year") or None,
        registration_group=_text(q, "class") or None,
        open_referral={"yes": True, "no": False}.get(referral),
        pupil=_text(q, "pupil") or None,
        outcome=_text(q, "outcome") or None,
        happened_from=first,
        happened_to=last,
        agency=_text(q, "agency") or None,
        reference=_text(q, "reference") or None,
        text=_text(q, "text") or None,
    )
    again = {
        key: _text(q, key)
        for key in (
            "status",
            "category",
            "author",
            "year",
            "class",
            "referral",
            "pupil",
            "outcome",
            "agency",
            "reference",
            "text",
            "from",
            "to",
        )
        if _text(q, key)
    }
    return filters, again


def _links(path: str, again: dict[str, str], *, page_number: int, more: bool) -> dict[str, str]:
    found = {}
    if page_number > 1:
        found["previous"] = f"{path}?" + urlencode({**again, "page": page_number - 1})
    if more:
        found["next"] = f"{path}?" + urlencode({**again, "page": page_number + 1})
    return found


@routes.get("/caseload")
@one_transaction
@keyholder_only(action="caseload.view")
async def caseload(request: web.Request) -> web.Response:
    """Open and monitoring concerns, oldest first, with filters."""
    filters, again = _filters(request, dates=None)
    number = _page_number(request.query)
    asking = visit(request)
    db = request_db(request)  # the session's transaction: read, audited, committed once
    shown = await flows.view_caseload(db, visit=asking, filters=filters, page=number)
    log.info("web.caseload", staff=asking.staff.id, rows=len(shown.cases.rows), page=number)
    return page(
        request,
        "caseload.html",
        shown=shown,
        cases=shown.cases,
        entered=again,
        filtered=bool(filters.kinds),
        categories=asking.setup.catalogue.categories,
        labels=STATUS_LABELS,
        links=_links("/caseload", again, page_number=number, more=shown.cases.more),
    )


@routes.get("/search")
@one_transaction
@keyholder_only(action="search")
async def search(request: web.Request) -> web.Response:
    """Concerns matching every filter given, newest first; nothing is searched until asked."""
    dates = read_dates(request.query)
    filters, again = _filters(request, dates=dates)
    number = _page_number(request.query)
    asking = visit(request)
    shown = await flows.search(request_db(request), visit=asking, filters=filters, page=number)
    log.info("web.search", staff=asking.staff.id, rows=len(shown.cases.rows), page=number)
    return page(
        request,
        "search.html",
        shown=shown,
        cases=shown.cases,
        entered=again,
        dates=dates,
        filtered=bool(filters.kinds),
        categories=asking.setup.catalogue.categories,
        outcomes=asking.setup.school.outcomes,
        agencies=asking.setup.school.agency_names,
        labels=STATUS_LABELS,
        links=_links("/search", again, page_number=number, more=shown.cases.more),
    )


@routes.get("/my-concerns")
@one_transaction
async def my_concerns(request: web.Request) -> web.Response:
    """The concerns the signed-in member of staff filed, newest first."""
    number = _page_number(request.query)
    cases = await flows.my_concerns(request_db(request), visit=visit(request), page=number)
    return page(
        request,
        "my_concerns.html",
        cases=cases,
        links=_links("/my-concerns", {}, page_number=number, more=cases.more),
    )
