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


def _headline(number: int, author_slack_id: str | None, categories: Sequence[str]) -> str:
    return f"New concern #{number} from {_person(author_slack_id)} · {', '.join(categories)}"


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
) -> Message:
    """The DM a recipient gets: author and categories only, Mark as read and Open.

    `headline` is given for alerts about actions and invitations; a new concern's is
    built from its number, author and categories.
    """
    if headline is None:
        assert number is not None
        headline = _headline(number, author_slack_id, categories)
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


def channel_line(*, number: int, author_slack_id: str | None, categories: Sequence[str]) -> Message:
    """The single line posted to the school's alert channel, when one is configured."""
    return {"text": _headline(number, author_slack_id, categories)}


def receipt(*, number: int, categories: Sequence[str], alerted: int, url: str) -> Message:
    """The reporter's DM: the incident number to quote, and who was told (a count)."""
    people = "1 member of staff" if alerted == 1 else f"{alerted} members of staff"
    text = f"Concern #{number} recorded · {', '.join(categories)}. {people} alerted."
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


def home_view(
    *,
    unread: Sequence[UnreadAlert],
    public_url: str,
    command: str,
    total_unread: int | None = None,
    overdue: Sequence[OverdueReferral] | None = None,
) -> dict[str, Any]:
    """The App Home tab: unread alerts; for key-holders, overdue referrals. Redacted."""
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
