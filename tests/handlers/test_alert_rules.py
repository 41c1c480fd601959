"""Who a concern alerts, as the school's `[[alert_rules]]` say (issue 12): the disclosure a
teacher sends to the safeguarding team alone, a rule naming roles, a bad rule at start-up.

Driven with signed Slack requests; asserted on the DMs the Slack stand-in received.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from store.catalogue import DISCLOSURE
from store.crypto import generate_key
from store.models import Alert
from testing.harness import Harness
from tests.handlers.test_concern_flow import alerted_users, category_names
from tests.support.school import (
    CLASS_TEACHER,
    DSL,
    HEAD,
    KEYHOLDERS,
    NARRATIVE,
    PUPIL_4B,
    TA,
    TEACHER,
    configured_school,
)


async def test_a_teacher_can_send_a_disclosure_to_the_keyholders_alone(school: Harness) -> None:
    view = await school.open_concern(TEACHER)
    assert DISCLOSURE in category_names(view)
    hint = next(b for b in view["blocks"] if b.get("block_id") == "categories")["hint"]["text"]
    assert DISCLOSURE in hint
    response = await school.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=[DISCLOSURE, "Well-being"]
    )
    assert response.status == 200 and not response.body, response.body
    await school.delivered()
    # Not the other 4B class teacher (the default rule for Well-being would have).
    assert alerted_users(school) == KEYHOLDERS
    assert CLASS_TEACHER not in alerted_users(school)
    dm = school.standin.messages_for_user(DSL)[0]["text"]
    assert dm == f"New concern #1 from <@{TEACHER}> · {DISCLOSURE}, Well-being"


async def test_the_default_rule_still_alerts_class_teachers(school: Harness) -> None:
    await school.report_concern(
        TA, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
    )
    await school.delivered()
    assert alerted_users(school) == KEYHOLDERS | {CLASS_TEACHER, TEACHER}


RULES = """
[[alert_rules]]
category = "Behaviour"
alert = ["head"]

[[alert_rules]]
category = "Online safety"
alert = ["dsl", "class_teacher"]
chosen_by = "keyholder"
"""


async def test_a_rule_names_who_is_alerted(db_url: str, tmp_path: Path) -> None:
    async with configured_school(db_url, tmp_path, RULES) as school:
        assert "Online safety" not in category_names(await school.open_concern(TEACHER))
        assert "Online safety" in category_names(await school.open_concern(HEAD))
        await school.report_concern(
            TA, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
        )
        await school.report_concern(
            HEAD, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Online safety"]
        )
        await school.delivered()
        async with school.server.factory() as session:
            rows = (await session.execute(select(Alert.incident_id, Alert.reason))).all()
        first, second = sorted({i for i, _ in rows})
        assert [r for i, r in rows if i == first] == ["head"]
        assert sorted(r for i, r in rows if i == second) == [
            "class_teacher",
            "class_teacher",
            "dsl",
        ]
        behaviour = [
            c.params["channel"]
            for c in school.standin.calls_to("chat.postMessage", ok_only=True)
            if "New concern #1 " in c.params.get("text", "")
        ]
        assert behaviour == [HEAD]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        (
            '[[alert_rules]]\ncategory = "Behaviour"\nalert = ["dls"]\n',
            'alert_rules[1].alert: unknown role "dls"',
        ),
        ('[[alert_rules]]\ncategory = "behaviour"\nalert = ["dsl"]\n', "alert_rules[1].category"),
    ],
)
def test_a_bad_rule_stops_vigil_serve_naming_the_key(
    toml: str,
    key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vigil.toml").write_text(toml)
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("VIGIL_DATA_KEY", generate_key())
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    monkeypatch.delenv("VIGIL_CATEGORIES", raising=False)
    assert main(["--env-file", str(tmp_path / "none"), "serve"]) == 2
    err = capsys.readouterr().err
    assert key in err and "vigil.toml" in err, err
