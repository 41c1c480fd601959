"""What a technician is told when Vigil cannot start: one line, and what to do about it.

A wrong PostgreSQL role, Slack out of reach, a bad bot token or a port in use are not
bugs: a traceback helps nobody. `vigil serve`, `vigil db upgrade` and `vigil import` turn
them into a `StartupError`, which the command prints as one line and exits 1.
"""

from __future__ import annotations

import errno
import socket

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: Slack's answers meaning the token itself is no good (revoked, wrong, app removed).
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
#: Network trouble on the way to Slack (or anywhere): nothing was answered.
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


#: What the S3 client raises (an S3 store's requests: `store.documents.s3`).
S3_ERRORS = (BotoCoreError, ClientError)
#: What reaching a file store at start-up may raise (`FileStore.check`).
FILE_STORE_ERRORS = (*S3_ERRORS, TimeoutError, OSError)
_S3_REFUSED = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
)
_S3_NO_BUCKET = frozenset({"404", "NoSuchBucket", "NotFound"})
_S3_WRONG_REGION = frozenset({"301", "PermanentRedirect", "AuthorizationHeaderMalformed"})


class StartupError(Exception):
    """Vigil cannot start (or reach what it needs); the message says what to do."""


def first_line(error: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's wrapping and background link."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if text.startswith("(") and ") " in text:
        text = text.split(") ", 1)[1]
    return text


def _sqlstate(error: BaseException) -> str:
    return str(getattr(getattr(error, "orig", None), "sqlstate", None) or "")


def database_problem(error: BaseException, url: str) -> str:
    """One line for a database that cannot be used: where, why, and what to check."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"cannot use the database in VIGIL_DATABASE_URL ({first_line(error)})"
    if parsed.get_backend_name() == "sqlite":
        return (
            f"cannot open the SQLite database {parsed.database} ({first_line(error)}): "
            "check that its directory exists and that this user may write there "
            "(VIGIL_DATABASE_URL)"
        )
    where = f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}"
    state = _sqlstate(error)
    if state.startswith("28"):
        return (
            f"{where} refused role {parsed.username!r}: {first_line(error)}. "
            "Check the user name and password in VIGIL_DATABASE_URL"
        )
    if state == "3D000":
        return (
            f"{where} has no database {parsed.database!r}: create it "
            f"(createdb -O {parsed.username or 'vigil'} {parsed.database}) or correct the "
            "name in VIGIL_DATABASE_URL"
        )
    if isinstance(error, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(error, TimeoutError):
        reason = "no answer"
    else:
        reason = first_line(error)
    return (
        f"cannot connect to {where} ({reason}): is PostgreSQL running there, and are the "
        "host and port in VIGIL_DATABASE_URL right?"
    )


def slack_problem(error: BaseException, *, api_url: str, token_name: str) -> str:
    """One line for a Slack that refuses the token or cannot be reached."""
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
        if code in TOKEN_ERRORS:
            return (
                f"Slack refused {token_name} ({code}): copy the token again from "
                "api.slack.com/apps → your app (the Bot User OAuth Token is under OAuth & "
                "Permissions, the app-level token under Basic Information), and reinstall "
                "the app to the workspace if it was removed"
            )
        return f"Slack refused to start Vigil's connection ({code}); see api.slack.com/apps"
    reason = type(error).__name__
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = f"cannot connect to {error.host}:{error.port}"
    elif isinstance(error, TimeoutError):
        reason = "no answer in time"
    return (
        f"cannot reach Slack at {api_url} ({reason}): check that this server can make "
        "HTTPS connections out (a firewall or proxy?) and VIGIL_SLACK_API_URL"
    )


def listen_problem(error: OSError, *, host: str, port: int) -> str:
    """One line for a port Vigil cannot listen on."""
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is in use (another `vigil serve`, or another "
            "program): stop that, or set VIGIL_PORT to a free port"
        )
    if error.errno == errno.EACCES:
        return (
            f"cannot listen on {where}: not allowed (ports below 1024 need privileges); "
            "use a port above 1024 behind the reverse proxy (VIGIL_PORT)"
        )
    if isinstance(error, socket.gaierror) or error.errno in (
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    ):
        return f"cannot listen on {where}: VIGIL_HOST is not an address of this machine"
    return f"cannot listen on {where}: {error.strerror or error}"


def file_store_problem(error: BaseException, *, files_url: str, endpoint_url: str) -> str:
    """One line for an S3 bucket (`VIGIL_FILES_URL=s3://...`) that cannot be used."""
    where = f"{files_url} at {endpoint_url or 'AWS'}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            f"no credentials for the file store {where}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or give this server a role that may "
            "use the bucket"
        )
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "")) or "no code"
        if code in _S3_REFUSED:
            return (
                f"the file store {where} refused Vigil's credentials ({code}): check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they "
                "may read and write the bucket"
            )
        if code in _S3_NO_BUCKET:
            return (
                f"the file store {where} has no such bucket: create it, or correct the "
                "bucket in VIGIL_FILES_URL"
            )
        if code in _S3_WRONG_REGION:
            return (
                f"the bucket of the file store {where} is in another region ({code}): set "
                "VIGIL_S3_REGION to the bucket's region"
            )
        return f"the file store {where} refused to start ({code}); check VIGIL_FILES_URL"
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        reason = "no answer in time" if "Timeout" in type(error).__name__ else "cannot connect"
    else:
        reason = first_line(error)
    return (
        f"cannot reach the file store {where} ({reason}): check VIGIL_S3_ENDPOINT_URL (for "
        "a store that is not AWS) and that this server can connect to it"
    )
