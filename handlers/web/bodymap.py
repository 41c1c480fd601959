"""Body maps: the page to draw one on a concern (front and back outlines; a click, or
the keyboard on a figure, places a mark; named regions for anyone not using the figure)
and saving it. The outline and marks are SVG drawn by the templates (`_bodymap.html`);
`static/bodymap.js` adds clicking and the keyboard. Logs carry ids and counts only.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from multidict import MultiDictProxy

from handlers.web.deps import DEPS
from handlers.web.render import not_found, page
from handlers.web.session import visit
from store.db import transaction
from store.documents import bodymap
from store.flows import bodymap as flows
from store.ids import parse_number

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

FIELDS = ("side", "region", "x", "y", "type", "size", "note")
ROWS = 8  # mark rows on the form


def _mirror(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return points + [(bodymap.WIDTH - x, y) for x, y in reversed(points)]


# The child's outline, left half (viewer's left), mirrored: arms slightly out, legs apart.
OUTLINE = " ".join(
    f"{x},{y}"
    for x, y in _mirror(
        [
            (92, 64), (92, 80), (62, 88), (50, 100), (40, 160), (30, 225), (24, 240),
            (36, 246), (44, 230), (56, 166), (64, 122), (68, 200), (66, 222), (70, 300),
            (72, 368), (60, 392), (94, 392), (94, 368), (96, 300), (100, 236),
        ]
    )
)  # fmt: skip


def context(**more: Any) -> dict[str, Any]:
    """What the body-map templates need: the figure and the choices."""
    return {
        "outline": OUTLINE,
        "width": bodymap.WIDTH,
        "height": bodymap.HEIGHT,
        "mark_types": bodymap.TYPES,
        "mark_sizes": bodymap.SIZES,
        "regions": list(bodymap.REGIONS),
        "guidance": bodymap.GUIDANCE,
        "note_max": bodymap.NOTE_MAX,
        **more,
    }


def _number(request: web.Request) -> int | None:
    return parse_number(request.match_info.get("number"))


def _form(
    request: web.Request,
    number: int,
    *,
    errors: dict[str, str] | None = None,
    rows: list[dict[str, str]] | None = None,
    status: int = 200,
) -> web.Response:
    blank = {name: "" for name in FIELDS}
    return page(
        request,
        "bodymap.html",
        status=status,
        **context(
            number=number,
            errors=errors or {},
            rows=rows or [dict(blank) for _ in range(ROWS)],
        ),
        fig=context(),
    )


@routes.get("/incidents/{number}/body-map")
async def body_map_page(request: web.Request) -> web.Response:
    async with transaction(request.app[DEPS].factory) as db:
        incident = await flows.may_draw(db, visit=visit(request), number=_number(request))
    if incident is None:
        return not_found(request)
    return _form(request, incident.number)


@routes.post("/incidents/{number}/body-map")
async def add_body_map(request: web.Request) -> web.Response:
    form: MultiDictProxy[Any] = await request.post()
    rows = [
        {name: str(form.get(f"mark-{n}-{name}", ""))[:1000] for name in FIELDS}
        for n in range(1, bodymap.MARKS_MAX + 1)
    ]
    asking = visit(request)
    async with transaction(request.app[DEPS].factory) as db:
        drawn = await flows.add_body_map(db, visit=asking, number=_number(request), rows=rows)
    if drawn is None:
        return not_found(request)
    if isinstance(drawn, flows.DrawRefused):
        log.info("web.body_map_invalid", staff=asking.staff.id, fields=sorted(drawn.errors))
        return _form(request, drawn.number, errors=drawn.errors, rows=rows[:ROWS], status=400)
    log.info("web.body_map_added", staff=asking.staff.id, body_map=drawn.body_map_id)
    raise web.HTTPSeeOther(f"/incidents/{drawn.number}#body-map-{drawn.body_map_id}")
