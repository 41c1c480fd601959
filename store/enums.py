"""The fixed vocabularies Vigil stores in string columns.

Each is a `StrEnum`: a member is the very string the database holds, so rows written
before these existed read the same, a member compares equal to its string, and no
migration is needed. The columns stay plain strings (`store.models`); code that writes
or compares them uses these names. The domain modules give the common members short
names too (`outbox.PENDING`, `referrals.AWAITING`, `audit.REFUSED`).
"""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    """Where an outbox row stands (`outbox.status`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # Slack refused it for good


class OutboxKind(StrEnum):
    """What Slack call an outbox row makes (`outbox.kind`)."""

    ALERT = "alert"  # a DM to an alerted member of staff
    ALERT_UPDATE = "alert_update"  # chat.update of an alert DM (e.g. marked as read)
    RECEIPT = "receipt"  # the reporter's DM receipt
    CHANNEL = "channel"  # one line in the school's alert channel
    NUDGE = "nudge"  # an overdue referral, to a DSL (or the head)
    MESSAGE_UPDATE = "message_update"  # chat.update of a message by channel and payload["ts"]
    NOTICE = "notice"  # a DM to the key-holders about Vigil itself (e.g. Slack was paused)
    URGENT = "urgent"  # an urgent concern nobody has opened: an escalation step
    CHASE = "chase"  # an alert on a restricted category still unopened: the one reminder
    TASK = "task"  # a task's DM to its assignee, or an overdue task's nudge


class AlertReason(StrEnum):
    """Why a member of staff was alerted (`alerts.reason`)."""

    KEYHOLDER = "keyholder"  # the safeguarding team
    CLASS_TEACHER = "class_teacher"  # of a pupil named on the concern
    # a role an alert rule names (`store.catalogue.ALERT_ROLES`)
    DSL = "dsl"
    HEAD = "head"
    SLT = "slt"
    PASTORAL = "pastoral"
    SENCO = "senco"
    CHAIR = "chair"
    ADDED = "added"  # chosen by the reporter
    ACTION = "action"  # chosen by the author of a later action
    INVITED = "invited"  # the incident was shared with them
    ALLEGATIONS = "allegations"  # the allegations manager, for a concern about an adult
    URGENT = "urgent"  # on duty (or escalated to) for an urgent concern


class AdultKind(StrEnum):
    """Who the adult an allegation is about is (`incident_adults.kind`)."""

    STAFF = "staff"  # a member of staff
    VOLUNTEER = "volunteer"
    VISITOR = "visitor"


class ReadVia(StrEnum):
    """Where an alert was marked as read (`read_receipts.via`)."""

    SLACK = "slack"
    WEB = "web"


class ReferralStatus(StrEnum):
    """Where a referral stands (`referrals.status`)."""

    AWAITING = "awaiting"  # no response from the agency yet
    CONSULT = "consult"  # a LADO consultation on an allegation is due (not yet held)
    RESPONDED = "responded"
    CLOSED = "closed"


class ReferralEventKind(StrEnum):
    """What happened to a referral (`referral_events.kind`)."""

    REFERRED = "referred"
    RESPONSE = "response"  # the agency responded
    CLOSED = "closed"
    SNOOZED = "snoozed"  # its nudges held for a working day
    NUDGED = "nudged"  # an overdue nudge was sent
    CONSULTED = "consulted"  # the LADO consultation on an allegation was held
    NOT_NEEDED = "not_needed"  # the allegations manager decided no referral is needed


class AuditOutcome(StrEnum):
    """How an audited attempt ended (`audit_log.outcome`)."""

    OK = "ok"
    REFUSED = "refused"  # not allowed (or not found: the same to the person)
    FAILED = "failed"  # allowed, but what was entered was not valid


class ParentsContacted(StrEnum):
    """Whether parents or carers were contacted (`incidents.parents_contacted`)."""

    YES = "yes"
    NO = "no"


class SigninVia(StrEnum):
    """How a web view session was started (`web_sessions.via`)."""

    SLACK = "slack"  # Sign in with Slack
    LINK = "link"  # a one-time link from `/concern login`


class CaseStatus(StrEnum):
    """Where a concern's casework stands (DESIGN §12): none recorded yet means open."""

    OPEN = "open"
    MONITORING = "monitoring"
    CLOSED = "closed"
