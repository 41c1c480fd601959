"""Who is alerted about a new incident (DESIGN §5). Pure: no database, no Slack.

Every category alerts the key-holders and the class teachers of the pupils involved;
a restricted category alerts key-holders only. The reporter may add staff. The author
is never alerted about their own incident and nobody is alerted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from store.catalogue import Category
from store.enums import AlertReason


@dataclass(frozen=True)
class Recipient:
    staff_id: int
    reason: AlertReason  # KEYHOLDER, CLASS_TEACHER or ADDED


def alert_recipients(
    *,
    author_id: int,
    categories: Sequence[Category],
    keyholder_ids: Iterable[int],
    class_teacher_ids: Iterable[int],
    added_ids: Iterable[int],
) -> list[Recipient]:
    """The staff to alert, each once, in a stable order (key-holders first)."""
    restricted = any(c.restricted for c in categories)
    candidates = [(i, AlertReason.KEYHOLDER) for i in keyholder_ids]
    if not restricted:
        candidates += [(i, AlertReason.CLASS_TEACHER) for i in class_teacher_ids]
    candidates += [(i, AlertReason.ADDED) for i in added_ids]

    seen: set[int] = {author_id}
    recipients = []
    for staff_id, reason in candidates:
        if staff_id not in seen:
            seen.add(staff_id)
            recipients.append(Recipient(staff_id, reason))
    return recipients
