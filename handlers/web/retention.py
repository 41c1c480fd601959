"""Retention (DESIGN §14), key-holders only (`@keyholder_only`): `/retention` lists the
records past their retention date and those under a legal hold; a key-holder places or
lifts a hold (a reason required), and destroys a record after a confirmation step
(`/retention/destroy/{kind}/{key}`). Every step is `store.flows.retention`.
"""

from __future__ import annotations

from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.security import keyholder_only
from handlers.web.session import visit
from store.db import transaction
from store.flows import retention as flows
from store.ids import parse_id, parse_number

routes = web.RouteTableDef()

REASON_MAX = 2000  # characters read of a hold's reason (the store refuses over 500)


def _ref(kind: str | None, key: str | None) -> flows.RecordRef | None:
    number = parse_number(key) if kind == flows.CONCERN else parse_id(key)
    if kind not in (flows.CONCERN, flows.PAPER) or number is None:
        return None
    return flows.RecordRef(kind, number)


def _about(request: web.Request) -> str:
    return f"{request.match_info.get('kind', '')[:10]}/{request.match_info.get('key', '')[:20]}"


@routes.get("/retention")
@keyholder_only(action=flows.VIEW)
async def review(request: web.Request) -> web.Response:
    async with transaction(request.app[DEPS].factory) as db:
        result = await flows.review_page(db, visit=visit(request))
    return page(request, "retention.html", review=result)


@routes.post("/retention/hold")
@keyholder_only(action=flows.HOLD)
async def place_hold(request: web.Request) -> web.Response:
    form = await request.post()
    async with transaction(request.app[DEPS].factory) as db:
        result = await flows.place_hold(
            db,
            visit=visit(request),
            ref=_ref(str(form.get("kind", "")), str(form.get("key", ""))),
            reason=str(form.get("reason", ""))[:REASON_MAX],
        )
    if result is None:
        return not_found(request)
    if isinstance(result, flows.RetentionPage):
        return page(request, "retention.html", review=result, status=400)
    raise web.HTTPSeeOther("/retention#held")


@routes.post("/retention/lift")
@keyholder_only(action=flows.LIFT)
async def lift_hold(request: web.Request) -> web.Response:
    form = await request.post()
    async with transaction(request.app[DEPS].factory) as db:
        lifted = await flows.lift_hold(
            db, visit=visit(request), hold_id=parse_id(str(form.get("hold", "")))
        )
    if not lifted:
        return not_found(request)
    raise web.HTTPSeeOther("/retention")


@routes.get("/retention/destroy/{kind}/{key}")
@keyholder_only(action=flows.DESTROY, about=_about)
async def confirm_destruction(request: web.Request) -> web.Response:
    ref = _ref(request.match_info.get("kind"), request.match_info.get("key"))
    async with transaction(request.app[DEPS].factory) as db:
        row = await flows.destruction_page(db, visit=visit(request), ref=ref)
    if row is None:
        return not_found(request)
    return page(request, "retention_destroy.html", row=row)


@routes.post("/retention/destroy/{kind}/{key}")
@keyholder_only(action=flows.DESTROY, about=_about)
async def destroy(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await request.post()
    ref = _ref(request.match_info.get("kind"), request.match_info.get("key"))
    async with transaction(deps.factory) as db:
        result = await flows.destroy(
            db,
            visit=visit(request),
            files=deps.files,
            ref=ref,
            confirmed=form.get("confirm") == "destroy",
        )
    if result is None:
        return not_found(request)
    if isinstance(result, flows.NotConfirmed):
        return page(request, "retention_destroy.html", row=result.row, unconfirmed=True, status=400)
    return page(
        request,
        "message.html",
        heading="Record destroyed",
        text=f"The {result.kind} was destroyed. The audit log keeps a tombstone: its kind, "
        "the rule, who destroyed it and when, nothing of its content.",
        link="/retention",
        link_text="Back to the retention review",
    )
