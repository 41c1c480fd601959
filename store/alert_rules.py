"""Who is alerted about a new incident, and about an action added to one (DESIGN §5).
Pure: no database, no Slack.

Each category carries its rule (`store.catalogue.Category`, set by the school's
`[[alert_rules]]`): the roles a new concern alerts (`alert`) and the roles an added
action alerts (`on_action`). A concern alerts the roles of all its categories, except
that a restricted category narrows it: when any category is restricted, only the
restricted categories' roles are alerted (so "Behaviour" beside "Safeguarding" does not
reach the class teacher). The defaults are: key-holders and class teachers; key-holders
only for a restricted category; key-holders for an action. The reporter may add staff.
The author is never alerted about their own incident or action and nobody is alerted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from store.catalogue import ALERT_ROLES, Category
from store.enums import AlertReason


@dataclass(frozen=True)
class Recipient:
    staff_id: int
    reason: AlertReason  # the role they were alerted as, ADDED, or ACTION


def governing(categories: Sequence[Category]) -> list[Category]:
    """The categories whose rules apply: the restricted ones if any, else all."""
    restricted = [c for c in categories if c.restricted]
    return restricted or list(categories)


def roles_alerted(categories: Sequence[Category], *, on_action: bool = False) -> list[str]:
    """The roles a concern (or an action on it) with these categories alerts, in
    `ALERT_ROLES` order (key-holders first)."""
    named = {r for c in governing(categories) for r in (c.on_action if on_action else c.alert)}
    return [r for r in ALERT_ROLES if r in named]


def _once(author_id: int, candidates: Iterable[tuple[int, AlertReason]]) -> list[Recipient]:
    seen: set[int] = {author_id}
    recipients = []
    for staff_id, reason in candidates:
        if staff_id not in seen:
            seen.add(staff_id)
            recipients.append(Recipient(staff_id, reason))
    return recipients


def _by_role(
    roles: Sequence[str],
    staff_by_role: Mapping[str, Iterable[int]],
    class_teacher_ids: Iterable[int],
) -> list[tuple[int, AlertReason]]:
    candidates: list[tuple[int, AlertReason]] = []
    for role in roles:
        ids = class_teacher_ids if role == "class_teacher" else staff_by_role.get(role, ())
        candidates += [(i, AlertReason(role)) for i in ids]
    return candidates


def alert_recipients(
    *,
    author_id: int,
    categories: Sequence[Category],
    staff_by_role: Mapping[str, Iterable[int]],
    class_teacher_ids: Iterable[int],
    added_ids: Iterable[int],
) -> list[Recipient]:
    """The staff to alert about a new concern, each once, in a stable order (key-holders
    first). `staff_by_role` maps each role of `ALERT_ROLES` (but class_teacher) to the
    active staff holding it (`store.staff.staff_ids_by_role`)."""
    candidates = _by_role(roles_alerted(categories), staff_by_role, class_teacher_ids)
    candidates += [(i, AlertReason.ADDED) for i in added_ids]
    return _once(author_id, candidates)


def action_recipients(
    *,
    action_author_id: int,
    incident_author_id: int,
    categories: Sequence[Category],
    staff_by_role: Mapping[str, Iterable[int]],
    class_teacher_ids: Iterable[int],
    picked_ids: Iterable[int],
    withdrawn_ids: Iterable[int] = (),
) -> list[Recipient]:
    """The staff an added action alerts, each once: the incident's author, the roles its
    categories' rules name for actions (default: key-holders), then anyone picked; never
    the action's own author, nor anyone whose access a key-holder withdrew (an alert
    would give it back). Everyone's reason is ACTION."""
    roles = roles_alerted(categories, on_action=True)
    ids = [incident_author_id]
    ids += [i for i, _ in _by_role(roles, staff_by_role, class_teacher_ids)]
    ids += list(picked_ids)
    excluded = set(withdrawn_ids)
    chosen = ((i, AlertReason.ACTION) for i in ids if i not in excluded)
    return _once(action_author_id, chosen)
