"""The key-holders' administration pages: the audit log, the staff list, resetting a
colleague's authenticator and unlocking their sign-in."""

from __future__ import annotations

import structlog
from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.security import keyholder_only
from handlers.web.session import viewer, visit
from store.db import transaction
from store.flows import admin
from store.ids import parse_id, parse_number
from store.staff import staff_overview

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

AUDIT_PAGE = 100


@routes.get("/audit")
@keyholder_only(action="audit.view")
async def audit_log(request: web.Request) -> web.Response:
    person = parse_id(request.query.get("person"))
    number = parse_number(request.query.get("incident"))
    before = parse_id(request.query.get("before"))
    async with transaction(request.app[DEPS].factory) as db:
        shown = await admin.view_audit_log(
            db, visit=visit(request), person=person, number=number, before=before, limit=AUDIT_PAGE
        )
    older = None
    if len(shown.rows) == AUDIT_PAGE:
        query = {"person": person, "incident": number, "before": shown.rows[-1].id}
        older = "/audit?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return page(
        request,
        "audit.html",
        rows=shown.rows,
        people=shown.people,
        person=person,
        number=number,
        before=before,
        unknown_incident=shown.unknown_incident,
        older=older,
    )


@routes.get("/staff")
@keyholder_only(action="staff.view")
async def staff_list(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    reset_id = parse_id(request.query.get("reset"))
    unlocked_id = parse_id(request.query.get("unlocked"))
    async with deps.factory() as db:
        rows = await staff_overview(db, workspace_id=viewer(request).workspace_id)
    reset = next((r.staff for r in rows if r.staff.id == reset_id), None)
    unlocked = next((r.staff for r in rows if r.staff.id == unlocked_id), None)
    return page(request, "staff.html", rows=rows, reset=reset, unlocked=unlocked)


@routes.post("/staff/{staff_id}/totp-reset")
@keyholder_only(action="totp.reset")
async def totp_reset(request: web.Request) -> web.Response:
    asking = visit(request)
    staff_id = parse_id(request.match_info.get("staff_id"))
    async with transaction(request.app[DEPS].factory) as db:
        target = await admin.reset_totp(db, visit=asking, staff_id=staff_id)
    if target is None:
        log.warning("web.totp_reset_refused", staff=asking.staff.id, target=staff_id)
        return not_found(request)
    log.info("web.totp_reset", staff=asking.staff.id, target=target.id)
    raise web.HTTPSeeOther(f"/staff?reset={target.id}#staff-{target.id}")


@routes.post("/staff/{staff_id}/totp-unlock")
@keyholder_only(action="totp.unlock")
async def totp_unlock(request: web.Request) -> web.Response:
    asking = visit(request)
    staff_id = parse_id(request.match_info.get("staff_id"))
    async with transaction(request.app[DEPS].factory) as db:
        target = await admin.unlock_totp(db, visit=asking, staff_id=staff_id)
    if target is None:
        log.warning("web.totp_unlock_refused", staff=asking.staff.id, target=staff_id)
        return not_found(request)
    log.info("web.totp_unlock", staff=asking.staff.id, target=target.id)
    raise web.HTTPSeeOther(f"/staff?unlocked={target.id}#staff-{target.id}")
