"""Rendering pages: every template gets the signed-in person, the CSRF token and timings."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from handlers.web.deps import DEPS
from handlers.web.security import SESSION
from store.access import is_keyholder


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render `template` with the session's details added."""
    session = request.get(SESSION)
    deps = request.app[DEPS]
    context.setdefault("me", session.staff if session else None)
    context.setdefault("csrf", session.csrf_token if session else "")
    context.setdefault("keyholder", bool(session and is_keyholder(session.staff.role_set)))
    context.setdefault("signed_in", bool(session and session.second_factor_at))
    context.setdefault("idle_seconds", int(deps.idle.total_seconds()))
    return aiohttp_jinja2.render_template(template, request, context, status=status)
