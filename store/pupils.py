"""Pupils: finding them on the roster.

One matcher (`matching`) serves both searches: the Slack modal's typeahead (`search`,
for any active member of staff) and the web view's pupil finder for the safeguarding
team (`find_pupils`, with how many concerns name each pupil). A pupil is found by the
start of any word of their names or UPN, accents and case ignored.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import pupil_corrections
from store.access import in_view
from store.models import Pupil, Staff
from store.staff import active_staff_exists

MAX_OPTIONS = 100  # Slack shows at most 100 options
SEARCH_LIMIT = 50  # the web view's pupil finder
MAX_WORDS = 5  # words of a query that count; the rest are ignored

# Search results, by name.
NAME_ORDER = (Pupil.surname, Pupil.forename, Pupil.id)


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


def _like_prefix(word: str) -> str:
    """A LIKE pattern for a word starting anywhere after a space (% and _ escaped)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"% {escaped}%"


def matching(*, workspace_id: int, query: str) -> ColumnElement[bool] | None:
    """The workspace's pupils with a name or UPN starting with every word of `query`.

    None when the query has no words (nothing to search for).
    """
    words = [w for w in fold(query).split() if w][:MAX_WORDS]
    if not words:
        return None
    return and_(
        Pupil.workspace_id == workspace_id,
        *(Pupil.search_text.like(_like_prefix(w), escape="\\") for w in words),
    )


# -- the Slack typeahead --------------------------------------------------------------------


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
    """Pupils on roll matching `query` (see `matching`), for active staff only.

    Anyone who is not active staff in this workspace gets nothing: the roster is not
    for browsing by guests. Leavers are not offered (the web view's finder shows them).
    """
    matched = matching(workspace_id=workspace_id, query=query)
    if matched is None:
        return []
    is_staff = active_staff_exists(workspace_id=workspace_id, slack_user_id=requester_slack_id)
    statement = (
        select(
            Pupil.id,
            Pupil.forename,
            Pupil.surname,
            Pupil.preferred_name,
            Pupil.year_group,
            Pupil.registration_group,
        )
        .where(matched, is_staff, Pupil.left_on.is_(None))
        .order_by(*NAME_ORDER)
        .limit(min(limit, MAX_OPTIONS))
    )
    return [PupilMatch(*row) for row in (await session.execute(statement)).all()]


# -- the web view's pupil finder (safeguarding team; the page checks) ----------------------


@dataclass(frozen=True)
class PupilRow:
    """A pupil as the search results show them, with how many concerns name them."""

    pupil: Pupil
    incidents: int


async def find_pupils(
    session: AsyncSession,
    *,
    workspace_id: int,
    query: str,
    limit: int = SEARCH_LIMIT,
    viewer: Staff | None = None,
) -> list[PupilRow]:
    """Pupils matching `query` (see `matching`), leavers too, each with how many concerns
    `viewer` may see name them (after corrections)."""
    matched = matching(workspace_id=workspace_id, query=query)
    if matched is None:
        return []
    pupils = list(
        await session.scalars(select(Pupil).where(matched).order_by(*NAME_ORDER).limit(limit))
    )
    counts: dict[int, int] = {}
    if pupils:
        named = pupil_corrections.naming([p.id for p in pupils])
        counts = dict(
            (
                await session.execute(
                    select(named.c.pupil_id, func.count())
                    .select_from(named)
                    .where(in_view(named.c.incident_id, viewer))
                    .group_by(named.c.pupil_id)
                )
            ).all()
        )
    return [PupilRow(p, int(counts.get(p.id, 0))) for p in pupils]


async def pupil_in_workspace(
    session: AsyncSession, *, workspace_id: int, pupil_id: int
) -> Pupil | None:
    """The pupil, only if they are on this school's roster."""
    return await session.scalar(
        select(Pupil).where(Pupil.id == pupil_id, Pupil.workspace_id == workspace_id)
    )


# -- what retention reads (store.retention) --------------------------------------------
#
# The only places a pupil's date of birth and name are read for the retention review:
# swap these two when names and dates of birth are stored encrypted.


async def dates_of_birth(session: AsyncSession, *, workspace_id: int) -> dict[int, dt.date]:
    """Every pupil's date of birth at this school, by pupil id (leavers included)."""
    rows = await session.execute(
        select(Pupil.id, Pupil.date_of_birth).where(Pupil.workspace_id == workspace_id)
    )
    return {pupil_id: born for pupil_id, born in rows.all()}


async def display_names(
    session: AsyncSession, *, workspace_id: int, pupil_ids: Iterable[int]
) -> dict[int, str]:
    """These pupils' names as the web view shows them, by pupil id."""
    wanted = set(pupil_ids)
    if not wanted:
        return {}
    pupils = await session.scalars(
        select(Pupil).where(Pupil.workspace_id == workspace_id, Pupil.id.in_(wanted))
    )
    return {p.id: p.display_name for p in pupils}


# -- the roster's names (subject access redaction) ------------------------------------------


@dataclass(frozen=True)
class RosterName:
    """A pupil's names as the roster has them, leavers too."""

    id: int
    forename: str
    surname: str
    preferred_name: str | None

    @property
    def display_name(self) -> str:
        preferred = f" ({self.preferred_name})" if self.preferred_name else ""
        return f"{self.forename}{preferred} {self.surname}"


async def roster_names(session: AsyncSession, *, workspace_id: int) -> list[RosterName]:
    """Every pupil's names in the workspace (leavers too): the one place the redaction of
    a subject access pack (`store.subject_access`) reads names from."""
    rows = await session.execute(
        select(Pupil.id, Pupil.forename, Pupil.surname, Pupil.preferred_name)
        .where(Pupil.workspace_id == workspace_id)
        .order_by(Pupil.id)
    )
    return [RosterName(*row) for row in rows.all()]
