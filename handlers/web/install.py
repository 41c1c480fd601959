"""The "Add to Slack" page and Slack's redirect back (OAuth mode only).

`/slack/install` issues a single-use state (stored in the database, expiring), puts it in
a cookie only this browser holds, and shows the "Add to Slack" link. Slack sends the
browser back to `/slack/oauth_redirect`, where Bolt's `AsyncOAuthFlow` checks the state
against that cookie and uses it up, exchanges the code (`oauth.v2.access`) and saves the
installation (`bot.installations.InstallationStore`). Both pages are public and held to
the anonymous rate limit; neither shows anything but the workspace's name.
"""

from __future__ import annotations

from aiohttp import web
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest

from handlers.web.deps import DEPS
from handlers.web.render import page
from handlers.web.security import public

OAUTH_FLOW = web.AppKey("oauth_flow", AsyncOAuthFlow)
REFUSED = {
    "access_denied": "The installation was cancelled in Slack.",
    "invalid_browser": "This link was opened in another browser, or it has expired. "
    "Start again from the Add to Slack page.",
    "invalid_state": "This link has already been used, or it has expired. "
    "Start again from the Add to Slack page.",
}


def register_install(app: web.Application, flow: AsyncOAuthFlow) -> None:
    """Serve the install page and Slack's redirect with Bolt's OAuth flow."""
    app[OAUTH_FLOW] = flow
    app.router.add_get(flow.install_path, install_page)
    app.router.add_get(flow.redirect_uri_path, oauth_redirect)


def _bolt_request(request: web.Request) -> AsyncBoltRequest:
    return AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))


@public
async def install_page(request: web.Request) -> web.Response:
    """ "Add to Slack": a fresh state, kept in this browser's cookie for the redirect."""
    flow = request.app[OAUTH_FLOW]
    bolt_request = _bolt_request(request)
    state = await flow.issue_new_state(bolt_request)
    url = await flow.build_authorize_url(state, bolt_request)
    response = page(
        request,
        "message.html",
        heading="Add Vigil to Slack",
        text="Install Vigil in your school's Slack workspace (or, for an Enterprise Grid "
        "organisation, in the whole organisation). You need to be allowed to install apps.",
        link=url,
        link_text="Add to Slack",
    )
    response.set_cookie(
        flow.settings.state_cookie_name,
        state,
        max_age=flow.settings.state_expiration_seconds,
        path=flow.redirect_uri_path,
        httponly=True,
        secure=not request.app[DEPS].local_dev,
        samesite="Lax",
    )
    return response


@public
async def oauth_redirect(request: web.Request) -> web.Response:
    """Slack's redirect: the state checked and used up, the installation saved."""
    flow = request.app[OAUTH_FLOW]
    outcome = await flow.handle_callback(_bolt_request(request))
    if outcome.status == 200:
        response = page(
            request,
            "message.html",
            heading="Vigil is installed",
            text=f"Vigil now serves {outcome.body or 'your workspace'}. Import the school's "
            "staff and pupils, then staff can type /concern in Slack.",
        )
    else:
        reason = str(outcome.body)
        response = page(
            request,
            "message.html",
            status=400 if outcome.status < 500 else 500,
            heading="Vigil was not installed",
            text=REFUSED.get(
                reason,
                "Slack did not complete the installation. Start again from the Add to Slack page.",
            ),
            link=flow.install_path,
            link_text="Start again",
        )
    response.del_cookie(flow.settings.state_cookie_name, path=flow.redirect_uri_path)
    return response
