"""The trust day's schools and its isolation check (`benchmarks.trust_schools`)."""

from __future__ import annotations

import pytest

from benchmarks.cli import parse_args
from benchmarks.options import Options
from benchmarks.trust_schools import cross_school_calls, make_schools
from benchmarks.trustday import model
from testing.standin import SlackStandIn
from testing.standin.calls import RecordedCall
from testing.standin.install import Installation


def test_each_school_has_its_own_workspace_people_and_keyholders() -> None:
    schools = make_schools(3, staff=12, pupils=5)
    assert [s.team_id for s in schools] == ["T0TRUST001", "T0TRUST002", "T0TRUST003"]
    ids = [p.slack_user_id for s in schools for p in s.staff]
    emails = [p.email for s in schools for p in s.staff]
    assert len(set(ids)) == len(ids) == 36 and len(set(emails)) == 36
    for school in schools:
        assert len(school.keyholders) == 4 and len(school.reporters) == 3
        assert all(u.startswith(f"U{school.index:03d}") for u in school.reporters)


def test_a_dm_sent_with_another_schools_token_is_counted_as_cross_school() -> None:
    standin = SlackStandIn()
    schools = make_schools(2, staff=9, pupils=1)
    tokens = {}
    for school in schools:
        team = standin.add_team(school.team_id, school.name)
        for person in school.staff:
            standin.add_user(
                person.slack_user_id, email=person.email, name=person.name, team_id=team.team_id
            )
        tokens[school.team_id] = f"xoxb-{school.team_id}"
        standin.installations[tokens[school.team_id]] = Installation(
            tokens[school.team_id], team, False, school.keyholders[0], "chat:write"
        )

    def dm(token: str, channel: str) -> None:
        standin.calls.append(
            RecordedCall(
                "chat.postMessage", {"channel": channel}, token, 200, {"ok": True, "ts": "1.0"}
            )
        )

    first, second = schools
    dm(tokens[first.team_id], first.keyholders[0])  # by user id
    dm(tokens[first.team_id], standin.dm_channel_for(first.keyholders[1]))  # by DM channel
    dm(tokens[second.team_id], second.keyholders[0])
    assert cross_school_calls(standin) == {"own": 3, "other": 0, "unknown": 0}
    dm(tokens[second.team_id], first.keyholders[2])  # Vigil erring: school 2's token
    dm("xoxb-nobody", first.keyholders[0])
    assert cross_school_calls(standin) == {"own": 3, "other": 1, "unknown": 1}
    assert cross_school_calls(standin, since=4) == {"own": 0, "other": 0, "unknown": 1}


def test_the_trust_day_options_full_quick_and_given() -> None:
    full = parse_args(["--scenarios", "trustday"])
    assert (full.trust_schools, full.trust_staff, full.trust_actions) == (50, 100, 2.0)
    quick = parse_args(["--scenarios", "trustday", "--quick"])
    # Fewer workspaces at the full trust's rate: 5 × 100 × 20 = 50 × 100 × 2 an hour.
    assert (quick.trust_schools, quick.trust_pupils) == (5, 40)
    assert model(quick)["actions_per_hour"] == model(full)["actions_per_hour"] == 10_000
    given = parse_args(
        ["--scenarios", "trustday", "--quick", "--trust-schools", "10", "--trust-pupils", "7"]
    )
    assert (given.trust_schools, given.trust_pupils) == (10, 7)
    with pytest.raises(ValueError, match="--trust-"):
        Options(scenarios=("trustday",), trust_schools=0).check()
    with pytest.raises(ValueError, match="run --scenarios trustday on its own"):
        Options(scenarios=("trustday", "slack"), database="sqlite+aiosqlite:///x.db").check()
