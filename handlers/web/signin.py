"""Signing in: Sign in with Slack or a one-time link, then the TOTP code; signing out."""

from __future__ import annotations

import secrets
import urllib.parse
from typing import TypeVar

import segno
import structlog
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.web.deps import COMMAND, DEPS, WebDeps
from handlers.web.oidc import JWKS, TEAM_CLAIM, USER_CLAIM, InvalidIdToken, verify_id_token
from handlers.web.render import page
from handlers.web.security import first_factor, public
from handlers.web.session import clear_session_cookie, client_ip, current, set_session_cookie
from store import totp, websessions
from store.db import transaction
from store.enums import AuditOutcome, SigninVia
from store.flows import signin

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

PRE_COOKIE = "vigil_pre"  # binds a sign-in attempt to the browser that started it
TOTP_ISSUER = "Vigil"
AnyResponse = TypeVar("AnyResponse", bound=web.StreamResponse)
LINK_USED = "This sign-in link has been used or has expired. Type /concern login for a new one."
LOCKED = (
    "Your sign-in is locked: too many wrong codes were typed today. Ask a Designated "
    "Safeguarding Lead to unlock it (on Vigil's Staff page)."
)


def _deps(request: web.Request) -> WebDeps:
    return request.app[DEPS]


def _with_pre_cookie(
    response: AnyResponse,
    deps: WebDeps,
    value: str,
    *,
    samesite: str,
    max_age: int,
    path: str,
) -> AnyResponse:
    """The response, with the short-lived cookie that binds a sign-in attempt to the
    browser that began it."""
    response.set_cookie(
        PRE_COOKIE,
        value,
        httponly=True,
        secure=not deps.local_dev,
        samesite=samesite,
        max_age=max_age,
        path=path,
    )
    return response


def _signed_in(response: AnyResponse, deps: WebDeps, raw: str, *, pre_path: str) -> AnyResponse:
    """Hand the browser its new session, and forget the sign-in attempt's cookie."""
    set_session_cookie(response, deps, raw)
    response.del_cookie(PRE_COOKIE, path=pre_path)
    return response


def _slack_app(deps: WebDeps) -> tuple[str, str]:
    """The app's client id and secret; without them the Sign in with Slack routes do not
    exist."""
    if not (deps.client_id and deps.client_secret):
        raise web.HTTPNotFound(text="Sign in with Slack is not configured")
    return deps.client_id, deps.client_secret


def _refuse(
    request: web.Request, *, via: SigninVia, outcome: AuditOutcome = AuditOutcome.REFUSED
) -> None:
    """Count a sign-in attempt that went no further (anonymous noise, not one audit row)."""
    deps = _deps(request)
    signin.refuse(deps.noise, via=via, outcome=outcome, now=deps.clock())


def _message(request: web.Request, heading: str, text: str, status: int) -> web.Response:
    return page(
        request,
        "message.html",
        status=status,
        heading=heading,
        text=text,
        link="/signin",
        link_text="Back to sign-in",
    )


@routes.get("/signin")
@public
async def signin_page(request: web.Request) -> web.Response:
    deps = _deps(request)
    return page(
        request,
        "signin.html",
        slack=bool(deps.client_id and deps.client_secret),
        expired="expired" in request.query,
        command=request.app[COMMAND],
        plain_http=deps.plain_http,
    )


# -- Sign in with Slack (OpenID Connect) --------------------------------------------------


@routes.get("/auth/slack")
@public
async def slack_start(request: web.Request) -> web.Response:
    deps = _deps(request)
    client_id, _secret = _slack_app(deps)
    browser = request.cookies.get(PRE_COOKIE) or websessions.new_secret()
    async with deps.factory() as db, db.begin():
        state, nonce = await websessions.begin_oidc(db, browser=browser, now=deps.clock())
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "scope": "openid email profile",
            "client_id": client_id,
            "state": state,
            "nonce": nonce,
            "redirect_uri": deps.redirect_uri,
        }
    )
    response = web.HTTPSeeOther(f"{deps.authorize_url}?{query}")
    # Lax, not Strict: it must come back with Slack's cross-site redirect to the callback.
    raise _with_pre_cookie(response, deps, browser, samesite="Lax", max_age=600, path="/auth/slack")


@routes.get("/auth/slack/callback")
@public
async def slack_callback(request: web.Request) -> web.Response:
    deps = _deps(request)
    client_id, client_secret = _slack_app(deps)
    code = request.query.get("code", "")
    state = request.query.get("state", "")
    browser = request.cookies.get(PRE_COOKIE, "")
    async with transaction(deps.factory) as db:
        nonce = await signin.slack_return(
            db, state=state, code=code, browser=browser, noise=deps.noise, now=deps.clock()
        )
    if nonce is None:
        return _message(
            request, "Sign-in expired", "That sign-in attempt has expired. Try again.", 400
        )
    try:
        tokens = await deps.oidc_client.openid_connect_token(
            client_id=client_id,
            client_secret=client_secret,
            code=code,
            redirect_uri=deps.redirect_uri,
        )
        claims = await verify_id_token(
            str(tokens["id_token"]), keys=request.app[JWKS], client_id=client_id, nonce=nonce
        )
        info_client = AsyncWebClient(
            token=tokens["access_token"], base_url=deps.oidc_client.base_url
        )
        info = await info_client.openid_connect_userInfo()
        if info.get(USER_CLAIM) != claims[USER_CLAIM] or info.get(TEAM_CLAIM) != claims[TEAM_CLAIM]:
            raise InvalidIdToken("userInfo does not match the id_token")
    except (SlackApiError, InvalidIdToken, KeyError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else str(error)
        log.warning("web.slack_signin_failed", reason=reason)
        _refuse(request, via=SigninVia.SLACK, outcome=AuditOutcome.FAILED)
        return _message(
            request, "Sign-in failed", "Slack could not confirm who you are. Try again.", 400
        )

    async with transaction(deps.factory) as db:
        raw = await signin.sign_in_with_slack(
            db,
            team_id=str(claims[TEAM_CLAIM]),
            user_id=str(claims[USER_CLAIM]),
            max_age=deps.max_age,
            ip=client_ip(request),
            now=deps.clock(),
        )
    if raw is None:
        return _message(
            request,
            "Not on the staff list",
            "You are not on Vigil's staff list for this school. Ask the school office.",
            403,
        )
    # A page, not a redirect: a SameSite=Strict cookie set during Slack's cross-site
    # redirect would not be sent on a further redirect, but is on a same-site click.
    return _signed_in(page(request, "continue.html"), deps, raw, pre_path="/auth/slack")


# -- the one-time link from `/concern login` --------------------------------------------


@routes.get("/login/{token}")
@public
async def login_link(request: web.Request) -> web.Response:
    deps = _deps(request)
    token = request.match_info["token"]
    async with deps.factory() as db:
        staff = await websessions.login_link_holder(db, raw=token, now=deps.clock())
    if staff is None:
        return _message(request, "Link expired", LINK_USED, 410)
    # Showing the page changes nothing (link previews must not use the link up); the
    # Continue button does, with a token only this browser holds.
    pre = websessions.new_secret()
    response = page(request, "login_confirm.html", name=staff.name, token=token, pre=pre)
    return _with_pre_cookie(response, deps, pre, samesite="Strict", max_age=300, path="/login")


@routes.post("/login/{token}")
@public
async def login_link_use(request: web.Request) -> web.Response:
    deps = _deps(request)
    form = await request.post()
    sent, held = str(form.get("pre", "")), request.cookies.get(PRE_COOKIE, "")
    if not sent or not held or not secrets.compare_digest(sent, held):
        _refuse(request, via=SigninVia.LINK)  # form token missing or from another browser
        return _message(request, "Sign-in expired", "Open the link again and press Continue.", 403)
    async with transaction(deps.factory) as db:
        raw = await signin.sign_in_with_link(
            db,
            raw=request.match_info["token"],
            max_age=deps.max_age,
            ip=client_ip(request),
            noise=deps.noise,
            now=deps.clock(),
        )
    if raw is None:
        return _message(request, "Link expired", LINK_USED, 410)
    raise _signed_in(web.HTTPSeeOther("/totp"), deps, raw, pre_path="/login")


# -- the second factor -------------------------------------------------------------------


@routes.get("/totp")
@first_factor
async def totp_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.second_factor_at is not None:
        raise web.HTTPSeeOther("/alerts")
    return await _totp_form(request)


async def _totp_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    deps = _deps(request)
    session = current(request)
    async with transaction(deps.factory) as db:
        secret = await signin.enrolment_secret(
            db, staff=session.staff, cipher=deps.cipher, now=deps.clock()
        )
    context: dict[str, object] = {"enrol": secret is not None, "error": error}
    if secret is not None:
        uri = totp.provisioning_uri(secret, account=session.staff.email, issuer=TOTP_ISSUER)
        context["qr_svg"] = segno.make(uri, error="m").svg_inline(scale=4, title="Vigil")
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return page(request, "totp.html", status=status, **context)


@routes.post("/totp")
@first_factor
async def totp_submit(request: web.Request) -> web.Response:
    deps = _deps(request)
    session = current(request)
    if session.second_factor_at is not None:
        raise web.HTTPSeeOther("/alerts")
    form = await request.post()
    async with transaction(deps.factory) as db:
        passed = await signin.second_factor(
            db,
            web_session=session,
            code=str(form.get("code", "")),
            cipher=deps.cipher,
            ip=client_ip(request),
            now=deps.clock(),
        )
    result = passed.verification
    if not result.ok:
        log.warning("web.totp_failed", staff=session.staff_id, reason=result.reason)
        deps.notify_outbox()  # repeated failures queue a DM to the person (and a lockout more)
        if result.reason == totp.Refusal.LOCKED:
            return await _totp_form(request, error=LOCKED, status=403)
        if result.reason == totp.Refusal.THROTTLED:
            message = f"Too many attempts. Wait {result.retry_after} seconds, then try again."
            return await _totp_form(request, error=message, status=429)
        message = (
            "That code has already been used. Wait for the next one."
            if result.reason == totp.Refusal.REPLAYED
            else "That code is not right. Check the time on your phone and try again."
        )
        return await _totp_form(request, error=message, status=400)
    assert passed.raw is not None
    response = web.HTTPSeeOther("/alerts")
    set_session_cookie(response, deps, passed.raw)
    raise response


@routes.post("/signout")
@first_factor
async def signout(request: web.Request) -> web.Response:
    deps = _deps(request)
    session = current(request)
    async with transaction(deps.factory) as db:
        await signin.sign_out(db, web_session=session, ip=client_ip(request), now=deps.clock())
    response = web.HTTPSeeOther("/signed-out")
    clear_session_cookie(response, deps)
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    raise response


@routes.get("/signed-out")
@public
async def signed_out(request: web.Request) -> web.Response:
    return page(
        request,
        "message.html",
        heading="Signed out",
        text="You have signed out of Vigil.",
        link="/signin",
        link_text="Sign in again",
    )
