"""The second factor: TOTP enrolment, verification without replay, throttling.

pyotp leaves replay protection to the caller: we store the last accepted time step and
accept a code only for a later step (OWASP ASVS 6.5.1). Failed attempts are throttled per
person in a sliding window, so guessing is slow but nobody is locked out for good.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import pyotp
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.crypto import Cipher
from store.db import rowcount
from store.models import AuthFailure, Staff, TotpEnrolment, WebSession, utcnow

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=1)
STEP_SECONDS = 30


class Refusal(StrEnum):
    """Why a code was not accepted."""

    THROTTLED = "throttled"  # too many failures lately: wait `retry_after` seconds
    INVALID = "invalid"
    REPLAYED = "replayed"  # right, but already used
    NOT_ENROLLED = "not_enrolled"


@dataclass(frozen=True)
class Verification:
    """Whether a code was accepted, and if not, why."""

    ok: bool
    reason: Refusal | None = None
    retry_after: int = 0


async def enrolment(session: AsyncSession, *, staff_id: int) -> TotpEnrolment | None:
    """The person's authenticator enrolment, confirmed or not."""
    return await session.get(TotpEnrolment, staff_id)


async def start_enrolment(
    session: AsyncSession, *, staff: Staff, cipher: Cipher, now: dt.datetime | None = None
) -> str:
    """A fresh secret for someone not yet confirmed (kept until they confirm it)."""
    existing = await enrolment(session, staff_id=staff.id)
    if existing is not None and existing.confirmed_at is None:
        return cipher.decrypt(existing.secret_ct)
    if existing is not None:
        raise ValueError("already enrolled")
    secret = pyotp.random_base32()
    session.add(
        TotpEnrolment(
            staff_id=staff.id,
            secret_ct=cipher.encrypt(secret),
            created_at=now or utcnow(),
            last_step=0,
        )
    )
    await session.flush()
    return secret


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


async def verify(
    session: AsyncSession,
    *,
    staff: Staff,
    code: str,
    cipher: Cipher,
    now: dt.datetime | None = None,
) -> Verification:
    """Check a code: throttled, once only, within one step of the clock either side."""
    now = now or utcnow()
    enrolled = await enrolment(session, staff_id=staff.id)
    if enrolled is None:
        return Verification(False, Refusal.NOT_ENROLLED)
    recent = await session.scalar(
        select(func.count())
        .select_from(AuthFailure)
        .where(AuthFailure.staff_id == staff.id, AuthFailure.at > now - WINDOW)
    )
    if (recent or 0) >= MAX_FAILURES:
        oldest = await session.scalar(
            select(func.min(AuthFailure.at)).where(
                AuthFailure.staff_id == staff.id, AuthFailure.at > now - WINDOW
            )
        )
        wait = int(((oldest or now) + WINDOW - now).total_seconds()) + 1
        return Verification(False, Refusal.THROTTLED, retry_after=max(1, wait))

    totp = pyotp.TOTP(cipher.decrypt(enrolled.secret_ct))
    step = _matching_step(totp, code.strip().replace(" ", ""), now)
    if step is None or step <= enrolled.last_step:
        session.add(AuthFailure(staff_id=staff.id, at=now))
        await session.flush()
        return Verification(False, Refusal.INVALID if step is None else Refusal.REPLAYED)
    enrolled.last_step = step
    if enrolled.confirmed_at is None:
        enrolled.confirmed_at = now
    await session.execute(
        delete(AuthFailure).where(AuthFailure.staff_id == staff.id, AuthFailure.at < now - WINDOW)
    )
    await session.flush()
    return Verification(True)


def _matching_step(totp: pyotp.TOTP, code: str, now: dt.datetime) -> int | None:
    if not (code.isdigit() and len(code) == totp.digits):
        return None
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


async def reset(session: AsyncSession, *, staff_id: int, now: dt.datetime | None = None) -> bool:
    """Remove someone's enrolment and end their sessions: they enrol again at sign-in."""
    result = await session.execute(delete(TotpEnrolment).where(TotpEnrolment.staff_id == staff_id))
    await session.execute(
        update(WebSession)
        .where(WebSession.staff_id == staff_id, WebSession.ended_at.is_(None))
        .values(ended_at=now or utcnow())
    )
    return bool(rowcount(result))
