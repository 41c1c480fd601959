"""The second factor: TOTP enrolment, verification without replay, throttling, lockout.

pyotp leaves replay protection to the caller: we store the last accepted time step and
accept a code only for a later step (OWASP ASVS 6.5.1). Failed attempts are throttled per
person in a sliding window (5 a minute), and capped per day: after `WARN_AFTER` wrong
codes in 24 hours the person is told in Slack; after `DAILY_LIMIT` their sign-in is
locked until a key-holder unlocks it, and the key-holders are told. Five a minute for
ever would otherwise let someone holding a person's Slack session guess a code within
weeks.

Each verification first locks the person's enrolment row (an UPDATE of it), so parallel
attempts are counted one after another and a code is accepted once, however many
requests carry it at the same moment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import pyotp
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, keyring, messages, outbox
from store.access import is_keyholder
from store.crypto import Cipher, bind
from store.db import rowcount
from store.models import AuthFailure, Staff, TotpEnrolment, WebSession, utcnow

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=1)
STEP_SECONDS = 30
DAY = dt.timedelta(hours=24)
WARN_AFTER = 10  # wrong codes in a day: the person is told
DAILY_LIMIT = 20  # wrong codes in a day: the sign-in is locked until a key-holder unlocks it


class Refusal(StrEnum):
    """Why a code was not accepted."""

    THROTTLED = "throttled"  # too many failures lately: wait `retry_after` seconds
    INVALID = "invalid"
    REPLAYED = "replayed"  # right, but already used
    NOT_ENROLLED = "not_enrolled"
    LOCKED = "locked"  # too many wrong codes today: a key-holder must unlock it


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
        return cipher.decrypt(existing.secret_ct, bind(TotpEnrolment.secret_ct, staff.id))
    if existing is not None:
        raise ValueError("already enrolled")
    secret = pyotp.random_base32()
    row = TotpEnrolment(staff_id=staff.id, created_at=now or utcnow(), last_step=0)
    session.add(row)
    await keyring.seal(session, cipher, row, {TotpEnrolment.secret_ct: secret})
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
    """Check a code: throttled, capped per day, once only, within one step either side.

    Commit the session whatever the answer: failures are counted in it, and the Slack
    messages a lockout sends are queued in it.
    """
    now = now or utcnow()
    # Lock the enrolment row first: parallel attempts wait here, one after another.
    locked_row = await session.execute(
        update(TotpEnrolment)
        .where(TotpEnrolment.staff_id == staff.id)
        .values(last_step=TotpEnrolment.last_step)
        .execution_options(synchronize_session=False)
    )
    if not rowcount(locked_row):
        return Verification(False, Refusal.NOT_ENROLLED)
    enrolled = await session.scalar(
        select(TotpEnrolment)
        .where(TotpEnrolment.staff_id == staff.id)
        .execution_options(populate_existing=True)
    )
    assert enrolled is not None
    if enrolled.locked_at is not None:
        return Verification(False, Refusal.LOCKED)
    recent = await _failures_since(session, staff_id=staff.id, since=now - WINDOW)
    if recent >= MAX_FAILURES:
        oldest = await session.scalar(
            select(func.min(AuthFailure.at)).where(
                AuthFailure.staff_id == staff.id, AuthFailure.at > now - WINDOW
            )
        )
        wait = int(((oldest or now) + WINDOW - now).total_seconds()) + 1
        return Verification(False, Refusal.THROTTLED, retry_after=max(1, wait))

    totp = pyotp.TOTP(cipher.decrypt(enrolled.secret_ct, bind(TotpEnrolment.secret_ct, staff.id)))
    step = _matching_step(totp, code.strip().replace(" ", ""), now)
    if step is None or step <= enrolled.last_step:
        session.add(AuthFailure(staff_id=staff.id, at=now))
        await session.flush()
        locked = await _count_the_day(session, staff=staff, enrolled=enrolled, now=now)
        if locked:
            return Verification(False, Refusal.LOCKED)
        return Verification(False, Refusal.INVALID if step is None else Refusal.REPLAYED)
    enrolled.last_step = step
    if enrolled.confirmed_at is None:
        enrolled.confirmed_at = now
    await session.execute(
        delete(AuthFailure).where(AuthFailure.staff_id == staff.id, AuthFailure.at < now - DAY)
    )
    await session.flush()
    return Verification(True)


async def _failures_since(session: AsyncSession, *, staff_id: int, since: dt.datetime) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(AuthFailure)
        .where(AuthFailure.staff_id == staff_id, AuthFailure.at > since)
    )
    return int(found or 0)


async def _count_the_day(
    session: AsyncSession, *, staff: Staff, enrolled: TotpEnrolment, now: dt.datetime
) -> bool:
    """After a wrong code: tell the person at WARN_AFTER, lock at DAILY_LIMIT (and tell
    the key-holders). True when the sign-in is now locked."""
    today = await _failures_since(session, staff_id=staff.id, since=now - DAY)
    if today == WARN_AFTER:
        _tell(session, staff, messages.second_factor_failures(count=today, locked=False), now)
    if today < DAILY_LIMIT:
        return False
    enrolled.locked_at = now
    _tell(session, staff, messages.second_factor_failures(count=today, locked=True), now)
    notice = messages.second_factor_locked(slack_user_id=staff.slack_user_id, count=today)
    keyholders = await session.scalars(
        select(Staff).where(
            Staff.workspace_id == staff.workspace_id,
            Staff.active.is_(True),
            Staff.slack_user_id.is_not(None),
            Staff.id != staff.id,
        )
    )
    for keyholder in keyholders:
        if is_keyholder(keyholder.role_set):
            _tell(session, keyholder, notice, now)
    audit.record(
        session,
        action="totp.locked",
        outcome=audit.REFUSED,
        workspace_id=staff.workspace_id,
        actor=staff,
        subject_id=staff.id,
        detail=f"{today} wrong codes in 24 hours",
        now=now,
    )
    await session.flush()
    return True


def _tell(session: AsyncSession, staff: Staff, message: messages.Message, now: dt.datetime) -> None:
    outbox.dm_each(
        session, workspace_id=staff.workspace_id, people=[staff], payload=message, now=now
    )


async def unlock(
    session: AsyncSession,
    *,
    staff_id: int,
    by: Staff,
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """A key-holder lifts a lockout: the person may sign in again (their wrong codes are
    forgotten). False if they were not locked. Audited."""
    now = now or utcnow()
    enrolled = await session.get(TotpEnrolment, staff_id)
    if enrolled is None or enrolled.locked_at is None:
        return False
    enrolled.locked_at = None
    await session.execute(delete(AuthFailure).where(AuthFailure.staff_id == staff_id))
    audit.record(session, action="totp.unlock", actor=by, subject_id=staff_id, ip=ip, now=now)
    await session.flush()
    return True


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
