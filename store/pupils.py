"""Pupils: who they are (decrypted), finding them on the roster, and the roster in memory.

A pupil's UPN, names and date of birth are stored only encrypted, bound to their row
(`Pupil.details_ct`), and the UPN also as a keyed hash (`upn_hash`: HMAC under the
workspace's search key, `store.textsearch.exact_hash`) so an import or a lookup by UPN
finds the row without the database ever holding the UPN (`by_upn`, `upn_hash`).

The database can no longer search names, so each process keeps each school's roster in
memory (`roster`): every pupil decrypted, loaded on first use and loaded again when the
workspace's `roster_version` is not the one it loaded. Whatever changes the roster (the
import, a transfer creating a pupil) calls `roster_changed` in its transaction, which
gives the workspace a new random version: every process, this one or another, reloads
at its next search. One matcher (`Roster.matching`) serves both searches: the Slack
modal's typeahead (`search`, for any active member of staff; leavers are not offered)
and the web view's pupil finder for the safeguarding team (`find_pupils`, leavers too,
with how many concerns name each pupil). A pupil is found by the start of any word of
their names or UPN, accents and case ignored.

Other parts read pupils through here: `roster` (every pupil of a school, decrypted, with
their date of birth), `pupil_details` (some pupils by id) and `date_of_birth`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import pupil_corrections, textsearch
from store.access import in_view
from store.crypto import Cipher, bind, open_loaded
from store.db import single_reads
from store.models import Pupil, PupilDetails, Staff, Workspace, new_roster_version
from store.staff import IS_ACTIVE_STAFF

MAX_OPTIONS = 100  # Slack shows at most 100 options
SEARCH_LIMIT = 50  # the web view's pupil finder
MAX_WORDS = 5  # words of a query that count; the rest are ignored


def fold(text: str) -> str:
    """Lower-case, accent-free text for matching ("Zoë" matches "zoe")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_text(*, upn: str, forename: str, surname: str, preferred_name: str | None) -> str:
    """The text a pupil is found by: names, preferred name and UPN (kept in memory only)."""
    parts = [fold(p) for p in (forename, preferred_name or "", surname, upn) if p]
    # "Smith-Jones" and "O'Neill" are found by "jones" and "neill" as well as whole.
    pieces = [re.sub(r"[-'’.]", " ", p) for p in parts if re.search(r"[-'’.]", p)]
    return " " + " ".join(parts + pieces) + " "


def query_words(query: str) -> list[str]:
    """The words of a search that count (folded; at most MAX_WORDS)."""
    return [w for w in fold(query).split() if w][:MAX_WORDS]


# -- UPNs: keyed hashes ---------------------------------------------------------------------


def normal_upn(upn: str) -> str:
    """A UPN as stored and compared: trimmed, upper case."""
    return upn.strip().upper()


def upn_hash(key: bytes, upn: str) -> str:
    """The stored form of a UPN (`Pupil.upn_hash`, the column `upn`): its keyed hash."""
    return textsearch.upn_hash(key, normal_upn(upn))


async def upn_key(session: AsyncSession, *, workspace_id: int, cipher: Cipher) -> bytes:
    """The key UPNs (and other exact matches) are hashed with: the workspace's search key."""
    return await textsearch.search_key(session, workspace_id=workspace_id, cipher=cipher)


async def by_upn(
    session: AsyncSession, *, workspace_id: int, cipher: Cipher, upn: str
) -> Pupil | None:
    """The workspace's pupil with this UPN (by its keyed hash), or None."""
    if not upn.strip():
        return None
    key = await upn_key(session, workspace_id=workspace_id, cipher=cipher)
    return await session.scalar(
        select(Pupil).where(
            Pupil.workspace_id == workspace_id, Pupil.upn_hash == upn_hash(key, upn)
        )
    )


def seal_details(cipher: Cipher, pupil_id: int, details: PupilDetails) -> bytes:
    """`details` sealed for the pupil's row (`Pupil.details_ct`)."""
    return cipher.encrypt(details.sealed_text(), bind(Pupil.details_ct, pupil_id))


def open_details(pupil_id: int, token: bytes) -> PupilDetails:
    """What a pupil row's `details_ct` holds (with the cipher that loaded its data key)."""
    return PupilDetails.from_sealed_text(open_loaded(token, bind(Pupil.details_ct, pupil_id)))


async def new_pupil(
    session: AsyncSession,
    *,
    cipher: Cipher,
    workspace_id: int,
    details: PupilDetails,
    year_group: str,
    registration_group: str,
) -> Pupil:
    """A pupil added to the roster (one at a time: a transfer's); the roster changed."""
    key = await upn_key(session, workspace_id=workspace_id, cipher=cipher)
    pupil = Pupil(
        workspace_id=workspace_id,
        upn_hash=upn_hash(key, details.upn),
        details_ct=b"",
        year_group=year_group,
        registration_group=registration_group,
    )
    session.add(pupil)
    await session.flush()
    pupil.details_ct = seal_details(cipher, pupil.id, details)
    await session.flush()
    await roster_changed(session, workspace_id=workspace_id)
    return pupil


# -- the roster in memory ------------------------------------------------------------------


@dataclass(frozen=True)
class RosterPupil:
    """A pupil as the in-memory roster holds them: decrypted, with what the typeahead
    shows and what they are found by."""

    id: int
    upn: str
    forename: str
    surname: str
    preferred_name: str | None
    date_of_birth: dt.date
    year_group: str
    registration_group: str
    left_on: dt.date | None
    text: str  # `search_text`

    @property
    def display_name(self) -> str:
        preferred = f" ({self.preferred_name})" if self.preferred_name else ""
        return f"{self.forename}{preferred} {self.surname}"

    @property
    def on_roll(self) -> bool:
        return self.left_on is None


# What the typeahead returns (the same fields it always had, and no context).
PupilMatch = RosterPupil


def name_order(pupil: RosterPupil | Pupil) -> tuple[str, str, int]:
    """Pupils by name: surname, forename (folded), then id."""
    return (fold(pupil.surname), fold(pupil.forename), pupil.id)


class Roster:
    """One school's pupils, decrypted, by name; `version` is the workspace's
    `roster_version` they were loaded at. Their search texts are also kept joined in one
    string, so a search finds its rarest word's places at C speed (`str.find`) and looks
    at those pupils only."""

    def __init__(
        self, workspace_id: int, version: int | None, pupils: tuple[RosterPupil, ...]
    ) -> None:
        self.workspace_id, self.version, self.pupils = workspace_id, version, pupils
        self._starts: list[int] = []
        parts: list[str] = []
        at = 0
        for pupil in pupils:
            self._starts.append(at)
            parts.append(pupil.text)
            at += len(pupil.text) + 1
        self._blob = "\n".join(parts)

    def by_id(self) -> dict[int, RosterPupil]:
        return {p.id: p for p in self.pupils}

    def _holding(self, word: str) -> Iterator[int]:
        """The positions (in name order) of the pupils whose text holds `word`."""
        blob, starts = self._blob, self._starts
        at = blob.find(word)
        while at >= 0:
            index = bisect.bisect_right(starts, at) - 1
            yield index
            if index + 1 >= len(starts):
                return
            at = blob.find(word, starts[index + 1])

    def matching(
        self, query: str, *, on_roll_only: bool, limit: int | None = None
    ) -> list[RosterPupil]:
        """The pupils with a name or UPN starting with every word of `query`, by name."""
        words = [f" {w}" for w in query_words(query)]
        if not words:
            return []
        anchor = max(words, key=len)  # the longest word: the fewest pupils to look at
        others = [w for w in words if w != anchor]
        found: list[RosterPupil] = []
        for index in self._holding(anchor):
            pupil = self.pupils[index]
            if on_roll_only and pupil.left_on is not None:
                continue
            if all(w in pupil.text for w in others):
                found.append(pupil)
                if limit is not None and len(found) >= limit:
                    break
        return found


# workspace id → its roster, in this process. A roster is used only while the workspace's
# `roster_version` is the one it was loaded at (versions are random: unique across
# databases, so a cached roster never answers for another database's workspace).
_ROSTERS: dict[int, Roster] = {}


async def roster_changed(session: AsyncSession, *, workspace_id: int) -> None:
    """Mark the workspace's roster changed (in the caller's transaction): every process
    reloads it at its next search."""
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(roster_version=new_roster_version())
        .execution_options(synchronize_session=False)
    )


async def _load(session: AsyncSession, *, workspace_id: int, version: int | None) -> Roster:
    rows = (
        await session.execute(
            select(
                Pupil.id,
                Pupil.details_ct,
                Pupil.year_group,
                Pupil.registration_group,
                Pupil.left_on,
            ).where(Pupil.workspace_id == workspace_id)
        )
    ).all()
    pupils = []
    for pupil_id, token, year_group, group, left_on in rows:
        d = open_details(pupil_id, bytes(token))
        text = search_text(
            upn=d.upn, forename=d.forename, surname=d.surname, preferred_name=d.preferred_name
        )
        pupils.append(
            RosterPupil(
                pupil_id,
                d.upn,
                d.forename,
                d.surname,
                d.preferred_name,
                d.date_of_birth,
                year_group,
                group,
                left_on,
                text,
            )
        )
    pupils.sort(key=name_order)
    loaded = Roster(workspace_id, version, tuple(pupils))
    if version is not None:
        _ROSTERS[workspace_id] = loaded
    return loaded


async def _current(session: AsyncSession, *, workspace_id: int, version: int | None) -> Roster:
    if version is None:  # no version yet: read, never kept (it could be any database's)
        return await _load(session, workspace_id=workspace_id, version=None)
    cached = _ROSTERS.get(workspace_id)
    if cached is not None and cached.version == version:
        return cached
    return await _load(session, workspace_id=workspace_id, version=version)


async def roster(session: AsyncSession, *, workspace_id: int) -> Roster:
    """Every pupil of the school (leavers too), decrypted, by name: from memory while the
    roster is unchanged (one small query to check)."""
    found = (
        await session.execute(select(Workspace.roster_version).where(Workspace.id == workspace_id))
    ).first()
    if found is None:
        return Roster(workspace_id, None, ())
    version = found[0]
    return await _current(session, workspace_id=workspace_id, version=version)


async def pupil_details(
    session: AsyncSession, *, workspace_id: int, pupil_ids: Collection[int]
) -> dict[int, RosterPupil]:
    """The school's pupils with these ids, decrypted (others' pupils are not found)."""
    wanted = set(pupil_ids)
    found = (await roster(session, workspace_id=workspace_id)).pupils
    return {p.id: p for p in found if p.id in wanted}


async def date_of_birth(
    session: AsyncSession, *, workspace_id: int, pupil_id: int
) -> dt.date | None:
    """A pupil's date of birth (None: not this school's pupil)."""
    found = await pupil_details(session, workspace_id=workspace_id, pupil_ids=[pupil_id])
    return found[pupil_id].date_of_birth if pupil_id in found else None


# -- the Slack typeahead --------------------------------------------------------------------

# The one query of each keystroke: the roster's version, and whether the person typing is
# active staff of the workspace (`store.staff.IS_ACTIVE_STAFF`). Built once with bound
# parameters, not per keystroke: building the statement each time cost half as much CPU
# again as running it.
_VERSION_AND_STAFF = select(Workspace.roster_version, IS_ACTIVE_STAFF).where(
    Workspace.id == bindparam("workspace_id")
)


async def search(
    session: AsyncSession,
    *,
    workspace_id: int,
    requester_slack_id: str,
    query: str,
    limit: int = MAX_OPTIONS,
) -> Sequence[PupilMatch]:
    """Pupils on roll matching `query` (see `Roster.matching`), for active staff only.

    Anyone who is not active staff in this workspace gets nothing: the roster is not
    for browsing by guests. Leavers are not offered (the web view's finder shows them).
    One query (the roster's version, and whether the person is staff; on PostgreSQL in
    autocommit, `store.db.single_reads`), so an import or a member of staff leaving, in
    any process, counts from the next keystroke; the matching is done in memory.
    """
    if not query_words(query):
        return []
    asked = {"workspace_id": workspace_id, "slack_user_id": requester_slack_id}
    reads = single_reads(session)
    if reads is None:
        found = (await session.execute(_VERSION_AND_STAFF, asked)).first()
    else:  # PostgreSQL: one statement, no transaction round trips around it
        async with reads.connect() as connection:
            found = (await connection.execute(_VERSION_AND_STAFF, asked)).first()
    if found is None or not found[1]:
        return []
    school = await _current(session, workspace_id=workspace_id, version=found[0])
    return school.matching(query, on_roll_only=True, limit=min(limit, MAX_OPTIONS))


async def matching_ids(session: AsyncSession, *, workspace_id: int, query: str) -> list[int]:
    """The ids of the school's pupils (leavers too) matching `query`, by name."""
    school = await roster(session, workspace_id=workspace_id)
    return [p.id for p in school.matching(query, on_roll_only=False)]


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
    """Pupils matching `query` (see `Roster.matching`), leavers too, by name, each with how
    many concerns `viewer` may see name them (after corrections)."""
    if not query_words(query):
        return []
    school = await roster(session, workspace_id=workspace_id)
    ids = [p.id for p in school.matching(query, on_roll_only=False, limit=limit)]
    if not ids:
        return []
    loaded = {p.id: p for p in await session.scalars(select(Pupil).where(Pupil.id.in_(ids)))}
    pupils = [loaded[i] for i in ids if i in loaded]
    named = pupil_corrections.naming(ids)
    counts: dict[int, int] = dict(
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
# The only places a pupil's date of birth and name are read for the retention review
# (from the in-memory roster: they are stored only encrypted).


async def dates_of_birth(session: AsyncSession, *, workspace_id: int) -> dict[int, dt.date]:
    """Every pupil's date of birth at this school, by pupil id (leavers included)."""
    found = (await roster(session, workspace_id=workspace_id)).pupils
    return {p.id: p.date_of_birth for p in found}


async def display_names(
    session: AsyncSession, *, workspace_id: int, pupil_ids: Iterable[int]
) -> dict[int, str]:
    """These pupils' names as the web view shows them, by pupil id."""
    wanted = set(pupil_ids)
    if not wanted:
        return {}
    found = await pupil_details(session, workspace_id=workspace_id, pupil_ids=wanted)
    return {pupil_id: p.display_name for pupil_id, p in found.items()}


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
    found = (await roster(session, workspace_id=workspace_id)).pupils
    return [
        RosterName(p.id, p.forename, p.surname, p.preferred_name)
        for p in sorted(found, key=lambda p: p.id)
    ]
