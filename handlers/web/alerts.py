"""My alerts: the signed-in person's alerts, unread first (what Slack shows, no more)."""

from __future__ import annotations

from aiohttp import web

from handlers.web.render import page
from handlers.web.security import one_transaction
from handlers.web.session import request_db, viewer
from store import alerts, unread
from store.access import is_keyholder

routes = web.RouteTableDef()

KINDS = {
    alerts.AlertKind.NEW_CONCERN: "New concern",
    alerts.AlertKind.ACTION: "Action",
    alerts.AlertKind.SHARED: "Shared with you",
}


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/alerts")


@routes.get("/alerts")
@one_transaction
async def my_alerts(request: web.Request) -> web.Response:
    me = viewer(request)
    db = request_db(request)  # the session's transaction
    rows, more = await alerts.alerts_for(db, workspace_id=me.workspace_id, staff_id=me.id)
    unopened = (
        await unread.chased_unopened(db, workspace_id=me.workspace_id)
        if is_keyholder(me.role_set)
        else None
    )
    return page(
        request,
        "alerts.html",
        rows=rows,
        more=more,
        unread_count=sum(1 for r in rows if r.read_at is None),
        kinds=KINDS,
        unopened=unopened,
    )
