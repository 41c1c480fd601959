"""Years of concerns, written straight into the database before the server starts.

The web view's target (DESIGN §10) is stated for 100,000 incidents stored. Filing them
one by one through Slack would take hours, so they are bulk-inserted with SQLAlchemy Core
(`insert()` executemany, in batches) in the shape `store.incidents.submit_concern`
writes: encrypted narratives (`store.crypto.Cipher`, a small pool of ciphertexts reused,
in the legacy format since a reused value cannot be bound to its row),
the pupils and categories each was filed with, the alerts the default rules
(`store.alert_rules`) give, read receipts for most of them, and actions on some.
Foreign keys are respected (incidents → pupils/categories → alerts → receipts, actions)
and the workspace's next incident number is moved on, so Vigil files new concerns after
them. Only rows of the workspace's roster are used (import it first).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from store import alert_rules, keyring, textsearch
from store.access import is_keyholder
from store.catalogue import Catalogue, Category
from store.crypto import Cipher
from store.db import create_engine
from store.models import (
    Alert,
    CaseStatusChange,
    CurrentCaseStatus,
    EncryptionState,
    Incident,
    IncidentAction,
    IncidentCategory,
    IncidentPupil,
    NarrativeToken,
    Pupil,
    ReadReceipt,
    Referral,
    SearchKey,
    Staff,
    StaffClass,
    Workspace,
)

BATCH = 5000  # incidents per transaction
SPAN = dt.timedelta(days=3 * 365)  # the seeded concerns were filed over three years
NARRATIVES = (
    "Arrived without a coat again and said there was no food at home over the weekend. "
    "Ate two portions at breakfast club. I gave a spare coat from lost property.",
    "Said 'I don't want to go home tonight' at the end of PE and would not say why. "
    "Quiet for the rest of the afternoon. I stayed with them until pick-up.",
    "Bruise on the left forearm, about 3 cm, noticed while washing paint off. Said it "
    "happened playing on the trampoline. Has not happened before as far as I know.",
    "Very tired in the morning, fell asleep in guided reading. Said they were up late "
    "because of shouting downstairs. Spoke to them gently; they asked me not to tell.",
    "Parent arrived at pick-up smelling strongly of alcohol and was unsteady. Office "
    "staff kept the child inside; the second carer collected at 4pm.",
    "Disclosed that an older cousin shows them videos on a phone that make them feel "
    "scared. Used their exact words: 'he says it's a secret game'. Told the DSL at once.",
)
ACTION_TEXTS = (
    "Spoke to mum on the phone; she was aware and is arranging a GP appointment.",
    "Discussed with the DSL. Monitoring for two weeks; class teacher to record anything new.",
    "Referral made to children's social care (MASH); reference noted on the paper file.",
    "Met with the family after school. Agreed a plan for breakfast club every day.",
)
REASONS = ("Speaking to the DSL first.", "Parent is the subject of the concern.")
CLOSE_REASON = "Seeded: closed after review by the DSL."
OUTCOMES = ("no further action", "referred", "early help", "resolved in school")
RECENT = dt.timedelta(days=60)
AGENCIES = ("Children's social care (MASH)", "Early Help", "CAMHS", "Police", "School nurse")


@dataclass(frozen=True)
class History:
    """Optional shape of a longer school history (the reports group): how far back the
    concerns go, how often each pupil is the main pupil (weights, in roster order), and
    the share of actions that re-categorise and of incidents referred to an agency.
    The defaults give the web group's data unchanged."""

    span: dt.timedelta = SPAN
    pupil_weights: Sequence[float] | None = None
    recategorise_share: float = 0.0
    referral_share: float = 0.0
    # Casework (the caseload and search): concerns older than 60 days are mostly closed
    # (93%; 2% monitoring), newer ones 30% closed and 15% monitoring.
    case_statuses: bool = False


@dataclass(frozen=True)
class SeedReport:
    incidents: int
    first_number: int
    last_number: int
    incident_pupils: int
    incident_categories: int
    alerts: int
    read_receipts: int
    actions: int
    seconds: float
    referrals: int = 0
    status_changes: int = 0

    def summary(self) -> str:
        return (
            f"{self.incidents} incidents (#{self.first_number}-#{self.last_number}), "
            f"{self.alerts} alerts, {self.read_receipts} read receipts, {self.actions} actions "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _School:
    workspace_id: int
    next_number: int
    staff_ids: list[int]
    keyholder_ids: list[int]
    authors: list[int]  # everyone who files concerns (staff who teach more often)
    teachers_of: dict[str, list[int]]
    pupils: list[tuple[int, str]]  # (id, registration group)
    group_of: dict[int, str]  # pupil id → registration group


async def _load_school(connection: AsyncConnection, team_id: str) -> _School:
    workspace = (
        await connection.execute(
            select(Workspace.id, Workspace.next_incident_number).where(Workspace.team_id == team_id)
        )
    ).one_or_none()
    if workspace is None:
        raise ValueError(f"no workspace {team_id}: import the rosters first")
    workspace_id, next_number = workspace
    existing = await connection.scalar(
        select(func.count()).select_from(Incident).where(Incident.workspace_id == workspace_id)
    )
    if existing:
        raise ValueError(f"workspace {team_id} already has {existing} incidents: seed an empty one")
    staff = (
        await connection.execute(
            select(Staff.id, Staff.roles).where(
                Staff.workspace_id == workspace_id, Staff.active.is_(True)
            )
        )
    ).all()
    keyholders = [i for i, roles in staff if is_keyholder(r for r in roles.split(";") if r)]
    teachers_of: dict[str, list[int]] = {}
    for staff_id, group in await connection.execute(
        select(StaffClass.staff_id, StaffClass.registration_group).where(
            StaffClass.workspace_id == workspace_id
        )
    ):
        teachers_of.setdefault(group, []).append(staff_id)
    teaching = {i for ids in teachers_of.values() for i in ids}
    authors = [i for i, _ in staff for _ in range(4 if i in teaching else 1)]
    pupils = [
        (pupil_id, group)
        for pupil_id, group in await connection.execute(
            select(Pupil.id, Pupil.registration_group)
            .where(Pupil.workspace_id == workspace_id)
            .order_by(Pupil.id)
        )
    ]
    if not staff or not pupils or not keyholders:
        raise ValueError(f"workspace {team_id} needs staff, key-holders and pupils first")
    return _School(
        workspace_id=workspace_id,
        next_number=int(next_number),
        staff_ids=[i for i, _ in staff],
        keyholder_ids=keyholders,
        authors=authors,
        teachers_of=teachers_of,
        pupils=pupils,
        group_of=dict(pupils),
    )


def _categories(catalogue: Catalogue, rng: random.Random, *, keyholder: bool) -> list[Category]:
    offered = catalogue.categories_for(keyholder=keyholder)
    if keyholder and rng.random() < 0.3:
        chosen = rng.choice([c for c in offered if c.restricted])
        return [chosen] + rng.sample([c for c in offered if c != chosen], rng.randint(0, 1))
    return rng.sample([c for c in offered if not c.restricted], rng.randint(1, 2))


def _cum_weights(weights: Sequence[float] | None) -> list[float] | None:
    if weights is None:
        return None
    total, cumulative = 0.0, []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _referral(
    school: _School, incident_id: int, created: dt.datetime, rng: random.Random
) -> dict[str, Any]:
    """An agency referral on an incident: mostly answered or closed, some awaiting."""
    referred = created + dt.timedelta(hours=rng.randint(1, 72))
    due = referred + dt.timedelta(days=rng.choice((1, 3, 10)))
    roll = rng.random()
    status = "closed" if roll < 0.6 else "responded" if roll < 0.9 else "awaiting"
    responded = referred + dt.timedelta(days=rng.randint(1, 12)) if status != "awaiting" else None
    return {
        "workspace_id": school.workspace_id,
        "incident_id": incident_id,
        "action_id": None,
        "agency": rng.choice(AGENCIES),
        "reference_ct": None,  # sealed per row in Vigil; no page measured here shows it
        "referred_at": referred,
        "timescale": "1 working day",
        "due_at": due,
        "status": status,
        "responded_at": responded,
        "closed_at": responded + dt.timedelta(days=rng.randint(1, 30))
        if status == "closed"
        else None,
        "snoozed_until": None,
        "last_nudged_on": None,
        "created_by_id": rng.choice(school.keyholder_ids),
        "created_at": referred,
    }


async def _insert(connection: AsyncConnection, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(insert(model.__table__), list(rows))


async def _seed_batch(
    connection: AsyncConnection,
    school: _School,
    *,
    numbers: range,
    first_number: int,
    count: int,
    start: dt.datetime,
    narratives: Sequence[bytes],
    actions_ct: Sequence[bytes],
    reasons_ct: Sequence[bytes],
    catalogue: Catalogue,
    rng: random.Random,
    totals: dict[str, int],
    history: History | None = None,
    status_ct: bytes = b"",
    case_rng: random.Random | None = None,
    words_of: dict[bytes, set[int]] | None = None,
) -> None:
    history = history or History()
    end = start + history.span
    cum_weights = _cum_weights(history.pupil_weights)
    keyholders = set(school.keyholder_ids)
    step = history.span / max(1, count)
    incidents: list[dict[str, Any]] = []
    plans: list[tuple[int, list[int], list[Category], dt.datetime]] = []
    for number in numbers:
        created = start + step * (number - first_number)
        author = rng.choice(school.authors)
        keyholder = author in keyholders
        categories = _categories(catalogue, rng, keyholder=keyholder)
        main = (
            rng.choice(school.pupils)
            if cum_weights is None
            else rng.choices(school.pupils, cum_weights=cum_weights)[0]
        )
        pupils = [main]
        if rng.random() < 0.1:
            pupils += [p for p in rng.sample(school.pupils, rng.randint(1, 2)) if p != main]
        parents = "no" if rng.random() < 0.15 else "yes"
        incidents.append(
            {
                "workspace_id": school.workspace_id,
                "number": number,
                "author_id": author,
                "happened_at": created - dt.timedelta(minutes=rng.randint(5, 240)),
                "created_at": created,
                "narrative_ct": rng.choice(narratives),
                "parents_contacted": parents,
                "parents_reason_ct": rng.choice(reasons_ct) if parents == "no" else None,
                "slack_view_id": None,
            }
        )
        plans.append((author, [p[0] for p in pupils], categories, created))

    await _insert(connection, Incident, incidents)
    # Ids by number (reading them back is far quicker than INSERT … RETURNING row by row).
    id_of = {
        number: incident_id
        for number, incident_id in await connection.execute(
            select(Incident.number, Incident.id).where(
                Incident.workspace_id == school.workspace_id,
                Incident.number.between(numbers[0], numbers[-1]),
            )
        )
    }
    ids = [id_of[number] for number in numbers]
    incident_pupils: list[dict[str, Any]] = []
    incident_categories: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []
    for incident_id, (author, pupil_ids, categories, created) in zip(ids, plans, strict=True):
        groups = {school.group_of[pid] for pid in pupil_ids}
        incident_pupils += [
            {"incident_id": incident_id, "pupil_id": pid, "position": i, "is_main": i == 0}
            for i, pid in enumerate(pupil_ids)
        ]
        incident_categories += [
            {
                "incident_id": incident_id,
                "name": c.name,
                "restricted": c.restricted,
                "position": i,
            }
            for i, c in enumerate(categories)
        ]
        recipients = alert_rules.alert_recipients(
            author_id=author,
            categories=categories,
            staff_by_role={"keyholder": school.keyholder_ids},
            class_teacher_ids=[t for g in sorted(groups) for t in school.teachers_of.get(g, [])],
            added_ids=[],
        )
        alerts += [
            {
                "workspace_id": school.workspace_id,
                "incident_id": incident_id,
                "recipient_id": r.staff_id,
                "reason": r.reason,
                "action_id": None,
                "created_at": created,
                "delivered_at": created + dt.timedelta(seconds=2),
                # History is settled: every alert was opened (none is chased at start-up).
                "opened_at": created + dt.timedelta(hours=1),
            }
            for r in recipients
        ]
        if rng.random() < 0.2:
            for n in range(rng.randint(1, 2)):
                actions.append(
                    {
                        "workspace_id": school.workspace_id,
                        "incident_id": incident_id,
                        "author_id": rng.choice(school.keyholder_ids),
                        "created_at": created + dt.timedelta(days=n + 1),
                        "text_ct": rng.choice(actions_ct),
                        "categories": (
                            [c.name for c in _categories(catalogue, rng, keyholder=True)]
                            if history.recategorise_share
                            and rng.random() < history.recategorise_share
                            else None
                        ),
                    }
                )
        if history.referral_share and rng.random() < history.referral_share:
            referrals.append(_referral(school, incident_id, created, rng))
    await _insert(connection, IncidentPupil, incident_pupils)
    await _insert(connection, IncidentCategory, incident_categories)
    await _insert(connection, Alert, alerts)
    created_of = {i: plan[3] for i, plan in zip(ids, plans, strict=True)}
    receipts = [
        {
            "alert_id": alert_id,
            "staff_id": recipient_id,
            "read_at": created_of[incident_id] + dt.timedelta(minutes=rng.randint(1, 600)),
            "via": "web" if rng.random() < 0.6 else "slack",
        }
        for alert_id, incident_id, recipient_id in await connection.execute(
            select(Alert.id, Alert.incident_id, Alert.recipient_id)
            .where(Alert.incident_id.between(min(ids), max(ids)))
            .order_by(Alert.id)
        )
        if incident_id in created_of and rng.random() < 0.8
    ]
    await _insert(connection, ReadReceipt, receipts)
    await _insert(connection, IncidentAction, actions)
    await _insert(connection, Referral, referrals)
    changed: set[int] = set()
    if history.case_statuses and case_rng is not None:
        changed = await _seed_statuses(
            connection, school, created_of, end=end, status_ct=status_ct, rng=case_rng
        )
        totals["status_changes"] = totals.get("status_changes", 0) + len(changed)
    # Every other concern is open, with the status row its filing writes.
    await _insert(
        connection,
        CurrentCaseStatus,
        [
            {
                "incident_id": i,
                "workspace_id": school.workspace_id,
                "change_id": None,
                "status": "open",
                "outcome": None,
                "changed_at": at,
                "created_at": at,
            }
            for i, at in created_of.items()
            if i not in changed
        ],
    )
    if words_of is not None:  # the narrative search's tokens, as filing would write them
        held = {
            i: set(words_of[row["narrative_ct"]]) for i, row in zip(ids, incidents, strict=True)
        }
        for action in actions:
            held[action["incident_id"]] |= words_of[action["text_ct"]]
        for i in changed:
            held[i] |= words_of[status_ct]
        await _insert(
            connection,
            NarrativeToken,
            [{"token": t, "incident_id": i} for i, found in held.items() for t in found],
        )
    if history.referral_share:
        totals["referrals"] = totals.get("referrals", 0) + len(referrals)
    totals["incident_pupils"] += len(incident_pupils)
    totals["incident_categories"] += len(incident_categories)
    totals["alerts"] += len(alerts)
    totals["read_receipts"] += len(receipts)
    totals["actions"] += len(actions)


def _case_status(created: dt.datetime, end: dt.datetime, rng: random.Random) -> str | None:
    """The status a seeded concern ends up with (None: still open, never changed)."""
    draw = rng.random()
    if end - created > RECENT:
        return "closed" if draw < 0.93 else "monitoring" if draw < 0.95 else None
    return "closed" if draw < 0.30 else "monitoring" if draw < 0.45 else None


async def _seed_statuses(
    connection: AsyncConnection,
    school: _School,
    created_of: dict[int, dt.datetime],
    *,
    end: dt.datetime,
    status_ct: bytes,
    rng: random.Random,
) -> set[int]:
    """Status changes (each with its action, the reason being `status_ct`) for a batch;
    the incidents changed."""
    wanted = {i: _case_status(at, end, rng) for i, at in created_of.items()}
    wanted = {i: status for i, status in wanted.items() if status}
    changed_at = {i: min(created_of[i] + dt.timedelta(days=3), end) for i in wanted}
    author = {i: rng.choice(school.keyholder_ids) for i in wanted}
    await _insert(
        connection,
        IncidentAction,
        [
            {
                "workspace_id": school.workspace_id,
                "incident_id": i,
                "author_id": author[i],
                "created_at": changed_at[i],
                "text_ct": status_ct,
                "categories": None,
            }
            for i in wanted
        ],
    )
    if not wanted:
        return set()
    action_of = dict(
        (
            await connection.execute(
                select(IncidentAction.incident_id, IncidentAction.id).where(
                    IncidentAction.incident_id.between(min(wanted), max(wanted)),
                    IncidentAction.text_ct == status_ct,
                )
            )
        ).all()
    )
    await _insert(
        connection,
        CaseStatusChange,
        [
            {
                "workspace_id": school.workspace_id,
                "incident_id": i,
                "action_id": action_of[i],
                "status": status,
                "outcome": rng.choice(OUTCOMES) if status == "closed" else None,
                "author_id": author[i],
                "created_at": changed_at[i],
            }
            for i, status in wanted.items()
        ],
    )
    changes = (
        await connection.execute(
            select(
                CaseStatusChange.incident_id,
                CaseStatusChange.id,
                CaseStatusChange.status,
                CaseStatusChange.outcome,
                CaseStatusChange.created_at,
            ).where(CaseStatusChange.incident_id.between(min(wanted), max(wanted)))
        )
    ).all()
    await _insert(
        connection,
        CurrentCaseStatus,
        [
            {
                "incident_id": incident_id,
                "workspace_id": school.workspace_id,
                "change_id": change_id,
                "status": status,
                "outcome": outcome,
                "changed_at": changed_at,
                "created_at": created_of[incident_id],
            }
            for incident_id, change_id, status, outcome, changed_at in changes
        ],
    )
    return set(wanted)


async def _words_of(
    connection: AsyncConnection, school: _School, cipher: Cipher, texts: dict[bytes, str]
) -> dict[bytes, set[int]]:
    """The search tokens of each seeded ciphertext, with the workspace's search key (made
    and stored here if it has none yet, as the first concern filed would)."""
    key_ct = await connection.scalar(
        select(SearchKey.key_ct).where(SearchKey.workspace_id == school.workspace_id)
    )
    if key_ct is None:
        key_ct = cipher.legacy_encrypt(os.urandom(32).hex())  # like the seed's other values
        await _insert(
            connection,
            SearchKey,
            [
                {
                    "workspace_id": school.workspace_id,
                    "key_ct": key_ct,
                    "created_at": dt.datetime.now(dt.UTC),
                }
            ],
        )
    else:  # made by the pupil import (it hashes UPNs with it): sealed with the data key
        await keyring.load_data_keys(connection, cipher, create=False)
    key = textsearch.read_key(cipher, key_ct, school.workspace_id)
    return {ct: textsearch.tokens(key, [text]) for ct, text in texts.items()}


async def seed_incidents(
    database_url: str,
    *,
    team_id: str,
    count: int,
    data_key: str,
    seed: int = 1,
    batch: int = BATCH,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
    history: History | None = None,
) -> SeedReport:
    """Write `count` incidents (numbered from the workspace's next number) and what
    goes with them, `batch` incidents per transaction. The workspace must have none."""
    if count < 1 or batch < 1:
        raise ValueError("count and batch must be positive")
    started = time.perf_counter()
    rng = random.Random(seed)
    cipher = Cipher(data_key)
    # A pool reused across rows cannot be bound to each row: the values are written in the
    # format from before data keys, which Vigil still reads (the same work per page, Fernet
    # being no cheaper than AES-GCM) until `vigil rotate-key` converts them.
    narratives = [cipher.legacy_encrypt(text) for text in NARRATIVES for _ in range(2)]
    actions_ct = [cipher.legacy_encrypt(text) for text in ACTION_TEXTS]
    reasons_ct = [cipher.legacy_encrypt(text) for text in REASONS]
    status_ct = cipher.legacy_encrypt(CLOSE_REASON)
    case_rng = random.Random(seed + 1)  # its own draws: the rest of the data is unchanged
    catalogue = Catalogue.from_config()
    end = now or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    start = end - (history.span if history else SPAN)
    totals = dict.fromkeys(
        ("incident_pupils", "incident_categories", "alerts", "read_receipts", "actions"), 0
    )
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            school = await _load_school(connection, team_id)
            await connection.rollback()
        async with engine.begin() as connection:
            plain = {ct: cipher.decrypt_legacy(ct) for ct in (*narratives, *actions_ct, status_ct)}
            words_of = await _words_of(connection, school, cipher, plain)
        first = school.next_number
        last = first + count - 1
        for low in range(first, last + 1, batch):
            numbers = range(low, min(low + batch, last + 1))
            async with engine.begin() as connection:
                await _seed_batch(
                    connection,
                    school,
                    numbers=numbers,
                    first_number=first,
                    count=count,
                    start=start,
                    narratives=narratives,
                    actions_ct=actions_ct,
                    reasons_ct=reasons_ct,
                    catalogue=catalogue,
                    rng=rng,
                    totals=totals,
                    history=history,
                    status_ct=status_ct,
                    case_rng=case_rng,
                    words_of=words_of,
                )
            if progress is not None:
                progress(f"seeded incidents #{first}-#{numbers[-1]} of #{last}")
        async with engine.begin() as connection:
            await connection.execute(
                update(Workspace)
                .where(Workspace.id == school.workspace_id)
                .values(next_incident_number=last + 1)
            )
            # Legacy values were just written: a server started before must read them.
            await connection.execute(delete(EncryptionState))
        if engine.dialect.name == "postgresql":
            # Autovacuum would have analysed tables this size long before anyone browsed them.
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("ANALYZE"))
                # Insert-driven autovacuum would also have set the search tokens' pages
                # all-visible, so a word's concerns are counted from the index alone.
                await autocommit.execute(text("VACUUM narrative_tokens"))
    finally:
        await engine.dispose()
    return SeedReport(
        incidents=count,
        first_number=first,
        last_number=last,
        seconds=round(time.perf_counter() - started, 1),
        **{k: v for k, v in totals.items() if k not in ("referrals", "status_changes")},
        referrals=totals.get("referrals", 0),
        status_changes=totals.get("status_changes", 0),
    )
