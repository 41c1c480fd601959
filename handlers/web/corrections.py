"""`POST /incidents/{number}/pupil-correction`: a key-holder records that the concern was
filed against the wrong pupil, naming the right one by UPN (`store.flows.corrections`).

Key-holders only (`@keyholder_only`); the incident must be one they may see (else the one
404). Logs carry ids only.
"""

from __future__ import annotations

from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.incidents import render_incident
from handlers.web.render import not_found
from handlers.web.security import keyholder_only
from handlers.web.session import visit
from store.db import transaction
from store.flows import corrections as flows
from store.ids import parse_id, parse_number

routes = web.RouteTableDef()


@routes.post("/incidents/{number}/pupil-correction")
@keyholder_only(action=flows.ACTION)
async def correct_pupil(request: web.Request) -> web.Response:
    form = await request.post()
    async with transaction(request.app[DEPS].factory) as db:
        result = await flows.correct_pupil(
            db,
            visit=visit(request),
            number=parse_number(request.match_info.get("number")),
            wrong_pupil_id=parse_id(str(form.get("wrong_pupil", ""))),
            right_upn=str(form.get("right_upn", "")),
        )
    if result is None:
        return not_found(request)
    if isinstance(result, flows.CorrectionRefused):
        return render_incident(request, result.page, correction_error=result.error, status=400)
    raise web.HTTPSeeOther(f"/incidents/{result.number}#pupils")
