"""Signing in and out of the web view, each step with its audit entry (OWASP ASVS V16:
every sign-in attempt is logged, the secrets never are).

Sign in with Slack or a one-time link from `/concern login` starts a first-factor
session; the authenticator code (enrolled on first use) completes it with a new session
id. `store.websessions` and `store.totp` hold the rules; these are the whole steps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, totp, websessions, workspaces
from store.crypto import Cipher
from store.enums import AuditOutcome, SigninVia
from store.models import Staff, WebSession
from store.noise import AnonymousNoise
from store.staff import get_staff_by_slack_id


async def start_session(
    session: AsyncSession,
    *,
    staff: Staff,
    via: SigninVia,
    max_age: dt.timedelta,
    ip: str | None,
    now: dt.datetime,
) -> str:
    """A first-factor session for `staff`, audited; the raw id for the cookie."""
    raw, _row = await websessions.create(session, staff=staff, via=via, max_age=max_age, now=now)
    audit.Trail(session, actor=staff, ip=ip).add(f"signin.{via}")
    return raw


def refuse(
    noise: AnonymousNoise,
    *,
    via: SigninVia,
    outcome: AuditOutcome = audit.REFUSED,
    now: dt.datetime | None = None,
) -> None:
    """Count a sign-in attempt that went no further: nobody is signed in, so it is
    anonymous noise, written to the audit log as one row per kind and period."""
    noise.count(f"signin.{via}", outcome, now=now)


async def slack_return(
    session: AsyncSession,
    *,
    state: str,
    code: str,
    browser: str,
    noise: AnonymousNoise,
    now: dt.datetime,
) -> str | None:
    """The nonce of the Sign in with Slack attempt Slack sent back (once, to the browser
    that began it, in time); None, counted as anonymous noise, for anything else."""
    nonce = (
        await websessions.finish_oidc(session, state=state, browser=browser, now=now)
        if state
        else None
    )
    if nonce is None or not code:  # state missing, used, expired or from another browser
        refuse(noise, via=SigninVia.SLACK, now=now)
        return None
    return nonce


async def sign_in_with_slack(
    session: AsyncSession,
    *,
    team_id: str,
    user_id: str,
    max_age: dt.timedelta,
    ip: str | None,
    now: dt.datetime,
) -> str | None:
    """A session for the member of staff Slack vouched for; None, audited, if the school
    has no such (active) member of staff."""
    workspace = await workspaces.get_by_team(session, team_id=team_id)
    staff = (
        await get_staff_by_slack_id(session, workspace_id=workspace.id, slack_user_id=user_id)
        if workspace
        else None
    )
    if staff is None:
        trail = audit.Trail(
            session, ip=ip, workspace_id=workspace.id if workspace else None, actor_slack_id=user_id
        )
        trail.add("signin.slack", audit.REFUSED, detail="not on the staff roster")
        return None
    return await start_session(
        session, staff=staff, via=SigninVia.SLACK, max_age=max_age, ip=ip, now=now
    )


async def sign_in_with_link(
    session: AsyncSession,
    *,
    raw: str,
    max_age: dt.timedelta,
    ip: str | None,
    noise: AnonymousNoise,
    now: dt.datetime,
) -> str | None:
    """Use a one-time link (once) for a session; None, counted as anonymous noise, if it
    is spent or unknown."""
    staff = await websessions.redeem_login_link(session, raw=raw, now=now)
    if staff is None:
        refuse(noise, via=SigninVia.LINK, now=now)
        return None
    return await start_session(
        session, staff=staff, via=SigninVia.LINK, max_age=max_age, ip=ip, now=now
    )


async def issue_login_link(session: AsyncSession, *, staff: Staff, now: dt.datetime) -> str:
    """A one-time sign-in link's token for `staff` (`/concern login`), audited."""
    token = await websessions.issue_login_link(session, staff=staff, now=now)
    audit.Trail(session, actor=staff).add("login_link.issued")
    return token


async def enrolment_secret(
    session: AsyncSession, *, staff: Staff, cipher: Cipher, now: dt.datetime
) -> str | None:
    """The authenticator secret to show someone not yet enrolled; None once they are."""
    enrolled = await totp.enrolment(session, staff_id=staff.id)
    if enrolled is None or enrolled.confirmed_at is None:
        return await totp.start_enrolment(session, staff=staff, cipher=cipher, now=now)
    return None


@dataclass(frozen=True)
class SecondFactor:
    verification: totp.Verification
    raw: str | None  # the new session's id for the cookie, when the code was right


async def second_factor(
    session: AsyncSession,
    *,
    web_session: WebSession,
    code: str,
    cipher: Cipher,
    ip: str | None,
    now: dt.datetime,
) -> SecondFactor:
    """Check the code; if right, end the first-factor session and start a full one."""
    row = await session.merge(web_session)
    enrolled = await totp.enrolment(session, staff_id=row.staff_id)
    first_time = enrolled is not None and enrolled.confirmed_at is None
    result = await totp.verify(session, staff=row.staff, code=code, cipher=cipher, now=now)
    trail = audit.Trail(session, actor=row.staff, ip=ip)
    if not result.ok:
        trail.add("signin.totp", audit.FAILED, detail=result.reason)
        return SecondFactor(result, None)
    raw, _new = await websessions.promote(session, old=row, now=now)
    trail.add("totp.enrol" if first_time else "signin.totp")
    return SecondFactor(result, raw)


async def sign_out(
    session: AsyncSession, *, web_session: WebSession, ip: str | None, now: dt.datetime
) -> None:
    """End the session, whatever the cookie says, audited."""
    row = await session.merge(web_session)
    await websessions.end(session, row=row, now=now)
    audit.Trail(session, actor=row.staff, ip=ip).add("signout")
