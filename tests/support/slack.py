"""What staff do in Slack, through the harness's correctly signed requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from testing.harness import Harness

from .school import NARRATIVE, PUPIL_4B, TEACHER


async def file_concern(
    school: Harness,
    author: str = TEACHER,
    *,
    pupil_query: str = PUPIL_4B,
    narrative: str = NARRATIVE,
    categories: Iterable[str] = ("Behaviour",),
    **details: Any,
) -> None:
    """`author` records a concern in Slack (/concern, the pupil typeahead, submit); Vigil
    accepts it, and Slack has every message it queued before this returns.

    `details` are `Harness.report_concern`'s other fields (`happened_at`, `linked_queries`,
    `also_alert`, `agencies`, `parents_contacted`, `parents_reason`).
    """
    response = await school.report_concern(
        author,
        pupil_query=pupil_query,
        narrative=narrative,
        categories=list(categories),
        **details,
    )
    assert response.status == 200 and not response.body, response.body
    await school.delivered()
