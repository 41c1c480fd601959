"""The signed-in session of a request (loaded once, by the security middleware), and its
cookie."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web.deps import DEPS, WebDeps
from store.client_address import client_address
from store.flows import Visit
from store.models import Staff, WebSession

SESSION = web.RequestKey("session", WebSession)
REQUEST_DB = web.RequestKey("request_db", AsyncSession)  # a `@one_transaction` page's
VISIT = web.RequestKey("visit", Visit)  # `visit(request)`, made once


def request_db(request: web.Request) -> AsyncSession:
    """The transaction the middleware loaded the session in (`@one_transaction` pages)."""
    return request[REQUEST_DB]


def current(request: web.Request) -> WebSession:
    """The signed-in session (set by the middleware)."""
    return request[SESSION]


def viewer(request: web.Request) -> Staff:
    """The signed-in member of staff (loaded with the session: never looked up again)."""
    return request[SESSION].staff


def client_ip(request: web.Request) -> str:
    """The client's address, for the audit log and the rate limit: the connection's own,
    or behind a proxy named in `VIGIL_TRUSTED_PROXIES` the one its `X-Forwarded-For`
    gives (`store.client_address.client_address`)."""
    proxies = request.app[DEPS].trusted_proxies
    if not proxies:
        return request.remote or ""
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), proxies)


def visit(request: web.Request) -> Visit:
    """The signed-in member of staff asking, from where and when: what flows are given.

    Made once per request: the staff member the middleware loaded with the session, and
    their school's setup, are not looked up again (nor the clock read twice)."""
    made = request.get(VISIT)
    if made is None or made.staff is not viewer(request):
        deps = request.app[DEPS]
        staff = viewer(request)
        made = Visit(staff, client_ip(request), deps.clock(), deps.setup_for(staff.workspace_id))
        request[VISIT] = made
    return made


def cookie_name(deps: WebDeps) -> str:
    """The session cookie's name: the __Host- prefix pins it to this host, path / and HTTPS."""
    return "vigil_session" if deps.local_dev else "__Host-vigil_session"


def set_session_cookie(response: web.StreamResponse, deps: WebDeps, raw_id: str) -> None:
    """Hand the browser its session id (never readable by scripts, sent same-site only)."""
    response.set_cookie(
        cookie_name(deps),
        raw_id,
        httponly=True,
        secure=not deps.local_dev,
        samesite="Strict",
        path="/",
    )


def clear_session_cookie(response: web.StreamResponse, deps: WebDeps) -> None:
    """Tell the browser to forget its session id."""
    response.del_cookie(cookie_name(deps), path="/", secure=not deps.local_dev, samesite="Strict")
