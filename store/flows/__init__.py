"""Flows: each whole step a person takes, as one call that Slack and web handlers make.

A flow finds what it needs (asking `store.access` where an incident is involved), makes
every change of the step in the caller's transaction, and writes its own audit rows,
refusals included (the caller passes who is acting and from which address). Pages get
plain data back, with any text they show already decrypted: handlers and templates never
decrypt. The small queries and rules flows are made of stay in the domain
modules (`store.actions`, `store.referrals`, `store.alerts`, ...).

A web flow takes the session and a `Visit`: the signed-in member of staff, their
address, the server's time and the deployment's `Setup` (cipher, catalogue, school
configuration, public URL). Slack flows take the workspace, the person (their Slack id,
and the member of staff if they are one) and what they need of the `Setup`; a button
pressed on one of Vigil's DMs is a `Pressed` (the web view's same step:
`Pressed.on_web`).

- `incidents`: an incident's page, marking its alerts read, sharing it;
- `actions`: adding an action, with its alerts, re-categorisation and referral changes;
- `alerts`: Mark as read in Slack;
- `referrals`: the referrals board, snoozing a referral's nudges;
- `casework`: a concern's status, the caseload, search and my concerns;
- `pupils`: the pupil search and a pupil's chronology;
- `reports`: the reports and their CSV downloads;
- `admin`: the audit log and resetting an authenticator;
- `signin`: signing in and out, one-time links, the second factor;
- `concerns`: filing a concern from the Slack modal;
- `transfers`: a pupil's record to and from another school, and its receipt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.catalogue import Catalogue
from store.crypto import Cipher
from store.models import Staff
from store.school_config import SchoolConfig


@dataclass(frozen=True)
class Setup:
    """What flows need of the deployment: the key to stored text, the school's categories,
    its configuration (agencies, working time) and the web view's address for links."""

    cipher: Cipher
    catalogue: Catalogue
    school: SchoolConfig
    public_url: str


@dataclass(frozen=True)
class Visit:
    """A signed-in member of staff asking for something: who, from which address, when
    (the server's clock), in which deployment."""

    staff: Staff
    ip: str | None
    now: dt.datetime
    setup: Setup

    def trail(
        self, session: AsyncSession, *, incident_id: int | None = None, timed: bool = False
    ) -> audit.Trail:
        """The audit trail of this visit (entries dated `now` if `timed`, else as written)."""
        return audit.Trail(
            session,
            actor=self.staff,
            ip=self.ip,
            incident_id=incident_id,
            now=self.now if timed else None,
        )


@dataclass(frozen=True)
class Pressed:
    """A button that changes one row (a task's Done or Snooze, a referral's Snooze): who
    pressed which row's button (`row_id`, None if the value was not an id), on which
    message (channel, ts: updated in place; None from the web view), from which address,
    when."""

    row_id: int | None
    staff: Staff | None
    workspace_id: int
    slack_user_id: str | None
    setup: Setup
    message: tuple[str, str] | None
    now: dt.datetime
    ip: str | None = None

    @classmethod
    def on_web(cls, visit: Visit, row_id: int | None) -> Pressed:
        """The same step from the web view: the signed-in person, no Slack message."""
        return cls(
            row_id=row_id,
            staff=visit.staff,
            workspace_id=visit.staff.workspace_id,
            slack_user_id=visit.staff.slack_user_id,
            setup=visit.setup,
            message=None,
            now=visit.now,
            ip=visit.ip,
        )
