"""A pupil's context (DESIGN §12): CP plan, CIN, LAC, previously LAC, SEN, young carer,
EAL and their social worker, from the MIS (`vigil import pupils`) or a key-holder's edit.

The current values are in `pupil_context` (no row: all "no", SEN `N`, no social worker);
every change, and a pupil leaving or rejoining the roster, is a dated row of
`pupil_context_changes`, for the chronology. The social worker's name is stored only
encrypted and decrypted here, for the pages that show it (the incident page and the
chronology). None of this ever goes to Slack or a log: at most the names of the flags
changed reach the audit log.

- `set_context`: apply new values to one pupil, recording each change;
- `contexts`: the current context of some pupils, decrypted;
- `history`: a pupil's changes, decrypted, for the chronology.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring
from store.crypto import Cipher, bind
from store.models import PupilContext, PupilContextChange, Staff

YES_NO = ("cp_plan", "cin", "lac", "previously_lac", "young_carer", "eal")
FLAGS = (*YES_NO[:4], "sen", *YES_NO[4:], "social_worker")
LEFT = "left"  # a change row: left the roster (Y) or back on it (N)

# The pupil CSV's columns for each flag (the contract names; headers match any case).
CSV_COLUMNS = {
    "cp_plan": "CP_Plan",
    "cin": "CIN",
    "lac": "LAC",
    "previously_lac": "Previously_LAC",
    "sen": "SEN",
    "young_carer": "Young_Carer",
    "eal": "EAL",
    "social_worker": "Social_Worker",
}
LABELS = {
    "cp_plan": "CP plan",
    "cin": "Child in need (CIN)",
    "lac": "Looked after (LAC)",
    "previously_lac": "Previously looked after",
    "young_carer": "Young carer",
    "eal": "EAL",
}
SEN_LEVELS = {"N": "No SEN", "K": "SEN support", "E": "EHC plan"}
SOCIAL_WORKER_MAX = 200  # characters

YES_WORDS = frozenset({"y", "yes", "true", "1"})
NO_WORDS = frozenset({"n", "no", "false", "0", ""})

IMPORT, WEB = "import", "web"


@dataclass(frozen=True)
class Context:
    """A pupil's context, decrypted. The default is "nothing recorded"."""

    cp_plan: bool = False
    cin: bool = False
    lac: bool = False
    previously_lac: bool = False
    sen: str = "N"
    young_carer: bool = False
    eal: bool = False
    social_worker: str | None = None

    @property
    def badges(self) -> list[str]:
        """What is true of the pupil, in a few words each ("CP plan", "SEN support")."""
        shown = []
        for flag in FLAGS:
            if flag == "sen" and self.sen != "N":
                shown.append(SEN_LEVELS[self.sen])
            elif flag in YES_NO and getattr(self, flag):
                shown.append(LABELS[flag])
        return shown

    @property
    def empty(self) -> bool:
        return self == NOTHING


NOTHING = Context()


def yes_no(raw: str) -> bool | None:
    """A yes/no cell: Y/N, Yes/No, TRUE/FALSE, 1/0 or blank (no); None if none of those."""
    word = raw.strip().casefold()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def sen_level(raw: str) -> str | None:
    """An SEN cell: N, K or E (blank: N); None if anything else."""
    value = raw.strip().upper() or "N"
    return value if value in SEN_LEVELS else None


def _stored(row: PupilContext | None, cipher: Cipher) -> Context:
    if row is None:
        return NOTHING
    worker = (
        cipher.decrypt(row.social_worker_ct, bind(PupilContext.social_worker_ct, row.pupil_id))
        if row.social_worker_ct
        else None
    )
    return Context(
        **{flag: getattr(row, flag) for flag in FLAGS if flag != "social_worker"},
        social_worker=worker,
    )


def stored(row: PupilContext | None, cipher: Cipher) -> Context:
    """The context a stored row holds (NOTHING for none), decrypted."""
    return _stored(row, cipher)


_CONTEXTS_OF = select(PupilContext).where(  # `contexts`' statement, built once
    PupilContext.workspace_id == bindparam("workspace_id"),
    PupilContext.pupil_id.in_(bindparam("pupil_ids", expanding=True)),
)


async def contexts(
    session: AsyncSession, *, workspace_id: int, pupil_ids: Collection[int], cipher: Cipher
) -> dict[int, Context]:
    """The current context of each pupil asked for (NOTHING for one with none recorded)."""
    found: dict[int, Context] = dict.fromkeys(pupil_ids, NOTHING)
    if not pupil_ids:
        return found
    rows = await session.scalars(
        _CONTEXTS_OF, {"workspace_id": workspace_id, "pupil_ids": list(pupil_ids)}
    )
    for row in rows:
        found[row.pupil_id] = _stored(row, cipher)
    return found


async def stored_contexts(
    session: AsyncSession, *, workspace_id: int, cipher: Cipher
) -> dict[int, tuple[PupilContext, Context]]:
    """Every pupil of the workspace with a context row: the row and its values (imports)."""
    rows = await session.scalars(
        select(PupilContext).where(PupilContext.workspace_id == workspace_id)
    )
    return {row.pupil_id: (row, _stored(row, cipher)) for row in rows}


def merged(old: Context, new: Mapping[str, Any]) -> Context:
    """`old` with the flags given in `new` (a flag not given keeps its value)."""
    given = {flag: new[flag] for flag in FLAGS if flag in new}
    if "social_worker" in given:
        given["social_worker"] = given["social_worker"] or None
    return replace(old, **given)


async def set_context(
    session: AsyncSession,
    *,
    workspace_id: int,
    pupil_id: int,
    row: PupilContext | None,
    old: Context,
    new: Context,
    cipher: Cipher,
    source: str,
    at: dt.datetime,
    actor_id: int | None = None,
) -> list[str]:
    """Store `new` as the pupil's context, with a dated change row per flag that changed;
    the flags changed (none: nothing written). `row` is the stored row, if any."""
    changed = [flag for flag in FLAGS if getattr(old, flag) != getattr(new, flag)]
    if not changed:
        return []
    if row is None:
        row = PupilContext(pupil_id=pupil_id, workspace_id=workspace_id)
        session.add(row)
    for flag in FLAGS:
        if flag != "social_worker":
            setattr(row, flag, getattr(new, flag))
    if "social_worker" in changed:
        await keyring.seal(
            session, cipher, row, {PupilContext.social_worker_ct: new.social_worker or None}
        )
    row.updated_at = at
    for flag in changed:
        value: str | None
        if flag == "social_worker":
            value = None
        elif flag == "sen":
            value = new.sen
        else:
            value = "Y" if getattr(new, flag) else "N"
        change = PupilContextChange(
            workspace_id=workspace_id,
            pupil_id=pupil_id,
            at=at,
            flag=flag,
            value=value,
            source=source,
            actor_id=actor_id,
        )
        session.add(change)
        if flag == "social_worker" and new.social_worker:
            await keyring.seal(
                session, cipher, change, {PupilContextChange.value_ct: new.social_worker}
            )
    return changed


def record_leaving(
    session: AsyncSession,
    *,
    workspace_id: int,
    pupil_ids: Collection[int],
    left: bool,
    at: dt.datetime,
) -> None:
    """Dated change rows: these pupils left the roster (or came back to it), by an import."""
    for pupil_id in pupil_ids:
        session.add(
            PupilContextChange(
                workspace_id=workspace_id,
                pupil_id=pupil_id,
                at=at,
                flag=LEFT,
                value="Y" if left else "N",
                source=IMPORT,
            )
        )


# -- the chronology ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change, as the chronology says it: "CP plan started", "Social worker: …"."""

    id: int
    at: dt.datetime
    text: str
    who: str  # the key-holder who changed it, or "roster import"


def describe(flag: str, value: str | None, worker: str | None) -> str:
    """A change in words."""
    if flag == LEFT:
        return (
            "Left the school (missing from the roster import)"
            if value == "Y"
            else "Back on the school roster"
        )
    if flag == "social_worker":
        return f"Social worker changed: {worker}" if worker else "Social worker removed"
    if flag == "sen":
        return f"SEN changed: {SEN_LEVELS.get(value or 'N', value)}"
    on = value == "Y"
    if flag in ("cp_plan", "cin", "lac"):
        return f"{LABELS[flag]} {'started' if on else 'ended'}"
    return f"{LABELS[flag]}: {'recorded' if on else 'no longer recorded'}"


async def history(session: AsyncSession, *, pupil_id: int, cipher: Cipher) -> list[Change]:
    """Every change to the pupil's context (and their leaving), oldest first, decrypted."""
    rows = await session.execute(
        select(PupilContextChange, Staff.name)
        .outerjoin(Staff, Staff.id == PupilContextChange.actor_id)
        .where(PupilContextChange.pupil_id == pupil_id)
        .order_by(PupilContextChange.at, PupilContextChange.id)
    )
    found = []
    for change, name in rows:
        worker = (
            cipher.decrypt(change.value_ct, bind(PupilContextChange.value_ct, change.id))
            if change.value_ct
            else None
        )
        found.append(
            Change(
                id=change.id,
                at=change.at,
                text=describe(change.flag, change.value, worker),
                who=name or "roster import",
            )
        )
    return found
