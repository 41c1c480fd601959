"""Every Slack message Vigil sends, built in one place (DESIGN §2.1).

These builders take only what may appear in Slack: an incident number, the author's
Slack id, category names, counts, and a link to the web view. They never receive a
pupil, a narrative or action text, so they cannot leak one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

MARK_READ_ACTION = "alert_mark_read"
OPEN_ACTION = "alert_open"
BODY_MAP_ACTION = "body_map_open"  # the receipt's "Add a body map" link

Message = dict[str, Any]


class UnreadAlert(Protocol):
    """What App Home shows of an unread alert (`store.alerts.AlertSummary`)."""

    @property
    def alert_id(self) -> int: ...
    @property
    def number(self) -> int: ...
    @property
    def author_slack_id(self) -> str | None: ...
    @property
    def categories(self) -> Sequence[str]: ...
    @property
    def created_at(self) -> dt.datetime: ...


class OverdueReferral(Protocol):
    """What App Home shows of an overdue referral (`store.referrals.ReferralSummary`)."""

    @property
    def referral_id(self) -> int: ...
    @property
    def incident_number(self) -> int: ...
    @property
    def agency(self) -> str: ...
    @property
    def overdue_days(self) -> int: ...


def incident_url(public_url: str, number: int) -> str:
    """The incident's page in the web view."""
    return f"{public_url}/incidents/{number}"


def referral_url(public_url: str, number: int, referral_id: int) -> str:
    """A referral on its incident's page."""
    return f"{incident_url(public_url, number)}#referral-{referral_id}"


def _person(slack_id: str | None) -> str:
    return f"<@{slack_id}>" if slack_id else "a colleague"


URGENT_LABEL = "A child may be at immediate risk"


def _headline(number: int, author_slack_id: str | None, categories: Sequence[str]) -> str:
    return f"New concern #{number} from {_person(author_slack_id)} · {', '.join(categories)}"


def _urgent(headline: str) -> str:
    """A new concern's headline, marked urgent."""
    return f"URGENT: {headline} · {URGENT_LABEL.lower()}"


def action_headline(number: int, author_slack_id: str | None, categories: Sequence[str]) -> str:
    """An alert about an action added to an incident."""
    return (
        f"New action on concern #{number} from {_person(author_slack_id)} · {', '.join(categories)}"
    )


def invite_headline(number: int, inviter_slack_id: str | None, categories: Sequence[str]) -> str:
    """An alert that someone shared an incident with you."""
    return (
        f"{_person(inviter_slack_id)} shared concern #{number} with you · {', '.join(categories)}"
    )


def _when_line(label: str, at: dt.datetime) -> dict[str, Any]:
    """A context line: the label, then the time in each reader's own time zone."""
    stamp = int(at.timestamp())
    fallback = at.strftime("%d %b %Y %H:%M UTC")
    text = f"{label} <!date^{stamp}^{{date_short}} at {{time}}|{fallback}>"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _open_button(url: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": OPEN_ACTION,
        "text": {"type": "plain_text", "text": "Open"},
        "url": url,
    }


def alert(
    *,
    alert_id: int,
    url: str,
    number: int | None = None,
    author_slack_id: str | None = None,
    categories: Sequence[str] = (),
    headline: str | None = None,
    read_at: dt.datetime | None = None,
    urgent: bool = False,
) -> Message:
    """The DM a recipient gets: author and categories only, Mark as read and Open.

    `headline` is given for alerts about actions and invitations; a new concern's is
    built from its number, author and categories (and says so when it is urgent).
    """
    if headline is None:
        assert number is not None
        headline = _headline(number, author_slack_id, categories)
        headline = _urgent(headline) if urgent else headline
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":bell: {headline}"}}
    ]
    if read_at is None:
        buttons = [
            {
                "type": "button",
                "action_id": MARK_READ_ACTION,
                "text": {"type": "plain_text", "text": "Mark as read"},
                "style": "primary",
                "value": str(alert_id),
            },
            _open_button(url),
        ]
        blocks.append({"type": "actions", "block_id": f"alert-{alert_id}", "elements": buttons})
    else:
        blocks.append(_when_line(":white_check_mark: Read", read_at))
        blocks.append(
            {"type": "actions", "block_id": f"alert-{alert_id}", "elements": [_open_button(url)]}
        )
    text = headline if read_at is None else f"{headline} (read)"
    return {"text": text, "blocks": blocks}


def alert_withdrawn(*, alert_id: int, number: int) -> Message:
    """An alert's DM once a key-holder has withdrawn its recipient's access: the number
    only, and no buttons (the record no longer opens for them)."""
    text = f"Your access to concern #{number} was withdrawn by the safeguarding team"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":no_entry: {text}."}},
            {
                "type": "context",
                "block_id": f"alert-{alert_id}",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Ask a DSL if you think you still need to see it.",
                    }
                ],
            },
        ],
    }


def channel_line(*, number: int, author_slack_id: str | None, categories: Sequence[str]) -> Message:
    """The single line posted to the school's alert channel, when one is configured."""
    return {"text": _headline(number, author_slack_id, categories)}


def speak_to_text(names: Sequence[str]) -> str:
    """What an urgent concern's receipt tells its reporter to do now."""
    if not names:
        return "Also tell a Designated Safeguarding Lead now, in person or by phone."
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    role = "the DSL on duty" if len(names) == 1 else "a DSL"
    return f"Also speak to {who} ({role}) now, in person or by phone: they have been alerted."


def receipt(
    *,
    number: int,
    categories: Sequence[str],
    alerted: int,
    url: str,
    speak_to: Sequence[str] | None = None,
) -> Message:
    """The reporter's DM: the incident number to quote, and who was told (a count).

    `speak_to` is given for an urgent concern: the names of the staff alerted at once
    (the DSL on duty), whom the reporter should also speak to now. Staff names only,
    in the reporter's own receipt; never a pupil.
    """
    people = "1 member of staff" if alerted == 1 else f"{alerted} members of staff"
    text = f"Concern #{number} recorded · {', '.join(categories)}. {people} alerted."
    if speak_to is not None:
        text = f"URGENT: {text} {speak_to_text(speak_to)}"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":lock: {text}"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "The record cannot be edited. To add or correct anything, "
                        "open it and add an action.",
                    }
                ],
            },
            {
                "type": "actions",
                "elements": [
                    _open_button(url),
                    {
                        "type": "button",
                        "action_id": BODY_MAP_ACTION,
                        "text": {"type": "plain_text", "text": "Add a body map"},
                        "url": f"{url}/body-map",
                    },
                ],
            },
        ],
    }


class UnopenedAlert(Protocol):
    """What App Home shows the DSLs of a chased, still unopened alert
    (`store.unread.UnopenedRow`): the concern's number and whose alert it is."""

    @property
    def alert_id(self) -> int: ...
    @property
    def number(self) -> int: ...
    @property
    def recipient_slack_id(self) -> str | None: ...
    @property
    def created_at(self) -> dt.datetime: ...


def home_view(
    *,
    unread: Sequence[UnreadAlert],
    public_url: str,
    command: str,
    total_unread: int | None = None,
    overdue: Sequence[OverdueReferral] | None = None,
    unopened: Sequence[UnopenedAlert] | None = None,
    open_tasks: int = 0,
) -> dict[str, Any]:
    """The App Home tab: unread alerts, how many open tasks (a count and a link, never a
    task's text); for key-holders, overdue referrals and alerts on restricted categories
    chased and still not opened. Redacted."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your unread alerts"}},
    ]
    if not unread:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Nothing unread. :white_check_mark:"},
            }
        )
    for item in unread:
        stamp = int(item.created_at.timestamp())
        author = f"<@{item.author_slack_id}>" if item.author_slack_id else "a colleague"
        blocks.append(
            {
                "type": "section",
                "block_id": f"home-alert-{item.alert_id}",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*#{item.number}* from {author} · {', '.join(item.categories)}\n"
                    f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{item.created_at:%d %b %Y}>",
                },
                "accessory": {
                    "type": "button",
                    "action_id": MARK_READ_ACTION,
                    "text": {"type": "plain_text", "text": "Mark as read"},
                    "value": str(item.alert_id),
                },
            }
        )
    if total_unread is not None and total_unread > len(unread):
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{total_unread - len(unread)} more in the web view.",
                    }
                ],
            }
        )
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Your tasks"}})
    if open_tasks:
        unit = "open task" if open_tasks == 1 else "open tasks"
        tasks_text = f"You have {open_tasks} {unit}: <{tasks_url(public_url)}|My tasks>"
    else:
        tasks_text = "No open tasks. :white_check_mark:"
    blocks.append(
        {
            "type": "section",
            "block_id": "home-tasks",
            "text": {"type": "mrkdwn", "text": tasks_text},
        }
    )
    if overdue is not None:
        blocks.append(
            {"type": "header", "text": {"type": "plain_text", "text": "Overdue referrals"}}
        )
        if not overdue:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "None overdue."}})
        for referral in overdue:
            blocks.append(
                {
                    "type": "section",
                    "block_id": f"home-referral-{referral.referral_id}",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*R{referral.referral_id}* on concern "
                        f"#{referral.incident_number} to "
                        f"{referral.agency} {_overdue_text(referral.overdue_days)}",
                    },
                }
            )
    if unopened is not None:
        blocks.append(
            {"type": "header", "text": {"type": "plain_text", "text": "Alerts not yet opened"}}
        )
        if not unopened:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "None waiting."}})
        for waiting in unopened:
            alerted = int(waiting.created_at.timestamp())
            blocks.append(
                {
                    "type": "section",
                    "block_id": f"home-unopened-{waiting.alert_id}",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*#{waiting.number}*: {_person(waiting.recipient_slack_id)} "
                        f"has not opened it (alerted <!date^{alerted}^{{date_short_pretty}} at "
                        f"{{time}}|{waiting.created_at:%d %b %Y}>; reminded once)",
                    },
                }
            )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Record a concern with `{command}`. Details are only in the web "
                    f"view: {public_url}",
                }
            ],
        }
    )
    return {"type": "home", "blocks": blocks}


SNOOZE_ACTION = "referral_snooze"


def _overdue_text(overdue_days: int) -> str:
    if overdue_days <= 0:
        return "is overdue (due today)"
    unit = "working day" if overdue_days == 1 else "working days"
    return f"is {overdue_days} {unit} overdue"


def nudge(
    *,
    referral_id: int,
    number: int,
    agency: str,
    overdue_days: int,
    public_url: str,
    snoozed_until: dt.datetime | None = None,
) -> Message:
    """An overdue referral: its number, the incident's number, the agency, how overdue.

    The overdue check sends it; Snooze replaces it with the snoozed version (the same
    message, with the time the nudges resume instead of the Snooze button).
    """
    url = referral_url(public_url, number, referral_id)
    text = (
        f"Referral R{referral_id} on concern #{number} to {agency} {_overdue_text(overdue_days)} "
        "and has no response recorded."
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":hourglass: {text}"}}
    ]
    buttons: list[dict[str, Any]] = [_open_button(url)]
    if snoozed_until is None:
        buttons.insert(
            0,
            {
                "type": "button",
                "action_id": SNOOZE_ACTION,
                "text": {"type": "plain_text", "text": "Snooze 1 working day"},
                "value": str(referral_id),
            },
        )
    else:
        blocks.append(_when_line(":zzz: Snoozed until", snoozed_until))
    blocks.append({"type": "actions", "block_id": f"referral-{referral_id}", "elements": buttons})
    return {"text": text, "blocks": blocks}


TASK_DONE_ACTION = "task_done"
TASK_SNOOZE_ACTION = "task_snooze"


def tasks_url(public_url: str) -> str:
    """The web view's "My tasks" page."""
    return f"{public_url.rstrip('/')}/tasks"


def _task_buttons(task_id: int, url: str, *, done: bool, snooze: bool) -> list[dict[str, Any]]:
    buttons: list[dict[str, Any]] = [_open_button(url)]
    if not done:
        buttons.append(
            {
                "type": "button",
                "action_id": TASK_DONE_ACTION,
                "text": {"type": "plain_text", "text": "Done"},
                "style": "primary",
                "value": str(task_id),
            }
        )
    if snooze and not done:
        buttons.append(
            {
                "type": "button",
                "action_id": TASK_SNOOZE_ACTION,
                "text": {"type": "plain_text", "text": "Snooze 1 working day"},
                "value": str(task_id),
            }
        )
    return buttons


def task(
    *,
    task_id: int,
    number: int,
    author_slack_id: str | None,
    due_on: dt.date,
    public_url: str,
    done_at: dt.datetime | None = None,
) -> Message:
    """A task's DM to its assignee: the concern's number, who set it, when it is due.

    Never the task itself (it is the action's text, which may be sensitive), nor a pupil.
    Done replaces it with the done version (no Done button, the time it was done).
    """
    text = f"Task on concern #{number} from {_person(author_slack_id)}, due {due_on:%a %d %b %Y}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":clipboard: {text}"}}
    ]
    if done_at is not None:
        blocks.append(_when_line(":white_check_mark: Done", done_at))
    url = incident_url(public_url, number)
    blocks.append(
        {
            "type": "actions",
            "block_id": f"task-{task_id}",
            "elements": _task_buttons(task_id, url, done=done_at is not None, snooze=False),
        }
    )
    return {"text": text, "blocks": blocks}


def task_nudge(
    *,
    task_id: int,
    number: int,
    overdue_days: int,
    public_url: str,
    escalated: bool = False,
    snoozed_until: dt.datetime | None = None,
) -> Message:
    """An overdue task: the concern's number and how overdue (to the assignee; to the DSLs
    too once escalated). Snooze replaces it with the snoozed version."""
    whose = "A task you were given" if not escalated else "A task"
    text = f"{whose} on concern #{number} {_overdue_text(overdue_days)} and is not done."
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":hourglass: {text}"}}
    ]
    if snoozed_until is not None:
        blocks.append(_when_line(":zzz: Snoozed until", snoozed_until))
    url = incident_url(public_url, number)
    elements = _task_buttons(task_id, url, done=False, snooze=snoozed_until is None)
    if escalated:  # the DSLs may snooze it but not do it for the assignee
        elements = [e for e in elements if e.get("action_id") != TASK_DONE_ACTION]
    blocks.append({"type": "actions", "block_id": f"task-nudge-{task_id}", "elements": elements})
    return {"text": text, "blocks": blocks}


TASK_NOT_YOURS = "Only the person a task is assigned to can mark it done. Nothing was changed."


def consultation_nudge(*, number: int, agency: str, overdue_days: int, url: str) -> Message:
    """To the allegations manager: the consultation with `agency` (the LADO) on concern
    `number` is overdue. Never who the allegation is about, nor that it is one."""
    text = (
        f"The {agency} consultation on concern #{number} {_overdue_text(overdue_days)}: "
        "record it, or record that no referral is needed and why."
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":hourglass: {text}"}},
            {"type": "actions", "elements": [_open_button(url)]},
        ],
    }


def urgent_escalation(
    *,
    number: int,
    author_slack_id: str | None,
    categories: Sequence[str],
    minutes: int,
    url: str,
) -> Message:
    """An urgent concern nobody on the safeguarding team has opened yet: one escalation
    step, to the next people on the rota or the head. Number, author, categories only."""
    text = (
        f"URGENT: concern #{number} from {_person(author_slack_id)} · {', '.join(categories)} "
        f"· {URGENT_LABEL.lower()}. Nobody on the safeguarding team has opened it after "
        f"{minutes} minutes: open it now."
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":rotating_light: {text}"}},
            {"type": "actions", "block_id": f"urgent-{number}", "elements": [_open_button(url)]},
        ],
    }


def chase(
    *, number: int, author_slack_id: str | None, categories: Sequence[str], url: str
) -> Message:
    """The one reminder about an alert on a restricted category that is still unopened."""
    text = (
        f"Reminder: you have not yet opened concern #{number} from {_person(author_slack_id)} "
        f"· {', '.join(categories)}. Please open it and read it."
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":bell: {text}"}},
            {"type": "actions", "block_id": f"chase-{number}", "elements": [_open_button(url)]},
        ],
    }


def slack_restored(*, error: str, since: dt.datetime) -> Message:
    """To the key-holders: Slack refused Vigil for a while (its token or a scope), and
    works again. Nothing was lost: the messages held meanwhile are being delivered."""
    text = (
        f"Vigil could not send Slack messages for a while: Slack refused the app ({error}). "
        "It works again, and the messages that waited meanwhile (alerts among them) are "
        "being delivered now. Check Vigil's web view for anything urgent in that time."
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {text}"}},
            _when_line("Paused since", since),
        ],
    }


def transfer_unreceipted(*, transfer_id: int, school: str, school_days: int) -> Message:
    """To the DSLs: a record transfer sent with no receipt yet. The transfer's number and
    the receiving school only: never the pupil."""
    text = (
        f"A record transfer (T{transfer_id}) to {school} has not been receipted after "
        f"{school_days} school days. Ask {school} to import it and send the receipt back "
        "(`vigil transfer receipt FILE`), or send the pack again."
    )
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f":hourglass: {text}"}}],
    }


def second_factor_failures(*, count: int, locked: bool) -> Message:
    """To a person: wrong authenticator codes were entered for their sign-in today."""
    text = (
        f"Someone has entered {count} wrong authenticator codes for your Vigil sign-in in "
        "the last 24 hours. If it was not you, someone may be using your Slack account: "
        "tell your DSL and change your Slack password."
    )
    if locked:
        text += " Your Vigil sign-in is locked until a key-holder unlocks it (Staff page)."
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {text}"}}],
    }


def second_factor_locked(*, slack_user_id: str | None, count: int) -> Message:
    """To the key-holders: someone's sign-in was locked after too many wrong codes."""
    text = (
        f"{_person(slack_user_id)}'s Vigil sign-in is locked after {count} wrong "
        "authenticator codes in 24 hours. If they did not enter them, their Slack account "
        "may be in someone else's hands. Speak to them, then unlock it on the Staff page."
    )
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f":lock: {text}"}}],
    }


def deadline_words(days_left: int) -> str:
    """A deadline in calendar days: 'due in 5 days', 'due today', 'overdue by 2 days'."""
    if days_left > 0:
        return f"due in {days_left} day{'' if days_left == 1 else 's'}"
    if days_left == 0:
        return "due today"
    return f"overdue by {-days_left} day{'' if days_left == -1 else 's'}"


def subject_access_due(*, request_id: int, days_left: int, url: str) -> Message:
    """To the DSLs: a subject access request near or past its one-month deadline. Its
    number and the days only: never the pupil, nor who asked."""
    text = f"Subject access request #{request_id} {deadline_words(days_left)}."
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":hourglass: {text}"}},
            {"type": "actions", "elements": [_open_button(url)]},
        ],
    }
