"""Rendering pages: every template gets the signed-in person, the CSRF token, the idle
time-out and the school's way of writing times. `not_found` is the one 404 page."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from handlers.web import pdf
from handlers.web.deps import DEPS
from handlers.web.session import SESSION
from store.access import is_keyholder, may_see_trust

SCHOOL_TIME = ZoneInfo("Europe/London")


def when(value: dt.datetime | None, zone: ZoneInfo = SCHOOL_TIME) -> str:
    """A time as the school reads it: `Tue 4 Mar 2025, 14:05` (the school's time zone)."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def day(value: dt.date | None) -> str:
    """A date as the school reads it: `4 Mar 2025`."""
    return "" if value is None else f"{value.day} {value:%b %Y}"


def month(value: dt.date) -> str:
    """A month as the school reads it: `Mar 2025`."""
    return f"{value:%b %Y}"


def zone(request: web.Request) -> ZoneInfo:
    """The school's time zone (its configuration's `working_time.timezone`)."""
    deps = request.app[DEPS]
    session = request.get(SESSION)
    config = deps.school_of(session.staff.workspace_id).config if session else deps.school
    return config.working_time.zone


def formats(request: web.Request) -> dict[str, Callable[..., str]]:
    """`when` (in the school's time zone) and `day`, for a template."""
    return {"when": functools.partial(when, zone=zone(request)), "day": day}


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render `template` with the session's details added."""
    session = request.get(SESSION)
    deps = request.app[DEPS]
    context.setdefault("me", session.staff if session else None)
    context.setdefault("csrf", session.csrf_token if session else "")
    context.setdefault("keyholder", bool(session and is_keyholder(session.staff.role_set)))
    context.setdefault("signed_in", bool(session and session.second_factor_at))
    context.setdefault("trust_lead", bool(session and may_see_trust(session.staff)))
    context.setdefault("idle_seconds", int(deps.idle.total_seconds()))
    for name, format_ in formats(request).items():
        context.setdefault(name, format_)
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def not_found(request: web.Request) -> web.Response:
    """The one 404 page: it never says whether the thing exists."""
    return page(request, "not_found.html", status=404)


def unavailable(request: web.Request) -> web.Response:
    """The database is down or restarting: nothing was saved; try again shortly."""
    response = page(request, "unavailable.html", status=503)
    response.headers["Retry-After"] = "30"
    return response


def too_many(request: web.Request, *, retry_after: int) -> web.Response:
    """Too many requests from this address without signing in: wait, then try again."""
    response = page(
        request,
        "message.html",
        status=429,
        heading="Too many requests",
        text=f"Too many requests from your network. Wait {retry_after} seconds, then try again.",
        link="/signin",
        link_text="Back to sign-in",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def integrity_failed(request: web.Request) -> web.StreamResponse:
    """A stored record that does not decrypt where it is (moved, changed, or its key gone)."""
    return page(
        request,
        "message.html",
        status=500,
        heading="This record cannot be shown",
        text="Part of it failed its integrity check (it does not belong where it is stored), "
        "so nothing of it was shown. Tell whoever looks after Vigil at your school: the "
        "log names what failed.",
        link="/alerts",
        link_text="Back to my alerts",
    )


def failed(request: web.Request) -> web.StreamResponse:
    """Something went wrong on our side (a 500): nothing about what, never a traceback."""
    try:
        return page(
            request,
            "message.html",
            status=500,
            heading="Something went wrong",
            text="Vigil could not show this page. Try again; if it keeps happening, tell "
            "whoever looks after Vigil at your school.",
            link="/alerts",
            link_text="Back to my alerts",
        )
    except Exception:  # the page itself failed: plain text, still with the headers
        return web.Response(status=500, text="Something went wrong.")


def pdf_not_made(
    request: web.Request, error: pdf.PdfBusy | pdf.PdfUnavailable, *, unavailable: str
) -> web.Response:
    """The 503 page for a PDF that cannot be made now: the pool is busy (try again in a
    few seconds, `Retry-After`), or this server cannot make PDFs (`unavailable` says what
    to do instead)."""
    if isinstance(error, pdf.PdfBusy):
        response = page(
            request,
            "message.html",
            status=503,
            heading="Busy making PDFs",
            text="Vigil is making several PDFs just now. Try again in a few seconds.",
        )
        response.headers["Retry-After"] = "5"
        return response
    return page(request, "message.html", status=503, heading="PDF not available", text=unavailable)
