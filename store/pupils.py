"""The pupil roster: search for the modal's typeahead."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Pupil
from store.staff import active_staff_exists

MAX_OPTIONS = 100  # Slack shows at most 100 options


def fold(text: str) -> str:
    """Lower-case, accent-free text for matching ("Zoë" matches "zoe")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_text(*, upn: str, forename: str, surname: str, preferred_name: str | None) -> str:
    """The text a pupil is found by: names, preferred name and UPN."""
    parts = [fold(p) for p in (forename, preferred_name or "", surname, upn) if p]
    # "Smith-Jones" and "O'Neill" are found by "jones" and "neill" as well as whole.
    pieces = [re.sub(r"[-'’.]", " ", p) for p in parts if re.search(r"[-'’.]", p)]
    return " " + " ".join(parts + pieces) + " "


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class PupilMatch:
    """What the typeahead shows of a pupil (no more is loaded per keystroke)."""

    id: int
    forename: str
    surname: str
    preferred_name: str | None
    year_group: str
    registration_group: str

    @property
    def display_name(self) -> str:
        preferred = f" ({self.preferred_name})" if self.preferred_name else ""
        return f"{self.forename}{preferred} {self.surname}"


async def search(
    session: AsyncSession,
    *,
    workspace_id: int,
    requester_slack_id: str,
    query: str,
    limit: int = MAX_OPTIONS,
) -> Sequence[PupilMatch]:
    """Pupils whose names or UPN start with every word of `query`, for active staff only.

    Anyone who is not active staff in this workspace gets nothing: the roster is not
    for browsing by guests.
    """
    words = [w for w in fold(query).split() if w][:5]
    if not words:
        return []
    is_staff = active_staff_exists(workspace_id=workspace_id, slack_user_id=requester_slack_id)
    conditions = [Pupil.search_text.like(f"% {_escape_like(word)}%", escape="\\") for word in words]
    statement = (
        select(
            Pupil.id,
            Pupil.forename,
            Pupil.surname,
            Pupil.preferred_name,
            Pupil.year_group,
            Pupil.registration_group,
        )
        .where(Pupil.workspace_id == workspace_id, and_(*conditions), is_staff)
        .order_by(Pupil.surname, Pupil.forename, Pupil.id)
        .limit(min(limit, MAX_OPTIONS))
    )
    return [PupilMatch(*row) for row in (await session.execute(statement)).all()]
