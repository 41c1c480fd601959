"""Agency referrals in the web view (DESIGN §6): the key-holders' referrals board, and
what the incident page's Referral fieldset shows before anything is typed.

Reading and checking the fieldset is `store.referral_changes`; recording it, with the
action, is `store.flows.actions`. Times are shown and entered in the school's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from handlers.web.render import page
from handlers.web.security import keyholder_only, one_transaction
from handlers.web.session import request_db, visit
from store.flows import referrals as flows
from store.referral_changes import outcome_key, responded_key
from store.referral_rows import working_days_text

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


def overdue_text(days: int) -> str:
    """How overdue, as the page says it."""
    return "due today" if days <= 0 else working_days_text(days)


def local_input(value: dt.datetime, zone: ZoneInfo) -> str:
    """An instant as a `datetime-local` field value in the school's time zone."""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def blank_entries(
    open_referral_ids: Iterable[int], *, now: dt.datetime, zone: ZoneInfo
) -> dict[str, str]:
    """The fieldset as first shown: no agency, times defaulting to now (school time)."""
    stamp = local_input(now, zone)
    entered = {"agency": "", "referred_at": stamp, "reference": ""}
    for referral_id in open_referral_ids:
        entered[outcome_key(referral_id)] = ""
        entered[responded_key(referral_id)] = stamp
    return entered


@routes.get("/referrals")
@one_transaction
@keyholder_only(action="referrals.view")
async def referrals_board(request: web.Request) -> web.Response:
    """Referrals waiting for an agency: overdue first (most overdue first), then soonest due."""
    asking = visit(request)
    rows = await flows.view_board(request_db(request), visit=asking)
    log.info("web.referrals_board", staff=asking.staff.id, waiting=len(rows))
    return page(
        request,
        "referrals.html",
        rows=rows,
        overdue_count=sum(1 for r in rows if r.state == "overdue"),
        overdue_text=overdue_text,
    )
