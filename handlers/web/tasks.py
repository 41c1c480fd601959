"""My tasks (DESIGN §12): `GET /tasks` lists the signed-in person's open tasks, oldest
due first; `POST /tasks/{id}/done` marks one done (theirs only; CSRF like every form).

Each handler calls one flow (`store.flows.tasks`) in one transaction. Logs carry ids only.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.security import one_transaction
from handlers.web.session import request_db, visit
from store.db import transaction
from store.flows import Pressed
from store.flows import tasks as flows
from store.ids import parse_id

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/tasks")
@one_transaction
async def my_tasks(request: web.Request) -> web.Response:
    """The signed-in person's open tasks, oldest due first, with links to each concern."""
    rows = await flows.my_tasks(request_db(request), visit=visit(request))
    return page(request, "tasks.html", tasks=rows, done=request.query.get("done"))


@routes.post("/tasks/{task_id}/done")
async def mark_done(request: web.Request) -> web.Response:
    """Mark one of the signed-in person's tasks done; anyone else's is the one 404."""
    deps = request.app[DEPS]
    asking = visit(request)
    task_id = parse_id(request.match_info.get("task_id", ""))
    async with transaction(deps.factory) as db:
        done = await flows.mark_done(db, Pressed.on_web(asking, task_id))
    if done.task is None:
        log.warning("web.task_done_refused", staff=asking.staff.id)
        return not_found(request)
    deps.notify_outbox()
    log.info("web.task_done", staff=asking.staff.id, task=done.task.id)
    raise web.HTTPSeeOther(f"/tasks?done={done.task.id}")
