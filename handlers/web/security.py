"""Every web request passes here: headers, session, sign-in level, CSRF.

Routes declare how much sign-in they need with `@public` or `@first_factor`; anything
else needs the full sign-in (Slack identity and the TOTP code). So a new route is safe by
default, and a test walks the router to prove it.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from handlers.web.deps import WebDeps
from store import audit, websessions
from store.db import DATABASE_ERRORS
from store.models import WebSession

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC, FIRST_FACTOR, FULL = "public", "first_factor", "full"
SESSION = web.RequestKey("session", WebSession)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _marked(handler: Handler, level: str) -> Handler:
    if inspect.ismethod(handler):  # a bound method cannot carry an attribute: wrap it
        method = handler

        async def handler(request: web.Request) -> web.StreamResponse:
            return await method(request)

    handler.vigil_access = level  # type: ignore[attr-defined]
    return handler


def public(handler: Handler) -> Handler:
    """Reachable without signing in (sign-in pages, health, the Slack endpoint, static)."""
    return _marked(handler, PUBLIC)


def first_factor(handler: Handler) -> Handler:
    """Needs the Slack identity only (the second-factor pages themselves)."""
    return _marked(handler, FIRST_FACTOR)


def access_level(handler: Any) -> str:
    return getattr(handler, "vigil_access", FULL)


def route_access(request: web.Request) -> str:
    """How much sign-in the matched route needs (static files are public)."""
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return PUBLIC
    return access_level(route.handler)


def cookie_name(deps: WebDeps) -> str:
    # The __Host- prefix pins the cookie to this host, path / and HTTPS.
    return "vigil_session" if deps.local_dev else "__Host-vigil_session"


def set_session_cookie(response: web.StreamResponse, deps: WebDeps, raw_id: str) -> None:
    response.set_cookie(
        cookie_name(deps),
        raw_id,
        httponly=True,
        secure=not deps.local_dev,
        samesite="Strict",
        path="/",
    )


def clear_session_cookie(response: web.StreamResponse, deps: WebDeps) -> None:
    response.del_cookie(cookie_name(deps), path="/", secure=not deps.local_dev, samesite="Strict")


def client_ip(request: web.Request) -> str:
    return request.remote or ""


def check_csrf(request: web.Request, session: WebSession | None, form: Any) -> bool:
    """The form's token must match the session's (synchroniser token)."""
    sent = str(form.get("csrf", "")) if form is not None else ""
    return bool(session and sent) and secrets.compare_digest(sent, session.csrf_token)


def build_middleware(deps: WebDeps) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The one middleware in front of every web route."""

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await _guarded(request, handler, deps)
        except web.HTTPException as error:
            response = error
            if error.status == 404 and request.match_info.http_exception is not None:
                # No such route: the same page as an incident one may not see.
                from handlers.web.render import page  # render imports this module

                response = page(request, "not_found.html", status=404)
        except DATABASE_ERRORS as error:
            # The database is down or restarting: nothing was committed. Say so plainly.
            from handlers.web.render import page

            log.warning("web.database_unavailable", path=request.path, error=type(error).__name__)
            response = page(request, "unavailable.html", status=503)
            response.headers["Retry-After"] = "30"
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if not deps.local_dev:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return security


async def _guarded(request: web.Request, handler: Handler, deps: WebDeps) -> web.StreamResponse:
    level = route_access(request)
    if request.match_info.http_exception is not None or level == PUBLIC:
        # Public POSTs (the one-time link) check their own pre-session token.
        return await handler(request)

    raw = request.cookies.get(cookie_name(deps), "")
    now = deps.clock()
    async with deps.factory() as db, db.begin():
        row = await websessions.load(db, raw_id=raw, idle=deps.idle, now=now) if raw else None
        if row is None:
            if raw:
                audit.record(
                    db, action="session.expired", outcome=audit.REFUSED, ip=client_ip(request)
                )
    if row is None:
        return _to_sign_in(request, deps, expired=bool(raw))
    if level == FULL and row.second_factor_at is None:
        raise web.HTTPSeeOther("/totp")
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        if not check_csrf(request, row, form):
            async with deps.factory() as db, db.begin():
                audit.record(
                    db,
                    action="csrf.refused",
                    outcome=audit.REFUSED,
                    workspace_id=row.workspace_id,
                    actor=row.staff,
                    ip=client_ip(request),
                    detail=request.path[:100],
                )
            log.warning("web.csrf_refused", staff=row.staff_id, path=request.path)
            raise web.HTTPForbidden(text="This form has expired. Go back, reload and try again.")
    request[SESSION] = row
    return await handler(request)


def _to_sign_in(request: web.Request, deps: WebDeps, *, expired: bool) -> web.StreamResponse:
    response = web.HTTPSeeOther("/signin?expired=1" if expired else "/signin")
    clear_session_cookie(response, deps)
    return response


def current(request: web.Request) -> WebSession:
    """The signed-in session (set by the middleware)."""
    return request[SESSION]
