"""Anonymous noise counted, not written row by row, in the append-only audit log.

A refused sign-in link, an unknown OIDC state, a page asked for without a session: each
used to be one audit row for ever. Requests from nobody in particular are counted here
instead, by what happened, and `flush` writes one audit row per kind for the period
("412 requests"). What a known person does is still audited one row at a time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.enums import AuditOutcome
from store.models import utcnow


class AnonymousNoise:
    """Counts anonymous requests by (action, outcome) until `flush`."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, AuditOutcome]] = Counter()
        self._since: dt.datetime | None = None

    def count(
        self, action: str, outcome: AuditOutcome = audit.REFUSED, *, now: dt.datetime | None = None
    ) -> None:
        """One more anonymous request of this kind."""
        if self._since is None:
            self._since = now or utcnow()
        self._counts[(action, outcome)] += 1

    @property
    def pending(self) -> int:
        """Requests counted since the last flush."""
        return sum(self._counts.values())

    def flush(self, session: AsyncSession, *, now: dt.datetime | None = None) -> int:
        """Write one audit row per kind counted (in the session's transaction); how many."""
        now = now or utcnow()
        since = self._since or now
        written = 0
        for (action, outcome), total in sorted(self._counts.items()):
            audit.record(
                session,
                action=action[:40],
                outcome=outcome,
                detail=f"{total} anonymous requests since {since:%Y-%m-%d %H:%M:%S} UTC",
                now=now,
            )
            written += 1
        self._counts.clear()
        self._since = None
        return written
