"""Web view sessions, one-time sign-in links and Sign in with Slack requests.

Only hashes of secrets are stored: a database dump does not yield a usable session,
link or state. Sessions end after `idle` without a request and, whatever happens, at
`expires_at` (an absolute limit from sign-in). A new session id is issued when the second
factor is passed (no session fixation), and sign-out ends the session server-side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import rowcount
from store.enums import SigninVia
from store.models import LoginToken, OidcRequest, Staff, WebSession, utcnow

LOGIN_LINK_TTL = dt.timedelta(minutes=5)
OIDC_TTL = dt.timedelta(minutes=10)
MAX_OIDC_PENDING = 1000  # Sign in with Slack attempts awaiting Slack's answer, at most
TOUCH_EVERY = dt.timedelta(seconds=10)  # write last_seen at most this often


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh random secret for a cookie, link or state."""
    return secrets.token_urlsafe(32)


async def create(
    session: AsyncSession,
    *,
    staff: Staff,
    via: SigninVia,
    max_age: dt.timedelta,
    now: dt.datetime | None = None,
    second_factor: bool = False,
    expires_at: dt.datetime | None = None,
) -> tuple[str, WebSession]:
    """A new session; returns the raw id for the cookie (never stored)."""
    now = now or utcnow()
    raw = new_secret()
    row = WebSession(
        id_hash=digest(raw),
        workspace_id=staff.workspace_id,
        staff_id=staff.id,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at or now + max_age,
        second_factor_at=now if second_factor else None,
        csrf_token=new_secret(),
        via=via,
    )
    session.add(row)
    await session.flush()
    return raw, row


async def load(
    session: AsyncSession, *, raw_id: str, idle: dt.timedelta, now: dt.datetime | None = None
) -> WebSession | None:
    """The live session for a cookie value, touched; None if unknown, ended or expired."""
    now = now or utcnow()
    row = await session.get(WebSession, digest(raw_id))
    if row is None or row.ended_at is not None or not row.staff.active:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        row.ended_at = now
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


async def promote(
    session: AsyncSession, *, old: WebSession, now: dt.datetime | None = None
) -> tuple[str, WebSession]:
    """After the second factor: end the old session, issue a new id (same hard limit)."""
    now = now or utcnow()
    old.ended_at = now
    return await create(
        session,
        staff=old.staff,
        via=SigninVia(old.via),
        max_age=dt.timedelta(0),
        expires_at=old.expires_at,
        now=now,
        second_factor=True,
    )


async def end(session: AsyncSession, *, row: WebSession, now: dt.datetime | None = None) -> None:
    """Sign-out: the session is over, whatever the cookie says."""
    row.ended_at = now or utcnow()


async def issue_login_link(
    session: AsyncSession, *, staff: Staff, now: dt.datetime | None = None
) -> str:
    """A single-use sign-in token bound to this person, valid for five minutes."""
    now = now or utcnow()
    raw = new_secret()
    session.add(
        LoginToken(
            token_hash=digest(raw),
            workspace_id=staff.workspace_id,
            staff_id=staff.id,
            created_at=now,
            expires_at=now + LOGIN_LINK_TTL,
        )
    )
    await session.flush()
    return raw


async def peek_login_link(
    session: AsyncSession, *, raw: str, now: dt.datetime | None = None
) -> LoginToken | None:
    """The unused, unexpired token for `raw`, without using it."""
    now = now or utcnow()
    token = await session.get(LoginToken, digest(raw))
    if token is None or token.used_at is not None or token.expires_at <= now:
        return None
    return token


async def login_link_holder(
    session: AsyncSession, *, raw: str, now: dt.datetime | None = None
) -> Staff | None:
    """Whom an unused, unexpired link is for, without using it."""
    token = await peek_login_link(session, raw=raw, now=now)
    return await session.get(Staff, token.staff_id) if token else None


async def redeem_login_link(
    session: AsyncSession, *, raw: str, now: dt.datetime | None = None
) -> Staff | None:
    """Use the token (once: a concurrent second use finds it gone) → its person."""
    now = now or utcnow()
    staff_id = await session.scalar(
        update(LoginToken)
        .where(
            LoginToken.token_hash == digest(raw),
            LoginToken.used_at.is_(None),
            LoginToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(LoginToken.staff_id)
    )
    if staff_id is None:
        return None
    staff = await session.get(Staff, staff_id)
    return staff if staff is not None and staff.active else None


async def begin_oidc(
    session: AsyncSession, *, browser: str, now: dt.datetime | None = None
) -> tuple[str, str]:
    """A state and nonce for one Sign in with Slack attempt, bound to this browser."""
    now = now or utcnow()
    state, nonce = new_secret(), new_secret()
    session.add(
        OidcRequest(
            state_hash=digest(state),
            nonce=nonce,
            browser_hash=digest(browser),
            created_at=now,
            expires_at=now + OIDC_TTL,
        )
    )
    await session.flush()
    await purge_oidc(session, now=now)
    return state, nonce


async def purge_oidc(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Forget expired Sign in with Slack attempts, and the oldest beyond `MAX_OIDC_PENDING`
    (anonymous requests make them: the table never grows past that). How many went."""
    now = now or utcnow()
    expired = await session.execute(delete(OidcRequest).where(OidcRequest.expires_at < now))
    keep = (
        select(OidcRequest.state_hash)
        .order_by(OidcRequest.created_at.desc(), OidcRequest.state_hash)
        .limit(MAX_OIDC_PENDING)
        .scalar_subquery()
    )
    surplus = await session.execute(
        delete(OidcRequest)
        .where(OidcRequest.state_hash.not_in(keep))
        .execution_options(synchronize_session=False)
    )
    return rowcount(expired) + rowcount(surplus)


async def finish_oidc(
    session: AsyncSession, *, state: str, browser: str, now: dt.datetime | None = None
) -> str | None:
    """The nonce for a returning state (used once, same browser, in time), else None."""
    now = now or utcnow()
    row = await session.scalar(select(OidcRequest).where(OidcRequest.state_hash == digest(state)))
    if row is None:
        return None
    await session.delete(row)
    if row.expires_at <= now or not secrets.compare_digest(row.browser_hash, digest(browser)):
        return None
    return row.nonce
