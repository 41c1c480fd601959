"""`vigil privacy-check` on a school's database: a social worker's name (stored only
encrypted, `store.pupil_context`) found anywhere in a raw dump is reported."""

from __future__ import annotations

from pathlib import Path

from store import audit
from store.db import transaction
from testing.harness import Harness
from tests.handlers.web.test_pupil_context import reimport
from tests.privacy.test_privacy_check import check
from tests.support.records import pupil_by_upn
from tests.support.school import PUPIL_4B

WORKER = "Ysolde Brackenridge"


async def test_a_social_workers_name_in_plain_text_is_found(
    school: Harness, tmp_path: Path
) -> None:
    await reimport(school, tmp_path, context={PUPIL_4B: {"Social_Worker": WORKER}})
    clean = await check(school)
    assert clean.passed, clean.render()
    assert "and 1 social workers' names" in clean.looked_for
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with transaction(school.server.factory) as db:
        planted = audit.record(
            db, action="note", workspace_id=pupil.workspace_id, detail=f"called {WORKER}"
        )
    report = await check(school)
    text = report.render()
    assert report.exit_code == 1
    assert (
        f"database: social worker's name (of pupil id {pupil.id}) found in audit_log.detail; "
        f"e.g. id {planted.id}"
    ) in text
    assert "Brackenridge" not in text
