"""A local stand-in for the Slack Web API and Socket Mode.

Vigil never talks to the real Slack in tests, demos or benchmarks. Instead a
:class:`SlackStandIn` runs an aiohttp server on 127.0.0.1 and the app points
``AsyncWebClient(token=..., base_url=standin.api_url)`` at it. The stand-in:

* answers the Web API methods Vigil uses with Slack-shaped JSON and Slack's
  documented error codes (``invalid_auth``, ``channel_not_found``,
  ``exchanged_trigger_id``, ``hash_conflict``, ``invalid_arguments`` ...);
* keeps the state a test wants to assert on (:attr:`SlackStandIn.views`,
  :attr:`SlackStandIn.messages`, :attr:`SlackStandIn.home_views` ...);
* records every call (:attr:`SlackStandIn.calls`), including failed ones;
* injects faults on request: HTTP statuses with ``Retry-After``, hangs,
  connection resets, ``ok: false`` errors and Slack-style rate limits;
* serves a Socket Mode websocket that slack_sdk's ``SocketModeClient`` (and so
  Bolt's ``AsyncSocketModeHandler``) connects to, and can push envelopes to it;
* serves ``response_url`` endpoints handed out by :mod:`testing.simulator`;
* plays Slack's side of "Sign in with Slack" (OpenID Connect): the browser's
  ``/openid/connect/authorize`` redirect, ``openid.connect.token``,
  ``openid.connect.userInfo`` and the JWKS at ``/openid/connect/keys``, with
  RS256 id_tokens and hooks to issue tampered ones (:meth:`SlackStandIn.oidc_tamper`).
* plays Slack's side of installing the app in many workspaces (OAuth v2): more
  workspaces and Enterprise Grid orgs (:meth:`SlackStandIn.add_team`), the browser's
  ``/oauth/v2/authorize`` redirect, ``oauth.v2.access`` handing out a bot token per
  installation, ``auth.test`` and ``team.info`` answering for each token's workspace,
  and revoked tokens (:meth:`SlackStandIn.uninstall`).

Request bodies can contain children's names, so nothing here logs them: only
method names and statuses are logged, at DEBUG level.

One module per Slack API family, as bolt-python's ``tests/mock_web_api_server/`` is
split: ``users`` (``auth.test``, ``users.*``), ``views`` (``views.*``), ``chat``
(``chat.*``, ``conversations.*``, response URLs), ``oidc`` (Sign in with Slack, signed
with ``tokens``), ``install`` (OAuth v2 installs), ``socket_mode``; ``blocks`` checks
Block Kit limits, ``calls`` records calls, ``faults`` injects faults and rate limits,
``core`` serves the Web API, and ``server`` composes them into :class:`SlackStandIn`.
``python -m testing.standin --port 8765`` serves one until Ctrl-C.
"""

from testing.standin.blocks import validate_blocks, validate_view
from testing.standin.calls import RecordedCall, SlackApiFailure
from testing.standin.core import APP_ID, BOT_ID, WORKSPACE_URL
from testing.standin.oidc import (
    ID_TOKEN_TTL,
    OIDC_ISSUER,
    OIDC_SCOPES,
    OIDC_TAMPER_KINDS,
    OTHER_CLIENT_ID,
    OTHER_ISSUER,
    OTHER_TEAM_ID,
    OTHER_TEAM_NAME,
    TEAM_ID_CLAIM,
    USER_ID_CLAIM,
)
from testing.standin.server import SlackStandIn, main, run_standin

__all__ = [
    "APP_ID",
    "BOT_ID",
    "ID_TOKEN_TTL",
    "OIDC_ISSUER",
    "OIDC_SCOPES",
    "OIDC_TAMPER_KINDS",
    "OTHER_CLIENT_ID",
    "OTHER_ISSUER",
    "OTHER_TEAM_ID",
    "OTHER_TEAM_NAME",
    "TEAM_ID_CLAIM",
    "USER_ID_CLAIM",
    "WORKSPACE_URL",
    "RecordedCall",
    "SlackApiFailure",
    "SlackStandIn",
    "main",
    "run_standin",
    "validate_blocks",
    "validate_view",
]
