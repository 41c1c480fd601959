"""Staff: every query that finds members of staff, and the Staff page's overview.

Small read-only queries, each scoped to one workspace (or to ids already taken from
one). Who may see what is decided in `store.access`, not here; the roster import that
writes staff rows is `store.roster`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from store.access import is_keyholder
from store.db import single_reads
from store.models import Staff, StaffClass, TotpEnrolment


async def get_staff_by_slack_id(
    session: AsyncSession, *, workspace_id: int, slack_user_id: str
) -> Staff | None:
    """The active member of staff with this Slack id in this workspace."""
    return await session.scalar(
        select(Staff).where(
            Staff.workspace_id == workspace_id,
            Staff.slack_user_id == slack_user_id,
            Staff.active.is_(True),
        )
    )


# An SQL condition: the Slack user (bound parameter `slack_user_id`) is active staff in the
# workspace (`workspace_id`). Built once: a statement using it is compiled once and cached.
IS_ACTIVE_STAFF: ColumnElement[bool] = (
    select(Staff.id)
    .where(
        Staff.workspace_id == bindparam("workspace_id"),
        Staff.slack_user_id == bindparam("slack_user_id"),
        Staff.active.is_(True),
    )
    .exists()
)


_ACTIVE_ROLES = select(Staff.roles).where(
    Staff.workspace_id == bindparam("workspace_id"),
    Staff.slack_user_id == bindparam("slack_user_id"),
    Staff.active.is_(True),
)


async def active_roles(
    session: AsyncSession, *, workspace_id: int, slack_user_id: str
) -> frozenset[str] | None:
    """The roles (`Staff.role_set`) of the active member of staff with this Slack id in
    this workspace, or None if they are not one. One column, no object loaded; on
    PostgreSQL in autocommit (`store.db.single_reads`): asked at every `/concern`."""
    asked = {"workspace_id": workspace_id, "slack_user_id": slack_user_id}
    reads = single_reads(session)
    if reads is None:
        found = (await session.execute(_ACTIVE_ROLES, asked)).first()
    else:
        async with reads.connect() as connection:
            found = (await connection.execute(_ACTIVE_ROLES, asked)).first()
    return None if found is None else frozenset(r for r in str(found[0]).split(";") if r)


async def get_staff(session: AsyncSession, *, workspace_id: int, staff_id: int) -> Staff | None:
    """One member of staff (active or not), only if they belong to this workspace."""
    return await session.scalar(
        select(Staff).where(Staff.workspace_id == workspace_id, Staff.id == staff_id)
    )


async def staff_in_workspace(
    session: AsyncSession,
    *,
    workspace_id: int,
    active_only: bool = True,
    with_classes: bool = False,
) -> list[Staff]:
    """Staff of the school by name (for pickers and the staff list)."""
    query = select(Staff).where(Staff.workspace_id == workspace_id)
    if with_classes:
        query = query.options(selectinload(Staff.classes))
    if active_only:
        query = query.where(Staff.active.is_(True))
    return list(await session.scalars(query.order_by(Staff.name, Staff.id)))


@dataclass(frozen=True)
class Pick:
    """A member of staff as a picker offers them: id, name and roles (no ORM object)."""

    id: int
    name: str
    roles: str

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(";") if r)

    @classmethod
    def of(cls, staff: Staff) -> Pick:
        return cls(staff.id, staff.name, staff.roles)


async def picks(session: AsyncSession, *, workspace_id: int) -> list[Pick]:
    """The school's active staff by name, for the incident page's pickers: one column
    query (a page of a school of a hundred staff would otherwise load a hundred rows as
    ORM objects on every view)."""
    rows = await session.execute(_PICKS, {"workspace_id": workspace_id})
    return [Pick(staff_id, name, roles) for staff_id, name, roles in rows]


_PICKS = (  # `picks`' statement, built once
    select(Staff.id, Staff.name, Staff.roles)
    .where(Staff.workspace_id == bindparam("workspace_id"), Staff.active.is_(True))
    .order_by(Staff.name, Staff.id)
)


class StaffLike(Protocol):
    """What the alerting rules read of a member of staff: a `Staff` row or a `Member`."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def slack_user_id(self) -> str | None: ...
    @property
    def role_set(self) -> frozenset[str]: ...


AnyStaff = TypeVar("AnyStaff", bound=StaffLike)


@dataclass(frozen=True)
class Member:
    """An active member of staff as filing a concern reads them (columns, no ORM object)."""

    id: int
    email: str
    name: str
    roles: str
    slack_user_id: str | None

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(";") if r)


async def active_members(session: AsyncSession, *, workspace_id: int) -> dict[int, Member]:
    """Every active member of staff of the workspace, by id, as `Member`s (one query of
    five columns: a school's whole staff, for each concern filed)."""
    rows = await session.execute(_ACTIVE_MEMBERS, {"workspace_id": workspace_id})
    return {row.id: Member(*row) for row in rows}


_ACTIVE_MEMBERS = select(  # `active_members`' statement, built once
    Staff.id, Staff.email, Staff.name, Staff.roles, Staff.slack_user_id
).where(Staff.workspace_id == bindparam("workspace_id"), Staff.active.is_(True))


async def active_staff_by_id(session: AsyncSession, *, workspace_id: int) -> dict[int, Staff]:
    """Every active member of staff of the workspace, by id."""
    rows = await session.scalars(
        select(Staff).where(Staff.workspace_id == workspace_id, Staff.active.is_(True))
    )
    return {s.id: s for s in rows}


async def active_staff_with_ids(
    session: AsyncSession, *, workspace_id: int, ids: Sequence[int]
) -> list[Staff]:
    """The active staff among `ids`, each once, in the order given (others left out)."""
    if not ids:
        return []
    rows = await session.scalars(
        select(Staff).where(
            Staff.workspace_id == workspace_id, Staff.id.in_(ids), Staff.active.is_(True)
        )
    )
    found = {s.id: s for s in rows}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


async def active_staff_with_slack_ids(
    session: AsyncSession, *, workspace_id: int, slack_user_ids: Collection[str]
) -> dict[str, Staff]:
    """The active staff among these Slack ids, by Slack id (others left out)."""
    rows = await session.scalars(
        select(Staff).where(
            Staff.workspace_id == workspace_id,
            Staff.slack_user_id.in_(slack_user_ids),
            Staff.active.is_(True),
        )
    )
    return {s.slack_user_id: s for s in rows if s.slack_user_id}


def keyholder_ids(staff: Mapping[int, StaffLike]) -> list[int]:
    """The ids of the safeguarding team among `staff`, in its order."""
    return [i for i, s in staff.items() if is_keyholder(s.role_set)]


def staff_ids_by_role(staff: Mapping[int, StaffLike]) -> dict[str, list[int]]:
    """The ids among `staff` holding each role an alert rule can name (in `staff`'s order);
    `keyholder` is the whole safeguarding team. Class teachers: `class_teacher_ids`."""
    found: dict[str, list[int]] = {"keyholder": keyholder_ids(staff)}
    for staff_id, member in staff.items():
        for role in member.role_set:
            if role != "keyholder":
                found.setdefault(role, []).append(staff_id)
    return found


async def class_teacher_ids(
    session: AsyncSession, *, workspace_id: int, groups: Iterable[str]
) -> list[int]:
    """The ids of the staff who teach any of these registration groups (by id, repeats kept)."""
    rows = await session.scalars(
        select(StaffClass.staff_id)
        .where(
            StaffClass.workspace_id == workspace_id,
            StaffClass.registration_group.in_(list(groups)),
        )
        .order_by(StaffClass.staff_id)
    )
    return list(rows)


async def nudge_recipients(
    session: AsyncSession, *, workspace_id: int, escalate: bool
) -> list[Staff]:
    """Who an overdue referral is nudged to: DSLs (else every key-holder), and the head(s)
    when escalating."""
    staff = list(
        (
            await session.scalars(
                select(Staff).where(Staff.workspace_id == workspace_id, Staff.active.is_(True))
            )
        ).all()
    )
    chosen = [s for s in staff if "dsl" in s.role_set] or [
        s for s in staff if is_keyholder(s.role_set)
    ]
    if escalate:
        chosen += [s for s in staff if "head" in s.role_set and s not in chosen]
    return chosen


STAFF_OPTIONS = 20


async def search_staff(
    session: AsyncSession, *, workspace_id: int, requester_slack_id: str, query: str
) -> list[Staff] | None:
    """Active staff whose name contains `query` (the allegation modal's adult picker),
    not the person asking; None if the person asking is not active staff."""
    requester = await get_staff_by_slack_id(
        session, workspace_id=workspace_id, slack_user_id=requester_slack_id
    )
    if requester is None:
        return None
    words = query.strip().casefold().split()[:4]
    if not words or len(" ".join(words)) < 2:
        return []
    condition = [func.lower(Staff.name).contains(w, autoescape=True) for w in words]
    rows = await session.scalars(
        select(Staff)
        .where(
            Staff.workspace_id == workspace_id,
            Staff.active.is_(True),
            Staff.id != requester.id,
            *condition,
        )
        .order_by(Staff.name, Staff.id)
        .limit(STAFF_OPTIONS)
    )
    return list(rows)


async def staff_names(session: AsyncSession, *, ids: Collection[int]) -> dict[int, str]:
    """The names of these members of staff, by id."""
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))
    return {staff_id: name for staff_id, name in rows}


async def staff_by_email(session: AsyncSession, *, workspace_id: int) -> dict[str, Staff]:
    """Every member of staff of the workspace (active or not) by lower-cased email, with
    their classes loaded."""
    result = await session.scalars(
        select(Staff)
        .where(Staff.workspace_id == workspace_id)
        .order_by(Staff.id)
        .options(selectinload(Staff.classes))
    )
    return {staff.email.lower(): staff for staff in result.all()}


# -- the Staff page -----------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRow:
    staff: Staff
    keyholder: bool  # sees every concern
    enrolled: bool  # has a confirmed authenticator
    enrolling: bool  # started enrolment but has not confirmed a code yet
    locked: bool = False  # too many wrong codes: a key-holder must unlock the sign-in


async def staff_overview(session: AsyncSession, *, workspace_id: int) -> list[StaffRow]:
    """Everyone on the roster with whether they have an authenticator."""
    people = await staff_in_workspace(
        session, workspace_id=workspace_id, active_only=False, with_classes=True
    )
    if not people:
        return []
    found = await session.execute(
        select(TotpEnrolment.staff_id, TotpEnrolment.confirmed_at, TotpEnrolment.locked_at).where(
            TotpEnrolment.staff_id.in_([p.id for p in people])
        )
    )
    enrolments = {staff_id: (confirmed, locked) for staff_id, confirmed, locked in found}
    return [
        StaffRow(
            staff=p,
            keyholder=is_keyholder(p.role_set),
            enrolled=p.id in enrolments and enrolments[p.id][0] is not None,
            enrolling=p.id in enrolments and enrolments[p.id][0] is None,
            locked=p.id in enrolments and enrolments[p.id][1] is not None,
        )
        for p in people
    ]


def _unlinked(workspace_id: int) -> ColumnElement[bool]:
    return (
        (Staff.workspace_id == workspace_id)
        & Staff.active.is_(True)
        & Staff.slack_user_id.is_(None)
    )


async def unlinked_staff(session: AsyncSession, *, workspace_id: int) -> list[Staff]:
    """Active staff with no Slack user id: no alerts reach them and Slack does not know
    them as staff (`/concern` tells them they are not on the staff list)."""
    rows = await session.scalars(select(Staff).where(_unlinked(workspace_id)).order_by(Staff.id))
    return list(rows.all())


async def count_unlinked_staff(session: AsyncSession, *, workspace_id: int) -> int:
    """How many active staff have no Slack user id."""
    total = await session.scalar(
        select(func.count()).select_from(Staff).where(_unlinked(workspace_id))
    )
    return int(total or 0)
