"""A school's settings page (its key-holders) and the trust page (trust leads)."""

from __future__ import annotations

import structlog
from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.security import keyholder_only
from handlers.web.session import visit
from store.db import transaction
from store.flows import schools as flows

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

SETTINGS_FIELD_MAX = 20_000


@routes.get("/settings")
@keyholder_only(action="settings.view")
async def settings(request: web.Request) -> web.Response:
    deps, asking = request.app[DEPS], visit(request)
    assert deps.schools is not None
    async with transaction(deps.factory) as db:
        shown = await flows.view_settings(
            db, visit=asking, base=deps.schools.base(asking.staff.workspace_id)
        )
    if shown is None:
        return not_found(request)
    saved = request.query.get("saved") == "1"
    return page(request, "settings.html", text=shown.text, source=shown.source, saved=saved)


@routes.post("/settings")
@keyholder_only(action="settings.edit")
async def save_settings(request: web.Request) -> web.Response:
    deps, asking = request.app[DEPS], visit(request)
    assert deps.schools is not None
    form = await request.post()
    text = str(form.get("settings", ""))[:SETTINGS_FIELD_MAX]
    workspace_id = asking.staff.workspace_id
    async with transaction(deps.factory) as db:
        saved = await flows.save_settings(
            db, visit=asking, base=deps.schools.base(workspace_id), text=text
        )
    if saved is None:
        return not_found(request)
    if not saved.ok:
        log.info("web.settings_invalid", staff=asking.staff.id)
        source = deps.schools.base(workspace_id).source
        return page(
            request, "settings.html", status=400, text=text, source=source, error=saved.error
        )
    deps.schools.edited(workspace_id, version=saved.version, text=saved.text)
    log.info("web.settings_saved", staff=asking.staff.id, version=saved.version)
    raise web.HTTPSeeOther("/settings?saved=1")


@routes.get("/trust")
async def trust(request: web.Request) -> web.Response:
    deps, asking = request.app[DEPS], visit(request)
    assert deps.schools is not None
    async with transaction(deps.factory) as db:
        figures = await flows.trust_page(db, visit=asking, config_of=deps.schools.config)
    if figures is None:
        return not_found(request)
    return page(request, "trust.html", figures=figures)
