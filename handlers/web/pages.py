"""Signed-in pages: my alerts, incident detail, actions, invitations, audit log, staff."""

from __future__ import annotations

from aiohttp import web

from handlers.web.render import page
from handlers.web.security import current
from store import alerts

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/alerts")


@routes.get("/alerts")
async def my_alerts(request: web.Request) -> web.Response:
    deps = request.app["deps"]
    session = current(request)
    async with deps.factory() as db:
        unread = await alerts.unread_for(
            db, workspace_id=session.workspace_id, slack_user_id=session.staff.slack_user_id or ""
        )
    return page(request, "message.html", heading="My alerts", text=f"{len(unread)} unread.")
