"""Every web request passes here: headers, session, sign-in level, CSRF, key-holder pages.

Routes declare how much sign-in they need with `@public` or `@first_factor`; anything
else needs the full sign-in (Slack identity and the TOTP code). So a new route is safe by
default, and a test walks the router to prove it. `@keyholder_only(action=...)` keeps a
page for the safeguarding team: anyone else gets the one 404 page, and the refusal is
audited as `action`.

What is refused here is audited here (an expired session, a form without its CSRF
token, a page for key-holders only): nothing else in `handlers/` writes the audit log.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import BodyPartReader, MultipartReader, web

from handlers.web.deps import WebDeps
from handlers.web.render import failed, integrity_failed, not_found, too_many, unavailable
from handlers.web.session import (
    REQUEST_DB,
    SESSION,
    clear_session_cookie,
    client_ip,
    cookie_name,
)
from store import audit, keyring, websessions
from store.access import is_keyholder
from store.crypto import DecryptionError, RecordKeyNotLoaded
from store.db import DATABASE_ERRORS, transaction
from store.models import Staff, WebSession

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC, FIRST_FACTOR, FULL = "public", "first_factor", "full"
_ACCESS, _KEYHOLDER_ONLY = "vigil_access", "vigil_keyholder_only"  # what the markers set
_STREAMED = "vigil_streamed_upload"
_ONE_TRANSACTION = "vigil_one_transaction"
UPLOAD = web.RequestKey("upload", MultipartReader)  # a streamed upload's remaining parts
CSRF_FIELD_MAX = 256
_NOT_LIMITED = "vigil_not_rate_limited"
_RETRIED = "vigil_retried_with_new_keys"

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


# -- what a route needs ---------------------------------------------------------------------


def _marked(handler: Handler, name: str, value: object) -> Handler:
    if inspect.ismethod(handler):  # a bound method cannot carry an attribute: wrap it
        method = handler

        async def handler(request: web.Request) -> web.StreamResponse:
            return await method(request)

    setattr(handler, name, value)
    return handler


def public(handler: Handler) -> Handler:
    """Reachable without signing in (sign-in pages, health, the Slack endpoint, static)."""
    return _marked(handler, _ACCESS, PUBLIC)


def not_rate_limited(handler: Handler) -> Handler:
    """Public, and not held to the anonymous rate limit: the Slack endpoint (every request
    signed, from Slack's few addresses) and `/healthz` (read-only, polled by monitoring)."""
    return _marked(public(handler), _NOT_LIMITED, True)


def first_factor(handler: Handler) -> Handler:
    """Needs the Slack identity only (the second-factor pages themselves)."""
    return _marked(handler, _ACCESS, FIRST_FACTOR)


def one_transaction(handler: Handler) -> Handler:
    """A GET page read and audited in the transaction the middleware loads the session in
    (`handlers.web.session.request_db`): one transaction, one connection, and the viewer
    (with their workspace id) loaded once. Committed after the handler returns (or raises
    an HTTP answer), rolled back if it fails. Only for handlers that open no transaction
    of their own, and that catch no error of a write they made."""
    return _marked(handler, _ONE_TRANSACTION, True)


@dataclass(frozen=True)
class KeyholderOnly:
    action: str  # audited when someone else asks
    about: Callable[[web.Request], str] | None  # which page, for the audit entry

    def detail(self, request: web.Request) -> str:
        about = self.about(request) if self.about else ""
        return f"{about}; not a key-holder" if about else "not a key-holder"


def keyholder_only(
    *, action: str, about: Callable[[web.Request], str] | None = None
) -> Callable[[Handler], Handler]:
    """Only for the safeguarding team (after the full sign-in): anyone else gets the one
    404 page, and the refusal is audited as `action` (with `about(request)`, if given)."""
    return lambda handler: _marked(handler, _KEYHOLDER_ONLY, KeyholderOnly(action, about))


def retried_with_new_keys(handler: Handler) -> Handler:
    """A POST served again, like a GET, when it meets a record key made by another process
    since this one loaded its keys: only for a handler that commits nothing before it has
    decrypted what it shows but the audit entry of reading it (which a second attempt
    repeats). A transfer pack, a subject access export."""
    return _marked(handler, _RETRIED, True)


def streamed_upload(handler: Handler) -> Handler:
    """A multipart upload read piece by piece by its handler, never whole: the form's
    CSRF token must be its first field, checked here; the rest is `request[UPLOAD]`."""
    return _marked(handler, _STREAMED, True)


async def _upload_csrf(request: web.Request) -> dict[str, str]:
    """The CSRF field at the head of a streamed upload (the rest left for the handler)."""
    try:
        reader = await request.multipart()
        part = await reader.next()
    except (ValueError, AssertionError, KeyError):  # not multipart, or a malformed body
        return {}
    if not isinstance(part, BodyPartReader) or part.name != "csrf":
        return {}
    value = b""
    while not part.at_eof() and len(value) <= CSRF_FIELD_MAX:
        value += await part.read_chunk(CSRF_FIELD_MAX)
    request[UPLOAD] = reader
    return {"csrf": value.decode("ascii", "replace")}


def access_level(handler: Any) -> str:
    """How much sign-in a route's handler needs: public, first_factor or full."""
    return getattr(handler, _ACCESS, FULL)


def route_access(request: web.Request) -> str:
    """How much sign-in the matched route needs (static files are public)."""
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return PUBLIC
    return access_level(route.handler)


def rate_limited(request: web.Request) -> bool:
    """Whether the request is held to the anonymous rate limit: public routes (not static
    files or the Slack endpoint) and addresses no route matches."""
    if request.match_info.http_exception is not None:
        return True
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return False
    return route_access(request) == PUBLIC and not getattr(route.handler, _NOT_LIMITED, False)


def may_see_keyholder_pages(staff: Staff) -> bool:
    """Active members of the safeguarding team."""
    return staff.active and is_keyholder(staff.role_set)


def check_csrf(request: web.Request, session: WebSession | None, form: Any) -> bool:
    """The form's token must match the session's (synchroniser token)."""
    sent = str(form.get("csrf", "")) if form is not None else ""
    return bool(session and sent) and secrets.compare_digest(sent, session.csrf_token)


# -- the middleware ---------------------------------------------------------------------------


def build_middleware(deps: WebDeps) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The one middleware in front of every web route."""

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await _with_record_keys(request, handler, deps)
        except web.HTTPException as error:
            response = error
            if error.status == 404 and request.match_info.http_exception is not None:
                response = not_found(request)  # no such route: the same page as ever
        except DATABASE_ERRORS as error:
            # The database is down or restarting: nothing was committed. Say so plainly.
            log.warning("web.database_unavailable", path=request.path, error=type(error).__name__)
            response = unavailable(request)
        except DecryptionError as error:
            # A ciphertext changed or moved (logged by store.crypto with its table, column
            # and row id), or its key is missing: refuse the page, show nothing of it.
            log.error("web.integrity_error", path=request.path[:100], error=type(error).__name__)
            response = integrity_failed(request)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # A fault of ours: the traceback goes to the log (never the request's body), the
            # person gets a plain page with the same headers as every other.
            log.exception("web.request_failed", path=request.path[:100], error=type(error).__name__)
            response = failed(request)
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


async def _with_record_keys(
    request: web.Request, handler: Handler, deps: WebDeps
) -> web.StreamResponse:
    """A page that needs a record key this process has not loaded (another process made
    it since: `store.crypto.RecordKeyNotLoaded`) loads the new record keys and is served
    again, once: GET and HEAD, and the POSTs marked `retried_with_new_keys` (the failed
    attempt committed nothing of the page's)."""
    try:
        return await _limited(request, handler, deps)
    except RecordKeyNotLoaded as missing:
        async with deps.factory() as db:
            loaded = await keyring.load_record_keys(db, deps.cipher, key_ids=[missing.key_id])
        retried = request.method in ("GET", "HEAD") or getattr(
            request.match_info.route.handler, _RETRIED, False
        )
        if not loaded or not retried:
            raise
        log.info("web.record_keys_loaded", count=loaded)
        return await _limited(request, handler, deps)


async def _limited(request: web.Request, handler: Handler, deps: WebDeps) -> web.StreamResponse:
    """Anonymous requests (`rate_limited`) spend a token of their address's bucket first;
    without one: 429, with Retry-After, counted as anonymous noise."""
    if rate_limited(request):
        wait = deps.limiter.retry_after(client_ip(request))
        if wait:
            deps.noise.count("web.rate_limited", now=deps.clock())
            return too_many(request, retry_after=wait)
    return await _guarded(request, handler, deps)


async def _guarded(request: web.Request, handler: Handler, deps: WebDeps) -> web.StreamResponse:
    level = route_access(request)
    if request.match_info.http_exception is not None or level == PUBLIC:
        # Public POSTs (the one-time link) check their own pre-session token.
        return await handler(request)
    raw = request.cookies.get(cookie_name(deps), "")
    if (
        raw
        and request.method in ("GET", "HEAD")
        and getattr(request.match_info.route.handler, _ONE_TRANSACTION, False)
    ):
        return await _in_one_transaction(request, handler, deps, raw=raw, level=level)
    return await _guarded_plain(request, handler, deps, level=level)


async def _guarded_plain(
    request: web.Request, handler: Handler, deps: WebDeps, *, level: str
) -> web.StreamResponse:
    raw = request.cookies.get(cookie_name(deps), "")
    now = deps.clock()
    async with deps.factory() as db, db.begin():
        row = await websessions.load(db, raw_id=raw, idle=deps.idle, now=now) if raw else None
    if row is None:
        if raw:  # anyone may send any cookie: counted as noise, not one audit row each
            deps.noise.count("session.expired", now=now)
        wait = deps.limiter.retry_after(client_ip(request))  # nobody signed in: anonymous
        if wait:
            return too_many(request, retry_after=wait)
        return _to_sign_in(request, deps, expired=bool(raw))
    if level == FULL and row.second_factor_at is None:
        raise web.HTTPSeeOther("/totp")
    if request.method not in ("GET", "HEAD"):
        streamed = getattr(request.match_info.route.handler, _STREAMED, False)
        form = await _upload_csrf(request) if streamed else await request.post()
        if not check_csrf(request, row, form):
            await _refused(request, deps, "csrf.refused", row.staff, detail=request.path[:100])
            log.warning("web.csrf_refused", staff=row.staff_id, path=request.path)
            raise web.HTTPForbidden(text="This form has expired. Go back, reload and try again.")
    request[SESSION] = row
    gate: KeyholderOnly | None = getattr(request.match_info.route.handler, _KEYHOLDER_ONLY, None)
    if gate is not None and not may_see_keyholder_pages(row.staff):
        await _refused(request, deps, gate.action, row.staff, detail=gate.detail(request))
        log.warning("web.keyholder_only", staff=row.staff_id, action=gate.action)
        return not_found(request)
    return await handler(request)


async def _in_one_transaction(
    request: web.Request, handler: Handler, deps: WebDeps, *, raw: str, level: str
) -> web.StreamResponse:
    """`_guarded` for a `@one_transaction` GET: the session loaded, and the page read and
    audited, in one transaction."""
    now = deps.clock()
    answer: web.StreamResponse | None = None
    async with deps.factory() as db, db.begin():
        row = await websessions.load(db, raw_id=raw, idle=deps.idle, now=now)
        if row is not None and (level != FULL or row.second_factor_at is not None):
            gate = getattr(request.match_info.route.handler, _KEYHOLDER_ONLY, None)
            if gate is None or may_see_keyholder_pages(row.staff):
                request[SESSION] = row
                request[REQUEST_DB] = db
                try:
                    answer = await handler(request)
                except web.HTTPException as http:  # a redirect or refusal: writes stay
                    answer = http
                except BaseException:
                    # Rolled back below, which would expire the session's row: keep it as
                    # loaded, so the error page (the middleware's) can still show the nav.
                    db.expunge_all()
                    raise
    if isinstance(answer, web.HTTPException):
        raise answer
    if answer is not None:
        return answer
    # Signed out, a first-factor session, or not a key-holder: the ordinary path says so
    # (and audits it) with the session's expiry already written.
    return await _guarded_plain(request, handler, deps, level=level)


async def _refused(
    request: web.Request, deps: WebDeps, action: str, staff: Staff, *, detail: str
) -> None:
    """Audit a request refused here, by `staff` (in a transaction of its own)."""
    async with transaction(deps.factory) as db:
        audit.Trail(db, actor=staff, ip=client_ip(request)).add(
            action, audit.REFUSED, detail=detail
        )


def _to_sign_in(request: web.Request, deps: WebDeps, *, expired: bool) -> web.StreamResponse:
    response = web.HTTPSeeOther("/signin?expired=1" if expired else "/signin")
    clear_session_cookie(response, deps)
    return response
