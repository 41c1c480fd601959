"""Signing people in to the web view, and reading its pages as a person does."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import weakref
from collections.abc import AsyncIterator

from sqlalchemy import select

from store import websessions
from store.db import transaction
from store.models import Staff
from testing.harness import Harness
from testing.webclient import WebUser


def shown(body: str) -> str:
    """The page's text as a person reads it (entities decoded)."""
    return html.unescape(body)


def main_of(body: str) -> str:
    """The page's own content, without the bar at the top (which names who is signed in)."""
    return body[body.index("<main") : body.index("</main>")]


# Each server's people's authenticator keys, once they have enrolled (for `remember`).
_KEYS: dict[int, tuple[weakref.ref[Harness], dict[str, str]]] = {}


def _keys(school: Harness) -> dict[str, str]:
    held = _KEYS.get(id(school))
    if held is None or held[0]() is not school:
        held = (weakref.ref(school), {})
        _KEYS[id(school)] = held
    return held[1]


async def sign_in(
    school: Harness, user_id: str, *, secret: str | None = None, remember: bool = False
) -> WebUser:
    """Signed in over HTTP: `/concern login` in Slack, its one-time link, then TOTP.

    `secret` is the person's authenticator key if they enrolled before; otherwise they
    enrol. With `remember`, the key they enrol with on this server is used the next time.
    """
    keys = _keys(school)
    if remember and secret is None:
        secret = keys.get(user_id)
    user = await school.sign_in(user_id, secret=secret)
    if remember:
        assert user.secret
        keys[user_id] = user.secret
    return user


@contextlib.asynccontextmanager
async def signed_in(
    school: Harness, user_id: str, secret: str | None = None, *, remember: bool = False
) -> AsyncIterator[WebUser]:
    """`sign_in`, signed out (the client closed) at the end of the block."""
    user = await sign_in(school, user_id, secret=secret, remember=remember)
    try:
        yield user
    finally:
        await user.close()


class People:
    """Signs staff in to the web view, keeping each one's authenticator key for next time.

    The one-time link is issued by `store.websessions` with the server's clock, not with
    `/concern login`: that command stamps its links with the real time, so they look
    days old (expired) to a server whose clock a test has moved on.
    """

    def __init__(self, school: Harness) -> None:
        self.school = school
        self.secrets: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def signed_in(self, user_id: str) -> AsyncIterator[WebUser]:
        school = self.school
        school.clock_offset += dt.timedelta(seconds=30)  # never replay a TOTP code
        async with transaction(school.server.factory) as db:
            staff = await db.scalar(select(Staff).where(Staff.slack_user_id == user_id))
            assert staff is not None
            token = await websessions.issue_login_link(db, staff=staff, now=school.now())
        user = WebUser(school.server.url, school.now)
        try:
            status, _ = await user.use_login_link(f"{school.server.url}/login/{token}")
            assert status == 200
            status, _ = await user.pass_totp(self.secrets.get(user_id))
            assert status == 200 and user.last_url.endswith("/alerts"), user.last_url
            assert user.secret is not None
            self.secrets[user_id] = user.secret
            yield user
        finally:
            await user.close()
