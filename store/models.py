"""The database schema: every row belongs to a workspace (a school's Slack workspace).

Incidents and what they were filed with (pupils, categories, agencies) are immutable once
stored: `store.immutability` refuses changes in the ORM and database triggers refuse them
in SQL. Narrative text is stored only encrypted (`store.crypto`).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from store.crypto import bind, open_loaded
from store.enums import OutboxStatus, ReferralStatus

# One integer type for ids: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Vigil stores aware UTC datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Workspace(Base):
    """A school: one Slack workspace."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    next_incident_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A new random number each time the pupil roster changes (`store.pupils.roster_changed`):
    # each process's in-memory roster compares it to the one it loaded.
    roster_version: Mapped[int | None] = mapped_column(
        BigInteger, default=lambda: new_roster_version()
    )


def new_roster_version() -> int:
    """A random roster version (random, not counted: unique across databases too)."""
    return secrets.randbits(62)


class IncidentNumberGap(Base):
    """An incident number taken and not (yet) used: `store.incidents.next_number` writes
    the row, committed at once, when it takes the number on PostgreSQL; the filing deletes
    it in its own transaction. So a row older than a moment is a gap in the numbers, with
    its reason (the filing was never committed: an error, a crash, a lost connection)."""

    __tablename__ = "incident_number_gaps"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number", name="uq_incident_number_gaps_number"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    taken_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SchoolSettings(Base):
    """A school's settings edited on its settings page (`store.schools.EDITABLE` sections
    of its configuration, as TOML text); they override the school's file."""

    __tablename__ = "school_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    settings: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class Staff(Base):
    """A member of staff from the roster; `roles` is a `;`-separated list."""

    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email", name="uq_staff_workspace_email"),
        Index("ix_staff_workspace_slack_user", "workspace_id", "slack_user_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200), default="staff")
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Loaded only where needed (the roster import): not on every staff row a page reads.
    classes: Mapped[list[StaffClass]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", lazy="raise"
    )

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(";") if r)


class StaffClass(Base):
    """A registration group a member of staff teaches (they are its class teacher)."""

    __tablename__ = "staff_classes"
    __table_args__ = (Index("ix_staff_classes_group", "workspace_id", "registration_group"),)

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    registration_group: Mapped[str] = mapped_column(String(50), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))

    staff: Mapped[Staff] = relationship(back_populates="classes")


@dataclass(frozen=True)
class PupilDetails:
    """Who a pupil is: what `Pupil.details_ct` holds, sealed."""

    upn: str
    forename: str
    surname: str
    preferred_name: str | None
    date_of_birth: dt.date

    def sealed_text(self) -> str:
        return json.dumps(
            {
                "upn": self.upn,
                "forename": self.forename,
                "surname": self.surname,
                "preferred_name": self.preferred_name,
                "date_of_birth": self.date_of_birth.isoformat(),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_sealed_text(cls, text: str) -> PupilDetails:
        values = json.loads(text)
        return cls(
            upn=values["upn"],
            forename=values["forename"],
            surname=values["surname"],
            preferred_name=values.get("preferred_name"),
            date_of_birth=dt.date.fromisoformat(values["date_of_birth"]),
        )


class Pupil(Base):
    """A pupil from the school's roster. Names live only here, and only encrypted.

    Who the pupil is (UPN, names, date of birth) is `details_ct`: sealed with the data key,
    bound to the row (`store.crypto`); the UPN is also kept as a keyed hash (`upn_hash`,
    `store.pupils.upn_hash`) so an import or a lookup by UPN finds the row. A row read by a
    process whose cipher loaded its data key opens itself (`details`, `forename`...).
    """

    __tablename__ = "pupils"
    __table_args__ = (UniqueConstraint("workspace_id", "upn", name="uq_pupils_workspace_upn"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    # The column `upn` holds the UPN's keyed hash (13 base32 characters), never the UPN.
    upn_hash: Mapped[str] = mapped_column("upn", String(13))
    # Empty only for an instant: a new row is flushed (for its id), then sealed.
    details_ct: Mapped[bytes] = mapped_column(LargeBinary, nullable=True)
    year_group: Mapped[str] = mapped_column(String(20))
    registration_group: Mapped[str] = mapped_column(String(50))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The day a re-import first found them missing from the roster (None: on roll).
    left_on: Mapped[dt.date | None] = mapped_column(Date)

    @property
    def details(self) -> PupilDetails:
        """The pupil's UPN, names and date of birth, decrypted (once per row read)."""
        token = bytes(self.details_ct)
        cached = self.__dict__.get("_details")
        if cached is not None and cached[0] == token:
            return cast(PupilDetails, cached[1])
        opened = PupilDetails.from_sealed_text(open_loaded(token, bind(Pupil.details_ct, self.id)))
        self.__dict__["_details"] = (token, opened)
        return opened

    @property
    def upn(self) -> str:
        return self.details.upn

    @property
    def forename(self) -> str:
        return self.details.forename

    @property
    def surname(self) -> str:
        return self.details.surname

    @property
    def preferred_name(self) -> str | None:
        return self.details.preferred_name

    @property
    def date_of_birth(self) -> dt.date:
        return self.details.date_of_birth

    @property
    def display_name(self) -> str:
        preferred = f" ({self.preferred_name})" if self.preferred_name else ""
        return f"{self.forename}{preferred} {self.surname}"


class PupilContext(Base):
    """A pupil's context from the MIS or a key-holder: CP plan, CIN, LAC, SEN and so on.

    The current values; each change is kept in `pupil_context_changes`. The social
    worker's name is stored only encrypted (`store.crypto`).
    """

    __tablename__ = "pupil_context"

    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    cp_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    cin: Mapped[bool] = mapped_column(Boolean, default=False)
    lac: Mapped[bool] = mapped_column(Boolean, default=False)
    previously_lac: Mapped[bool] = mapped_column(Boolean, default=False)
    sen: Mapped[str] = mapped_column(String(1), default="N")
    young_carer: Mapped[bool] = mapped_column(Boolean, default=False)
    eal: Mapped[bool] = mapped_column(Boolean, default=False)
    social_worker_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PupilContextChange(Base):
    """One change to a pupil's context (or their leaving or rejoining the roster), dated.

    Append-only. `value` is `Y`/`N` for a yes/no flag (and for `left`), `N`/`K`/`E` for
    SEN; a new social worker's name is in `value_ct`, encrypted (None: none now).
    """

    __tablename__ = "pupil_context_changes"
    __table_args__ = (Index("ix_pupil_context_changes_pupil", "pupil_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    flag: Mapped[str] = mapped_column(String(20))
    value: Mapped[str | None] = mapped_column(String(1))
    value_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(10))  # "import" or "web"
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class Incident(Base):
    """A concern as submitted. Immutable: corrections are later actions."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number", name="uq_incidents_workspace_number"),
        Index("ix_incidents_workspace_created", "workspace_id", "created_at"),
        Index("ix_incidents_workspace_happened", "workspace_id", "happened_at"),  # reports
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    number: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    happened_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    narrative_ct: Mapped[bytes] = mapped_column(LargeBinary)
    parents_contacted: Mapped[str] = mapped_column(String(10))
    parents_reason_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    slack_view_id: Mapped[str | None] = mapped_column(String(32), unique=True)

    author: Mapped[Staff] = relationship(lazy="joined")
    pupils: Mapped[list[IncidentPupil]] = relationship(
        lazy="selectin", order_by="IncidentPupil.position"
    )
    categories: Mapped[list[IncidentCategory]] = relationship(
        lazy="selectin", order_by="IncidentCategory.position"
    )
    agencies: Mapped[list[IncidentAgency]] = relationship(
        lazy="selectin", order_by="IncidentAgency.position"
    )

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]


class IncidentPupil(Base):
    """A pupil named by an incident: the main pupil (position 0) or a linked one."""

    __tablename__ = "incident_pupils"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    is_main: Mapped[bool] = mapped_column(Boolean)

    pupil: Mapped[Pupil] = relationship(lazy="joined")


class IncidentPupilCorrection(Base):
    """A key-holder's correction: the concern was filed against the wrong pupil.

    Append-only; the incident keeps the pupil it was filed with. `original_pupil_id` is
    the pupil of the `incident_pupils` row corrected (the latest correction of that row
    says who it names now); `wrong_pupil_id` is whom it named just before.
    """

    __tablename__ = "incident_pupil_corrections"
    __table_args__ = (
        Index("ix_incident_pupil_corrections_incident", "incident_id", "id"),
        Index("ix_incident_pupil_corrections_right", "right_pupil_id"),
        Index("ix_incident_pupil_corrections_wrong", "wrong_pupil_id"),
        # The reports' stamp: the workspace's newest (`store.reports.cache`).
        Index("ix_incident_pupil_corrections_workspace_newest", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    original_pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    wrong_pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    right_pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IncidentCategory(Base):
    """A category as chosen at submission (name kept as text: the list can change)."""

    __tablename__ = "incident_categories"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    restricted: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)


class IncidentAgency(Base):
    """An agency recorded as involved at submission."""

    __tablename__ = "incident_agencies"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class IncidentAdult(Base):
    """The adult an allegation is about (DESIGN §5): a member of staff on the roster, or a
    name typed for someone not on it (stored encrypted). One per incident, immutable."""

    __tablename__ = "incident_adults"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # store.enums.AdultKind
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)


class Alert(Base):
    """One member of staff alerted about an incident, or about a later action on it.

    A person gets at most one alert for the incident itself and one per action.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_incident_recipient",
            "incident_id",
            "recipient_id",
            unique=True,
            postgresql_where=text("action_id IS NULL"),
            sqlite_where=text("action_id IS NULL"),
        ),
        Index(
            "uq_alerts_action_recipient",
            "action_id",
            "recipient_id",
            unique=True,
            postgresql_where=text("action_id IS NOT NULL"),
            sqlite_where=text("action_id IS NOT NULL"),
        ),
        Index("ix_alerts_recipient", "recipient_id", "created_at"),
        Index("ix_alerts_incident", "incident_id"),
        Index("ix_alerts_workspace_created", "workspace_id", "created_at"),  # reports
        # The reports' stamp: the workspace's newest (`store.reports.cache`).
        Index("ix_alerts_workspace_newest", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(20))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("incident_actions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    # The recipient first opened the incident's page (acknowledging in Slack is a receipt).
    opened_at: Mapped[dt.datetime | None] = mapped_column()
    # Re-sent once, still unopened, after `[unread] chase_after_working_hours`.
    chased_at: Mapped[dt.datetime | None] = mapped_column()
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column()  # access withdrawn: no access

    recipient: Mapped[Staff] = relationship(lazy="joined")
    incident: Mapped[Incident] = relationship(lazy="raise")
    receipt: Mapped[ReadReceipt | None] = relationship(lazy="selectin", back_populates="alert")


class ReadReceipt(Base):
    """Who read an alert, and when (append-only: one per alert)."""

    __tablename__ = "read_receipts"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    read_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(10))

    alert: Mapped[Alert] = relationship(back_populates="receipt")


class OutboxMessage(Base):
    """A Slack call that must happen, written in the same transaction as its cause.

    `payload` holds only redacted content (built by `store.messages`). The delivery worker
    claims rows (`claimed_until` is a lease, so a crashed worker's rows come back) and
    records the outcome; `uncertain` marks a row whose last attempt may have reached Slack.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    kind: Mapped[str] = mapped_column(String(20))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    channel: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[dt.datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(32))  # the worker holding the lease
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(200))
    result_channel: Mapped[str | None] = mapped_column(String(32))
    result_ts: Mapped[str | None] = mapped_column(String(32))


class SlackRateLimit(Base):
    """Slack asked this workspace to wait before calling this method again (a 429 with
    `Retry-After`): every process's delivery worker waits until `until`."""

    __tablename__ = "slack_rate_limits"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(40), primary_key=True)
    until: Mapped[dt.datetime] = mapped_column()


class IncidentAction(Base):
    """Something done or learned after the incident: append-only, text encrypted.

    A key-holder's re-categorisation is an action too (`categories` holds the new list;
    the incident keeps the original).
    """

    __tablename__ = "incident_actions"
    __table_args__ = (
        Index("ix_incident_actions_incident", "incident_id", "created_at"),
        Index(  # reports: the incidents whose categories were changed
            "ix_incident_actions_recategorised",
            "incident_id",
            postgresql_where=text("categories IS NOT NULL"),
            sqlite_where=text("categories IS NOT NULL"),
        ),
        # The reports' stamp: the workspace's newest (`store.reports.cache`).
        Index("ix_incident_actions_workspace_newest", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    text_ct: Mapped[bytes] = mapped_column(LargeBinary)
    categories: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))

    author: Mapped[Staff] = relationship(lazy="joined")


class IncidentInvite(Base):
    """A member of staff given access to an incident after it was filed."""

    __tablename__ = "incident_invites"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True, index=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column()  # access withdrawn: no access


class AuditEvent(Base):
    """Who did what, when, from where. Append-only (triggers refuse change)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_workspace_at", "workspace_id", "at"),
        Index("ix_audit_incident", "incident_id"),
        Index("ix_audit_actor", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_slack_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(10))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(200))


class WebSession(Base):
    """A web view session. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    second_factor_at: Mapped[dt.datetime | None] = mapped_column()
    csrf_token: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    via: Mapped[str] = mapped_column(String(10))

    staff: Mapped[Staff] = relationship(lazy="joined")


class LoginToken(Base):
    """A one-time sign-in link from `/concern login`: single use, short-lived."""

    __tablename__ = "login_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class OidcRequest(Base):
    """A Sign in with Slack attempt in flight: its state and nonce, used once."""

    __tablename__ = "oidc_requests"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()


class DataKey(Base):
    """A data key (DEK) of the envelope encryption, wrapped by a key-encryption key.

    `id` is random (it is written into every value the key seals); `kek_id` names the
    key-encryption key that wrapped it (`store.crypto.KeyEncryptionKey.key_id`), so
    `vigil rotate-key` knows which still need re-wrapping. See docs/record-encryption.md.
    """

    __tablename__ = "data_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kek_id: Mapped[str] = mapped_column(String(100))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rewrapped_at: Mapped[dt.datetime | None] = mapped_column()


class RecordKey(Base):
    """The key of one record (a concern or a paper record), wrapped by a data key.

    Every encrypted value of the record is sealed under it; destroying the record
    deletes this row, and with it every copy of the record's text that could be read
    (crypto-shredding, docs/record-encryption.md). `id` is random, with the top bit of
    the 4-byte key id set (`store.crypto.RECORD_KEY_BIT`); `wrapped` is the key sealed
    under the data key `data_key_id`, bound to its id and record
    (`store.crypto.record_key_aad`).
    """

    __tablename__ = "record_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), unique=True)
    paper_record_id: Mapped[int | None] = mapped_column(ForeignKey("paper_records.id"), unique=True)
    data_key_id: Mapped[int] = mapped_column(BigInteger)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class EncryptionState(Base):
    """One row: whether values in the legacy format (from before data keys) may still be
    read. `vigil rotate-key` closes it once none is left (and a new database starts
    closed), so an old unbound value copied in from a backup is refused, not read."""

    __tablename__ = "encryption_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    legacy_closed_at: Mapped[dt.datetime | None] = mapped_column()


class TotpEnrolment(Base):
    """A person's authenticator: the secret (encrypted) and the last time step used."""

    __tablename__ = "totp_enrolments"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column()
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set after too many wrong codes in a day; only a key-holder clears it.
    locked_at: Mapped[dt.datetime | None] = mapped_column()


class AuthFailure(Base):
    """A failed second-factor attempt, kept briefly for throttling."""

    __tablename__ = "auth_failures"
    __table_args__ = (Index("ix_auth_failures_staff_at", "staff_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Referral(Base):
    """A referral to an agency, recorded by an action, with its due time and state.

    State columns change as the agency responds or a DSL snoozes it; what happened and
    when is kept, append-only, in `referral_events`.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        # The overdue scan reads only referrals still waiting, by due time.
        Index(
            "ix_referrals_awaiting_due",
            "due_at",
            postgresql_where=text("status = 'awaiting'"),
            sqlite_where=text("status = 'awaiting'"),
        ),
        Index("ix_referrals_incident", "incident_id"),
        Index("ix_referrals_workspace_status", "workspace_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("incident_actions.id"))
    agency: Mapped[str] = mapped_column(String(100))
    # The agency's reference, sealed and bound to the row; its keyed hash for the
    # caseload's filter (`store.textsearch.exact_hash`). Never stored in plain text.
    reference_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    reference_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    referred_at: Mapped[dt.datetime] = mapped_column()
    timescale: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default=ReferralStatus.AWAITING)
    responded_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    snoozed_until: Mapped[dt.datetime | None] = mapped_column()
    last_nudged_on: Mapped[dt.date | None] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def reference(self) -> str | None:
        """The agency's reference, decrypted (None: none was noted)."""
        if self.reference_ct is None:
            return None
        return open_loaded(self.reference_ct, bind(Referral.reference_ct, self.id))


class ReferralEvent(Base):
    """What happened to a referral: referred, response, closed, snoozed, nudged."""

    __tablename__ = "referral_events"
    __table_args__ = (Index("ix_referral_events_referral", "referral_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("incident_actions.id"))
    detail: Mapped[str | None] = mapped_column(String(200))


class Nudge(Base):
    """One overdue nudge for a referral on one working day (the unique key makes it one)."""

    __tablename__ = "nudges"
    __table_args__ = (UniqueConstraint("referral_id", "work_day", name="uq_nudges_referral_day"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    work_day: Mapped[dt.date] = mapped_column(Date)
    overdue_days: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[int] = mapped_column(Integer)
    escalated: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Task(Base):
    """An action that is a task: assigned to a member of staff, due on a date.

    The action stays immutable; being done (when, by whom), snoozes and the last working
    day it was nudged are recorded here. `dm_outbox_id` is the assignee's DM, so marking
    it done in the web view can update it.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_open", "assignee_id", "done_at", "due_on"),
        Index("ix_tasks_due", "due_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    action_id: Mapped[int] = mapped_column(ForeignKey("incident_actions.id"), unique=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    due_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column()
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    snoozed_until: Mapped[dt.datetime | None] = mapped_column()
    last_nudged_on: Mapped[dt.date | None] = mapped_column(Date)
    dm_outbox_id: Mapped[int | None] = mapped_column(Id)


class UrgentConcern(Base):
    """A concern filed as "a child may be at immediate risk": escalated until opened.

    `opened_at` is when someone on the safeguarding team first opened its page; until
    then the urgent check escalates it every `[urgent] escalate_every_minutes`.
    """

    __tablename__ = "urgent_concerns"
    __table_args__ = (
        # The urgent check reads only concerns nobody has opened yet, by when they are due.
        Index(
            "ix_urgent_concerns_waiting",
            "next_step_at",
            postgresql_where=text("opened_at IS NULL"),
            sqlite_where=text("opened_at IS NULL"),
        ),
    )

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    on_duty_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    next_step_at: Mapped[dt.datetime] = mapped_column()
    opened_at: Mapped[dt.datetime | None] = mapped_column()
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class UrgentEscalation(Base):
    """One escalation step of an unopened urgent concern (the unique key makes it once)."""

    __tablename__ = "urgent_escalations"
    __table_args__ = (
        UniqueConstraint("incident_id", "step", name="uq_urgent_escalations_incident_step"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("urgent_concerns.incident_id"))
    step: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer)


class CaseStatusChange(Base):
    """A concern set to open, monitoring or closed (DESIGN §12): append-only.

    Recorded with the action that says why (its text, encrypted, is the reason); the
    concern's status is its latest change, and open when it has none. A close names an
    outcome.
    """

    __tablename__ = "case_status_changes"
    __table_args__ = (Index("ix_case_status_changes_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    action_id: Mapped[int] = mapped_column(ForeignKey("incident_actions.id"), unique=True)
    status: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(100))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CurrentCaseStatus(Base):
    """A concern's status now: the latest of its `case_status_changes`, kept with them.

    The changes are the record; this row lets the caseload and search filter 100,000
    concerns by status with a plain join. Every concern has one from its filing (`open`,
    no change: `store.incidents`); `store.casework.write_change` updates it in the
    change's transaction. `created_at` is the concern's (incidents never change), so the
    caseload (open and monitoring, oldest first) is a range of `ix_case_statuses_caseload`.
    """

    __tablename__ = "case_statuses"
    __table_args__ = (
        Index("ix_case_statuses_workspace_status", "workspace_id", "status"),
        Index(  # the caseload: every concern not closed, oldest first
            "ix_case_statuses_caseload",
            "workspace_id",
            "created_at",
            "incident_id",
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
    )

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    change_id: Mapped[int | None] = mapped_column(ForeignKey("case_status_changes.id"))
    status: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()


class PaperRecord(Base):
    """A historic record from the paper files, added to a pupil's chronology by a
    key-holder: its original date, a short description (encrypted) and its scans
    (`StoredFile` rows). Immutable."""

    __tablename__ = "paper_records"
    __table_args__ = (Index("ix_paper_records_pupil", "pupil_id", "recorded_on"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    description_ct: Mapped[bytes] = mapped_column(LargeBinary)
    added_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    added_by: Mapped[Staff] = relationship(lazy="joined")


class StoredFile(Base):
    """A file attached to an incident (or an action on it) or to a paper record.

    Immutable. Its content is sealed in chunks (`FileChunk`, or a directory store) with
    its own key; `key_ct` is that key wrapped by the data key and bound to this row's
    token and owner, and `name_ct` its name sealed with it (`store.documents.sealing`).
    """

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_incident", "incident_id", "created_at"),
        Index("ix_files_paper_record", "paper_record_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("incident_actions.id"))
    paper_record_id: Mapped[int | None] = mapped_column(ForeignKey("paper_records.id"))
    kind: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_count: Mapped[int] = mapped_column(Integer)
    key_ct: Mapped[bytes] = mapped_column(LargeBinary)
    name_ct: Mapped[bytes] = mapped_column(LargeBinary)
    storage: Mapped[str] = mapped_column(String(10))  # "database", "directory" or "s3"
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    uploaded_by: Mapped[Staff] = relationship(lazy="joined")


class FileChunk(Base):
    """One sealed chunk of a file kept in the database (the default store)."""

    __tablename__ = "file_chunks"

    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BodyMap(Base):
    """Marks seen on a child, placed on a front and back outline: each mark's side,
    position, type, size and note, stored together encrypted (`marks_ct`, JSON). Immutable:
    a later body map is a new row."""

    __tablename__ = "body_maps"
    __table_args__ = (Index("ix_body_maps_incident", "incident_id", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    marks_ct: Mapped[bytes] = mapped_column(LargeBinary)

    author: Mapped[Staff] = relationship(lazy="joined")


IMMUTABLE_TABLES = (
    "incidents",
    "incident_pupils",
    "incident_categories",
    "incident_agencies",
    "incident_adults",
    "incident_actions",
    "audit_log",
    "referral_events",
    "pupil_context_changes",
    "incident_pupil_corrections",
    "case_status_changes",
    "paper_records",
    "files",
    "file_chunks",
    "body_maps",
    "record_keys",  # deleted only by a destruction: a deleted key is its record's text lost
)


class TransferKeys(Base):
    """A school's key pairs for record transfers (`store.transfers`): X25519 to receive,
    Ed25519 to sign; the private keys stored only encrypted (`store.crypto`)."""

    __tablename__ = "transfer_keys"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    receive_ct: Mapped[bytes] = mapped_column(LargeBinary)
    sign_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TransferCard(Base):
    """Another school's card, trusted by this one: packs go to it, and come from it."""

    __tablename__ = "transfer_cards"
    __table_args__ = (
        UniqueConstraint("workspace_id", "fingerprint", name="uq_transfer_cards_fingerprint"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    receive_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_key: Mapped[bytes] = mapped_column(LargeBinary)
    trusted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Transfer(Base):
    """A pack sent for a pupil; closed when the receiving school's receipt is imported."""

    __tablename__ = "transfers"
    __table_args__ = (Index("ix_transfers_open", "workspace_id", "receipted_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    pack_id: Mapped[str] = mapped_column(String(40), unique=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    to_fingerprint: Mapped[str] = mapped_column(String(32))
    to_name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    receipted_at: Mapped[dt.datetime | None] = mapped_column()
    nudged_at: Mapped[dt.datetime | None] = mapped_column()


class TransferImport(Base):
    """A pack imported here (a second import of the same pack is refused as a replay)."""

    __tablename__ = "transfer_imports"
    __table_args__ = (UniqueConstraint("workspace_id", "pack_id", name="uq_transfer_imports_pack"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    pack_id: Mapped[str] = mapped_column(String(40))
    from_fingerprint: Mapped[str] = mapped_column(String(32))
    from_name: Mapped[str] = mapped_column(String(200))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    imported_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# The ciphertext columns of immutable tables: the only columns an UPDATE may change (to
# re-encrypt a value, or bind a new row's value to its id; migration 0015).
CIPHERTEXT_COLUMNS = {
    "incidents": frozenset({"narrative_ct", "parents_reason_ct"}),
    "incident_adults": frozenset({"name_ct"}),
    "incident_actions": frozenset({"text_ct"}),
    "pupil_context_changes": frozenset({"value_ct"}),
    "paper_records": frozenset({"description_ct"}),
    "files": frozenset({"key_ct"}),
    "body_maps": frozenset({"marks_ct"}),
}


class SearchKey(Base):
    """A workspace's key for narrative search tokens (`store.textsearch`): 32 random
    bytes, stored only encrypted with the data key, so a database alone cannot compute
    a token and a data-key rotation does not change the tokens."""

    __tablename__ = "search_keys"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    key_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column()


class NarrativeToken(Base):
    """One word of a concern's narrative or of an action on it, as a keyed hash
    (`store.textsearch.token`): never the word. The primary key leads with the token,
    so a search for a word is an index range."""

    __tablename__ = "narrative_tokens"
    __table_args__ = (Index("ix_narrative_tokens_incident", "incident_id"),)

    token: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)


class RetentionHold(Base):
    """A legal hold on a record (DESIGN §14): while it is not lifted, the record never
    comes due for review and cannot be destroyed. On a concern (`incident_id`) or a paper
    record (`paper_record_id`); the reason is stored only encrypted."""

    __tablename__ = "retention_holds"
    __table_args__ = (
        Index("ix_retention_holds_incident", "incident_id"),
        Index("ix_retention_holds_paper_record", "paper_record_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    paper_record_id: Mapped[int | None] = mapped_column(ForeignKey("paper_records.id"))
    reason_ct: Mapped[bytes] = mapped_column(LargeBinary)
    placed_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    placed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[dt.datetime | None] = mapped_column()
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class DestructionPermit(Base):
    """The permit of one destruction (`store.flows.retention.destroy`): written and
    removed inside that transaction, so no other transaction ever sees it. While it
    exists the immutability triggers allow DELETEs (and the audit log's `incident_id` set
    to NULL); on PostgreSQL only for the transaction whose `txid` it holds."""

    __tablename__ = "destruction_permits"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    txid: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SlackInstallation(Base):
    """Vigil installed by Slack's OAuth flow: into one workspace (`team_id`), or org-wide
    into an Enterprise Grid org (`is_enterprise_install`, `enterprise_id`, no team).

    `key` names what was installed ("T:<team>" or "E:<enterprise>"), so a reinstall
    updates the row. The bot token is stored only encrypted, bound to the row
    (`store.installations`); an uninstall or revoked token sets `uninstalled_at`.
    """

    __tablename__ = "slack_installations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    app_id: Mapped[str | None] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str] = mapped_column(String(1000), default="")
    installer_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_token_ct: Mapped[bytes] = mapped_column(LargeBinary)
    installed_at: Mapped[dt.datetime] = mapped_column()
    uninstalled_at: Mapped[dt.datetime | None] = mapped_column()


class WorkspaceInstallation(Base):
    """Which installation serves a workspace: its own, or its Enterprise Grid org's."""

    __tablename__ = "workspace_installations"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("slack_installations.id"), index=True)


class SlackOAuthState(Base):
    """An "Add to Slack" attempt in flight: its state (keyed hash), used once, expiring."""

    __tablename__ = "slack_oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column()


class SubjectAccessRequest(Base):
    """A subject access request (UK GDPR art. 15) for a pupil's record, opened by a
    key-holder (`store.subject_access`). Who asked is free text, stored encrypted; the
    one-month deadline is `due_on`; `last_nudged_on` makes the deadline nudge once a
    working day."""

    __tablename__ = "subject_access_requests"
    __table_args__ = (Index("ix_subject_access_open", "completed_at", "due_on"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"))
    received_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    requester_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    redact_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    exported_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    last_nudged_on: Mapped[dt.date | None] = mapped_column(Date)


class SarRedaction(Base):
    """A word or phrase blacked out of a subject access pack: proposed by Vigil (another
    pupil's name, or a member of staff's) or added by the key-holder; `removed_at` when
    the key-holder decided it stays. The phrase is a name: stored encrypted."""

    __tablename__ = "sar_redactions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("subject_access_requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # pupil, staff, added
    phrase_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    removed_at: Mapped[dt.datetime | None] = mapped_column()
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
